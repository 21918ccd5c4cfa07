package ort

import (
	"fmt"
	"unsafe"

	"github.com/x448/float16"
	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// goType names the Go slice type that Data must have for element type dt.
func goType(dt onnxio.DataType) string {
	switch dt {
	case onnxio.TypeFloat:
		return "[]float32"
	case onnxio.TypeDouble:
		return "[]float64"
	case onnxio.TypeInt8:
		return "[]int8"
	case onnxio.TypeUint8:
		return "[]uint8"
	case onnxio.TypeInt16:
		return "[]int16"
	case onnxio.TypeUint16:
		return "[]uint16"
	case onnxio.TypeInt32:
		return "[]int32"
	case onnxio.TypeUint32:
		return "[]uint32"
	case onnxio.TypeInt64:
		return "[]int64"
	case onnxio.TypeUint64:
		return "[]uint64"
	case onnxio.TypeBool:
		return "[]bool"
	case onnxio.TypeFloat16:
		return "[]float16.Float16"
	case onnxio.TypeBFloat16:
		return "[]onnxio.BFloat16"
	case onnxio.TypeString:
		return "[]string"
	}
	return "?"
}

// checkData checks that t's Data has the Go type its Type calls for and as many
// elements as its Shape.
func checkData(t *onnxio.Tensor) error {
	if got := fmt.Sprintf("%T", t.Data); got != goType(t.Type) {
		return fmt.Errorf("element type %s needs Data of type %s, got %s", t.Type, goType(t.Type), got)
	}
	n, err := onnxio.NumElements(t.Shape)
	if err != nil {
		return err
	}
	if int64(t.Len()) != n {
		return fmt.Errorf("shape %v needs %d elements, Data has %d", t.Shape, n, t.Len())
	}
	return nil
}

// toValue wraps t (already checked) in an onnxruntime value that reads t's memory
// directly; the caller destroys it, and t must stay untouched until then.
func toValue(t *onnxio.Tensor) (ortgo.Value, error) {
	shape := ortgo.Shape(append([]int64{}, t.Shape...))
	switch d := t.Data.(type) {
	case []float32:
		return numeric(shape, d)
	case []float64:
		return numeric(shape, d)
	case []int8:
		return numeric(shape, d)
	case []uint8:
		return numeric(shape, d)
	case []int16:
		return numeric(shape, d)
	case []uint16:
		return numeric(shape, d)
	case []int32:
		return numeric(shape, d)
	case []uint32:
		return numeric(shape, d)
	case []int64:
		return numeric(shape, d)
	case []uint64:
		return numeric(shape, d)
	case []bool:
		return numeric(shape, d)
	case []float16.Float16:
		return raw16(shape, d, onnxio.TypeFloat16)
	case []onnxio.BFloat16:
		return raw16(shape, d, onnxio.TypeBFloat16)
	case []string:
		if len(shape) == 0 {
			return nil, fmt.Errorf("onnxruntime_go cannot pass a scalar string: give the model a [1]-shaped input")
		}
		st, err := ortgo.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := st.SetContents(d); err != nil {
			st.Destroy()
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("unsupported data %T", t.Data)
}

func numeric[T ortgo.TensorData](shape ortgo.Shape, d []T) (ortgo.Value, error) {
	if len(shape) == 0 {
		return ortgo.NewScalar(d[0])
	}
	return ortgo.NewTensor(shape, d)
}

// raw16 passes 16-bit floats as their bytes in memory order, which is what onnxruntime
// reads on the little-endian machines it runs on.
func raw16[T float16.Float16 | onnxio.BFloat16](shape ortgo.Shape, d []T, dt onnxio.DataType) (ortgo.Value, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("onnxruntime_go cannot pass a scalar %s: give the model a [1]-shaped input", dt)
	}
	var b []byte
	if len(d) == 0 {
		b = make([]byte, 2) // onnxruntime_go wants at least one byte; the shape says none are read
	} else {
		b = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 2*len(d))
	}
	return ortgo.NewCustomDataTensor(shape, b, ortgo.TensorElementDataType(dt))
}

// fromValue converts an output onnxruntime_go allocated to a Go tensor. Numeric data is
// already a Go slice that onnxruntime_go copied out of onnxruntime's memory; the tensor
// takes it over, so it stays valid after the value is destroyed.
func fromValue(v ortgo.Value) (*onnxio.Tensor, error) {
	switch v := v.(type) {
	case *ortgo.Tensor[float32]:
		return take(onnxio.TypeFloat, v), nil
	case *ortgo.Tensor[float64]:
		return take(onnxio.TypeDouble, v), nil
	case *ortgo.Tensor[int8]:
		return take(onnxio.TypeInt8, v), nil
	case *ortgo.Tensor[uint8]:
		return take(onnxio.TypeUint8, v), nil
	case *ortgo.Tensor[int16]:
		return take(onnxio.TypeInt16, v), nil
	case *ortgo.Tensor[uint16]:
		return take(onnxio.TypeUint16, v), nil
	case *ortgo.Tensor[int32]:
		return take(onnxio.TypeInt32, v), nil
	case *ortgo.Tensor[uint32]:
		return take(onnxio.TypeUint32, v), nil
	case *ortgo.Tensor[int64]:
		return take(onnxio.TypeInt64, v), nil
	case *ortgo.Tensor[uint64]:
		return take(onnxio.TypeUint64, v), nil
	case *ortgo.Tensor[bool]:
		return take(onnxio.TypeBool, v), nil
	case *ortgo.StringTensor:
		s, err := v.GetContents()
		if err != nil {
			return nil, err
		}
		return &onnxio.Tensor{Type: onnxio.TypeString, Shape: append([]int64(nil), v.GetShape()...), Data: s}, nil
	case nil:
		return nil, fmt.Errorf("onnxruntime returned no value")
	}
	return nil, fmt.Errorf("onnxruntime returned a %T, which the bridge cannot convert", v)
}

func take[T ortgo.TensorData](dt onnxio.DataType, v *ortgo.Tensor[T]) *onnxio.Tensor {
	data := v.GetData()
	if data == nil {
		data = []T{}
	}
	return &onnxio.Tensor{Type: dt, Shape: append([]int64(nil), v.GetShape()...), Data: data}
}

// narrow converts float32 data that a Cast widened from float16 or bfloat16 back to that
// type; every such value converts back exactly.
func narrow(t *onnxio.Tensor, to onnxio.DataType) *onnxio.Tensor {
	f, _ := t.Data.([]float32)
	out := &onnxio.Tensor{Type: to, Shape: t.Shape}
	switch to {
	case onnxio.TypeFloat16:
		d := make([]float16.Float16, len(f))
		for i, v := range f {
			d[i] = float16.Fromfloat32(v)
		}
		out.Data = d
	case onnxio.TypeBFloat16:
		d := make([]onnxio.BFloat16, len(f))
		for i, v := range f {
			d[i] = onnxio.BFloat16FromFloat32(v)
		}
		out.Data = d
	}
	return out
}

package train

import (
	"fmt"
	"slices"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// DType is the element type of a Tensor.
type DType uint8

const (
	// Float32 tensors hold their elements in Data.
	Float32 DType = iota
	// Int64 tensors (shapes, indices) hold their elements in Ints.
	Int64
)

func (d DType) String() string {
	if d == Int64 {
		return "int64"
	}
	return "float32"
}

// Tensor is a dense row-major tensor: float32 elements in Data, or int64 elements in Ints
// when DType is Int64. A scalar has an empty Shape and one element.
type Tensor struct {
	DType DType
	Shape []int
	Data  []float32
	Ints  []int64
}

// NewTensor returns a float32 tensor of shape holding data (not copied); nil data means
// zeros. It panics when len(data) does not match the shape.
func NewTensor(shape []int, data []float32) *Tensor {
	n := numel(shape)
	if data == nil {
		data = make([]float32, n)
	}
	if len(data) != n {
		panic(fmt.Sprintf("train.NewTensor: %d elements for shape %v", len(data), shape))
	}
	return &Tensor{Shape: slices.Clone(shape), Data: data}
}

// NewInt64Tensor returns an int64 tensor of shape holding data (not copied); nil data
// means zeros. It panics when len(data) does not match the shape.
func NewInt64Tensor(shape []int, data []int64) *Tensor {
	n := numel(shape)
	if data == nil {
		data = make([]int64, n)
	}
	if len(data) != n {
		panic(fmt.Sprintf("train.NewInt64Tensor: %d elements for shape %v", len(data), shape))
	}
	return &Tensor{DType: Int64, Shape: slices.Clone(shape), Ints: data}
}

// Zeros returns a float32 tensor of zeros.
func Zeros(shape ...int) *Tensor { return NewTensor(shape, nil) }

// Len returns the number of elements.
func (t *Tensor) Len() int {
	if t.DType == Int64 {
		return len(t.Ints)
	}
	return len(t.Data)
}

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{DType: t.DType, Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data), Ints: slices.Clone(t.Ints)}
}

// AddScaled adds a·x to t element by element (float32 tensors of the same shape), for
// combining loss gradients: grad.AddScaled(hardWeight, ceGrad). It panics when the
// shapes differ.
func (t *Tensor) AddScaled(a float32, x *Tensor) {
	if !slices.Equal(t.Shape, x.Shape) || t.DType != Float32 || x.DType != Float32 {
		panic(fmt.Sprintf("train.Tensor.AddScaled: %s and %s differ", t, x))
	}
	axpy(a, x.Data, t.Data)
}

// Scale multiplies every element of a float32 tensor by a.
func (t *Tensor) Scale(a float32) {
	for i := range t.Data {
		t.Data[i] *= a
	}
}

// String describes the tensor's type and shape.
func (t *Tensor) String() string { return fmt.Sprintf("%s%v", t.DType, t.Shape) }

// FromONNX converts an onnxio tensor: floating-point types become float32, integer and
// bool types int64.
func FromONNX(o *onnxio.Tensor) (*Tensor, error) {
	shape := make([]int, len(o.Shape))
	for i, d := range o.Shape {
		shape[i] = int(d)
	}
	switch s := o.Data.(type) {
	case []int64:
		return NewInt64Tensor(shape, slices.Clone(s)), nil
	case []int32:
		return NewInt64Tensor(shape, convertSlice(s, func(v int32) int64 { return int64(v) })), nil
	case []int16:
		return NewInt64Tensor(shape, convertSlice(s, func(v int16) int64 { return int64(v) })), nil
	case []int8:
		if o.Type == onnxio.TypeInt8 || o.Type == onnxio.TypeInt4 {
			return NewInt64Tensor(shape, convertSlice(s, func(v int8) int64 { return int64(v) })), nil
		}
	case []uint8:
		if o.Type == onnxio.TypeUint8 || o.Type == onnxio.TypeUint4 {
			return NewInt64Tensor(shape, convertSlice(s, func(v uint8) int64 { return int64(v) })), nil
		}
	case []uint16:
		return NewInt64Tensor(shape, convertSlice(s, func(v uint16) int64 { return int64(v) })), nil
	case []uint32:
		return NewInt64Tensor(shape, convertSlice(s, func(v uint32) int64 { return int64(v) })), nil
	case []bool:
		return NewInt64Tensor(shape, convertSlice(s, func(v bool) int64 {
			if v {
				return 1
			}
			return 0
		})), nil
	}
	if !o.Type.IsFloat() {
		return nil, fmt.Errorf("tensor of %s is not supported (float and integer types only)", o.Type)
	}
	f, err := o.Float32s()
	if err != nil {
		return nil, err
	}
	if o.Type == onnxio.TypeFloat {
		f = slices.Clone(f)
	}
	if len(f) != numel(shape) {
		return nil, fmt.Errorf("tensor has %d elements for shape %v", len(f), shape)
	}
	return NewTensor(shape, f), nil
}

// ONNX converts t to an onnxio tensor (float32 or int64), copying the data.
func (t *Tensor) ONNX() *onnxio.Tensor {
	shape := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int64(d)
	}
	if t.DType == Int64 {
		return onnxio.NewTensor(shape, slices.Clone(t.Ints))
	}
	return onnxio.NewTensor(shape, slices.Clone(t.Data))
}

func convertSlice[S, D any](s []S, f func(S) D) []D {
	d := make([]D, len(s))
	for i, v := range s {
		d[i] = f(v)
	}
	return d
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// strides returns the row-major element strides of shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	st := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = st
		st *= shape[i]
	}
	return s
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

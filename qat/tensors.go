package qat

import (
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/quantize"
)

// typeRange is the full range of a quantized type, as QuantizeLinear clamps to it.
func typeRange(dt onnxio.DataType) (lo, hi int64, err error) {
	if dt == onnxio.TypeInt32 {
		return math.MinInt32, math.MaxInt32, nil
	}
	r, err := quantize.IntRange(dt, false, false)
	if err != nil {
		return 0, 0, err
	}
	return int64(r.Min), int64(r.Max), nil
}

// ints decodes an integer tensor as int64s.
func ints(t *onnxio.Tensor) ([]int64, error) {
	conv := func(n int, f func(i int) int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	switch d := t.Data.(type) {
	case []int8:
		return conv(len(d), func(i int) int64 { return int64(d[i]) }), nil
	case []uint8:
		if t.Type == onnxio.TypeUint8 || t.Type == onnxio.TypeUint4 {
			return conv(len(d), func(i int) int64 { return int64(d[i]) }), nil
		}
	case []int16:
		return conv(len(d), func(i int) int64 { return int64(d[i]) }), nil
	case []uint16:
		return conv(len(d), func(i int) int64 { return int64(d[i]) }), nil
	case []int32:
		return conv(len(d), func(i int) int64 { return int64(d[i]) }), nil
	}
	return nil, fmt.Errorf("%s is not a quantized integer type", t.Type)
}

// intTensor makes a tensor of quantized type dt.
func intTensor(dt onnxio.DataType, shape []int64, v []int64) (*onnxio.Tensor, error) {
	t := &onnxio.Tensor{Type: dt, Shape: append([]int64(nil), shape...)}
	switch dt {
	case onnxio.TypeInt8, onnxio.TypeInt4:
		t.Data = convert(v, func(x int64) int8 { return int8(x) })
	case onnxio.TypeUint8, onnxio.TypeUint4:
		t.Data = convert(v, func(x int64) uint8 { return uint8(x) })
	case onnxio.TypeInt16:
		t.Data = convert(v, func(x int64) int16 { return int16(x) })
	case onnxio.TypeUint16:
		t.Data = convert(v, func(x int64) uint16 { return uint16(x) })
	case onnxio.TypeInt32:
		t.Data = convert(v, func(x int64) int32 { return int32(x) })
	default:
		return nil, fmt.Errorf("%s is not a quantized integer type", dt)
	}
	return t, nil
}

func convert[S, D any](s []S, f func(S) D) []D {
	out := make([]D, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}

// qparams are a Q/DQ node's scale and zero point, with the layout they apply in.
type qparams struct {
	scale     []float32
	zp        []int64
	dt        onnxio.DataType
	axis      int // normalized; meaningful when len(scale) > 1
	scaleName string
	zpName    string // "" when absent
	shape     []int64
}

// channelFn returns a function giving the parameter index of element i of a tensor of
// shape.
func (p *qparams) channelFn(shape []int64) func(i int) int {
	if len(p.scale) == 1 {
		return func(int) int { return 0 }
	}
	inner := 1
	for _, d := range shape[p.axis+1:] {
		inner *= int(d)
	}
	n := len(p.scale)
	return func(i int) int { return (i / inner) % n }
}

// readParams reads a Q/DQ node's constant scale and zero point; dt is the quantized
// type (from the zero point, else the given fallback). x is the shape of the tensor the
// node quantizes, for checking the axis.
func readParams(ix *onnxio.Index, n *onnxpb.NodeProto, x []int64, fallback onnxio.DataType) (*qparams, error) {
	in := n.GetInput()
	if len(in) < 2 {
		return nil, fmt.Errorf("no scale input")
	}
	if a := onnxio.Attr(n, "block_size"); a != nil && a.GetI() != 0 {
		return nil, fmt.Errorf("blocked quantization (block_size %d) is not supported", a.GetI())
	}
	st, ok := ix.ConstantTensor(in[1])
	if !ok {
		return nil, fmt.Errorf("scale %q is not a constant", in[1])
	}
	sc, err := onnxio.TensorFloat32s(st)
	if err != nil {
		return nil, fmt.Errorf("scale %q: %v", in[1], err)
	}
	p := &qparams{scale: sc, dt: fallback, scaleName: in[1], shape: st.GetDims()}
	if len(in) > 2 && in[2] != "" {
		zt, ok := ix.ConstantTensor(in[2])
		if !ok {
			return nil, fmt.Errorf("zero point %q is not a constant", in[2])
		}
		z, err := onnxio.DecodeTensor(zt)
		if err != nil {
			return nil, fmt.Errorf("zero point %q: %v", in[2], err)
		}
		if p.zp, err = ints(z); err != nil {
			return nil, fmt.Errorf("zero point %q: %v", in[2], err)
		}
		if len(p.zp) != len(sc) {
			return nil, fmt.Errorf("zero point %q has %d values, the scale %d", in[2], len(p.zp), len(sc))
		}
		p.dt, p.zpName = z.Type, in[2]
	} else {
		p.zp = make([]int64, len(sc))
	}
	if len(sc) > 1 {
		axis := int64(1)
		if a := onnxio.Attr(n, "axis"); a != nil {
			axis = a.GetI()
		}
		r := int64(len(x))
		if axis < -r || axis >= r {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", axis, r)
		}
		if axis < 0 {
			axis += r
		}
		p.axis = int(axis)
		if x[p.axis] != int64(len(sc)) {
			return nil, fmt.Errorf("%d scales for axis %d of shape %v", len(sc), axis, x)
		}
	}
	return p, nil
}

// quantizeValue is QuantizeLinear on one element, as onnxruntime and the train engine
// compute it: clamp(round_half_even(x/s) + zp), x/s in float32.
func quantizeValue(x, s float32, zp, lo, hi int64) int64 {
	v := math.RoundToEven(float64(x/s)) + float64(zp)
	return int64(math.Max(float64(lo), math.Min(float64(hi), v)))
}

// dequantizeValue is DequantizeLinear on one element.
func dequantizeValue(q int64, s float32, zp int64) float32 { return float32(q-zp) * s }

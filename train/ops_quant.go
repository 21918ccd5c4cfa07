package train

import (
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// QuantizeLinear and DequantizeLinear, forward as onnxruntime computes them and backward
// as the straight-through estimator, with optionally learnable scales (LSQ).
//
// Forward (per element, with s and zp the scale and zero point of its tensor, channel or
// block):
//
//	QuantizeLinear:   q = clamp(round_half_even(x / s) + zp, qmin, qmax)   (x / s in float32)
//	DequantizeLinear: y = float32(q − zp) · s
//
// The engine holds QuantizeLinear's output as a float32 tensor of the integers (every
// type it produces, up to 16 bits, is exact in float32), so that gradients can flow
// through it; integer initializers (int8, uint8, int4, uint4, int16, uint16, int32) are
// int64 tensors, and DequantizeLinear reads either.
//
// Backward (Bengio et al. 2013's straight-through estimator, clipped to the range; the
// scale's gradient as in LSQ, Esser et al. 2020, "Learned Step Size Quantization"):
//
//	QuantizeLinear:   ∂q/∂x = 1/s where qmin ≤ round(x/s)+zp ≤ qmax, else 0
//	                  ∂q/∂s = −x/s² inside, 0 outside (the clamped value is constant)
//	DequantizeLinear: ∂y/∂q = s,  ∂y/∂s = q − zp
//
// so a QuantizeLinear → DequantizeLinear pair sharing one scale passes the gradient of x
// through unchanged inside the range and stops it outside, and gives the scale LSQ's
// gradient round(x/s) − x/s inside and qmin−zp or qmax−zp outside. Both scale gradients
// are multiplied by LSQ's gradient scale 1/sqrt(N·Qp), N being the number of elements
// per scale value (x's size over the scale's) and Qp the type's largest value (127 for
// int8, 255 for uint8, 7 for int4, 15 for uint4). A scale is trained only when it is a
// float initializer that CompileOptions.LearnScales selects; otherwise it is a constant.
// Zero points are never trained.

func quantOps() map[string]opSpec {
	return map[string]opSpec{
		"QuantizeLinear": {make: newQuantize, diff: inputs(0, 1), learnable: []int{1},
			limits: "per tensor, per axis and blocked (block_size); uint8, int8, uint16, int16, uint4, int4 (no float8); output held as float32 integers"},
		"DequantizeLinear": {make: newDequantize, diff: inputs(0, 1), learnable: []int{1},
			limits: "per tensor, per axis and blocked (block_size); uint8, int8, uint16, int16, uint4, int4, int32 (no float8)"},
	}
}

// qtype is an integer type QuantizeLinear and DequantizeLinear work with.
type qtype struct {
	dt       onnxio.DataType
	min, max int64
}

func qtypeOf(dt onnxio.DataType) (qtype, bool) {
	switch dt {
	case onnxio.TypeUint8:
		return qtype{dt, 0, 255}, true
	case onnxio.TypeInt8:
		return qtype{dt, -128, 127}, true
	case onnxio.TypeUint16:
		return qtype{dt, 0, 65535}, true
	case onnxio.TypeInt16:
		return qtype{dt, -32768, 32767}, true
	case onnxio.TypeUint4:
		return qtype{dt, 0, 15}, true
	case onnxio.TypeInt4:
		return qtype{dt, -8, 7}, true
	case onnxio.TypeInt32:
		return qtype{dt, math.MinInt32, math.MaxInt32}, true
	}
	return qtype{}, false
}

// valueTypes returns the element types of the values that QuantizeLinear and
// DequantizeLinear need to know: initializers, Constant nodes' outputs, the graph's
// declared values and QuantizeLinear's outputs. The engine holds every integer type as
// int64, so the ONNX type (int8 or uint8, int4 or ...) comes from here.
func valueTypes(gp *onnxpb.GraphProto) map[string]onnxio.DataType {
	types := map[string]onnxio.DataType{}
	for _, vis := range [][]*onnxpb.ValueInfoProto{gp.GetInput(), gp.GetOutput(), gp.GetValueInfo()} {
		for _, vi := range vis {
			if tt := vi.GetType().GetTensorType(); tt != nil {
				types[vi.GetName()] = onnxio.DataType(tt.GetElemType())
			}
		}
	}
	for _, tp := range gp.GetInitializer() {
		types[tp.GetName()] = onnxio.DataType(tp.GetDataType())
	}
	for _, n := range gp.GetNode() {
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 {
			for _, at := range n.GetAttribute() {
				if at.GetName() == "value" && at.GetT() != nil {
					types[n.GetOutput()[0]] = onnxio.DataType(at.GetT().GetDataType())
				}
			}
		}
	}
	// QuantizeLinear's output type follows its zero point (or output_dtype, or uint8);
	// a chain of them is resolved by repeating until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, n := range gp.GetNode() {
			if n.GetOpType() != "QuantizeLinear" || len(n.GetOutput()) == 0 {
				continue
			}
			out := n.GetOutput()[0]
			if _, done := types[out]; done {
				continue
			}
			if dt, ok := quantizeOutputType(n, types); ok {
				types[out] = dt
				changed = true
			}
		}
	}
	return types
}

// quantizeOutputType works out QuantizeLinear's output type: its zero point's, else the
// output_dtype attribute (opset 21), else uint8.
func quantizeOutputType(n *onnxpb.NodeProto, types map[string]onnxio.DataType) (onnxio.DataType, bool) {
	var attr onnxio.DataType
	for _, at := range n.GetAttribute() {
		if at.GetName() == "output_dtype" {
			attr = onnxio.DataType(at.GetI())
		}
	}
	if in := n.GetInput(); len(in) > 2 && in[2] != "" {
		dt, ok := types[in[2]]
		return dt, ok
	}
	if attr != onnxio.TypeUndefined {
		return attr, true
	}
	return onnxio.TypeUint8, true
}

// qlayout maps each element of x to its scale (and zero point): x is seen as
// [outer, d, inner] around the quantization axis, and element (o, a, j) uses parameter
// base(o, a) + j·pstride.
type qlayout struct {
	outer, d, inner int
	block           int // block_size; 0 unless blocked
	nb              int // blocks along the axis
	blocked         bool
	perTensor       bool
	np              int // number of parameters
}

func (l *qlayout) base(o, a int) int {
	switch {
	case l.perTensor:
		return 0
	case l.blocked:
		return o*l.nb*l.inner + (a/l.block)*l.inner
	}
	return a
}

func (l *qlayout) pstride() int {
	if l.blocked {
		return 1
	}
	return 0
}

// newLayout checks the scale's (and zero point's) shape against x's and returns how
// they line up.
func newLayout(x, scale, zp *Tensor, axis, block int, opset int64) (*qlayout, error) {
	n := x.Len()
	ns := scale.Len()
	if zp != nil && zp.Len() != ns {
		return nil, fmt.Errorf("zero point has shape %v, the scale %v", zp.Shape, scale.Shape)
	}
	if block == 0 && ns == 1 && scale.Rank() <= 1 {
		return &qlayout{outer: 1, d: n, inner: 1, perTensor: true, np: 1}, nil
	}
	if opset < 13 {
		return nil, fmt.Errorf("opset %d allows only a per-tensor scale, got shape %v", opset, scale.Shape)
	}
	a, err := normAxis(axis, x.Rank())
	if err != nil {
		return nil, err
	}
	outer, inner := 1, 1
	for _, d := range x.Shape[:a] {
		outer *= d
	}
	for _, d := range x.Shape[a+1:] {
		inner *= d
	}
	d := x.Shape[a]
	if block == 0 {
		if scale.Rank() != 1 || scale.Shape[0] != d {
			return nil, fmt.Errorf("per-axis scale of shape %v for axis %d of %v: want [%d]", scale.Shape, a, x.Shape, d)
		}
		return &qlayout{outer: outer, d: d, inner: inner, np: ns}, nil
	}
	if block < 0 {
		return nil, fmt.Errorf("block_size %d is negative", block)
	}
	nb := (d + block - 1) / block
	if scale.Rank() != x.Rank() {
		return nil, fmt.Errorf("blocked scale of shape %v for %v: the ranks differ", scale.Shape, x.Shape)
	}
	for i, sd := range scale.Shape {
		want := x.Shape[i]
		if i == a {
			want = nb
		}
		if sd != want {
			return nil, fmt.Errorf("blocked scale of shape %v for %v with block_size %d on axis %d", scale.Shape, x.Shape, block, a)
		}
	}
	return &qlayout{outer: outer, d: d, inner: inner, block: block, nb: nb, blocked: true, np: ns}, nil
}

// each calls fn for every run of elements [off, off+inner) that share parameter row
// (o, a), split over the workers; chunk identifies the caller's worker.
func (l *qlayout) each(cost int, fn func(chunk, off, p0 int)) int {
	rows := l.outer * l.d
	return parallelChunks(rows, l.inner*cost, func(chunk, lo, hi int) {
		for r := lo; r < hi; r++ {
			o, a := r/l.d, r%l.d
			fn(chunk, r*l.inner, l.base(o, a))
		}
	})
}

// zeroPoints reads the zero points as int64 (nil: all zero).
func zeroPoints(zp *Tensor, n int) ([]int64, error) {
	if zp == nil {
		return make([]int64, n), nil
	}
	if zp.DType != Int64 {
		return nil, fmt.Errorf("the zero point is %s, want an integer tensor", zp.DType)
	}
	return zp.Ints, nil
}

// quantizeValue is QuantizeLinear on one element: the unclamped value and the result.
func quantizeValue(x, s float32, zp int64, t qtype) (v float64, q float32) {
	v = math.RoundToEven(float64(x/s)) + float64(zp)
	c := v
	if c < float64(t.min) {
		c = float64(t.min)
	} else if c > float64(t.max) {
		c = float64(t.max)
	}
	return v, float32(c)
}

// lsqGradScale is LSQ's 1/sqrt(N·Qp).
func lsqGradScale(n, np int, t qtype) float64 {
	per := float64(n) / float64(max(np, 1))
	return 1 / math.Sqrt(per*float64(max(t.max, 1)))
}

// QuantizeLinear.
type quantizeOp struct {
	axis, block int
	typ         qtype
	opset       int64
}

func newQuantize(a attrs) (kernel, error) {
	dt, _ := quantizeOutputType(a.n, a.types)
	if in := a.n.GetInput(); len(in) > 2 && in[2] != "" {
		if _, ok := a.types[in[2]]; !ok {
			return nil, fmt.Errorf("the type of zero point %q is unknown (give it as an initializer or Constant)", in[2])
		}
	}
	if out := onnxio.DataType(a.int("output_dtype", 0)); out != onnxio.TypeUndefined && out != dt {
		return nil, fmt.Errorf("output_dtype %s differs from the zero point's %s", out, dt)
	}
	t, ok := qtypeOf(dt)
	if !ok || dt == onnxio.TypeInt32 {
		return nil, fmt.Errorf("quantizing to %s is not supported (uint8, int8, uint16, int16, uint4, int4)", dt)
	}
	if a.opset < 21 && (dt == onnxio.TypeInt4 || dt == onnxio.TypeUint4 || dt == onnxio.TypeInt16 || dt == onnxio.TypeUint16) {
		return nil, fmt.Errorf("%s needs opset 21, the model imports %d", dt, a.opset)
	}
	return &quantizeOp{axis: a.int("axis", 1), block: a.int("block_size", 0), typ: t, opset: a.opset}, nil
}

func (k *quantizeOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x, s, zpt := in[0], in[1], input(in, 2)
	if err := wantFloat("QuantizeLinear", x, s); err != nil {
		return nil, err
	}
	l, err := newLayout(x, s, zpt, k.axis, k.block, k.opset)
	if err != nil {
		return nil, err
	}
	zp, err := zeroPoints(zpt, l.np)
	if err != nil {
		return nil, err
	}
	y := c.allocRaw(x.Shape...)
	ps := l.pstride()
	l.each(4, func(_, off, p0 int) {
		for j := range l.inner {
			p := p0 + j*ps
			_, y.Data[off+j] = quantizeValue(x.Data[off+j], s.Data[p], zp[p], k.typ)
		}
	})
	return []*Tensor{y}, nil
}

func (k *quantizeOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	g := gout[0]
	if g == nil {
		return nil, nil
	}
	x, s, zpt := in[0], in[1], input(in, 2)
	l, err := newLayout(x, s, zpt, k.axis, k.block, k.opset)
	if err != nil {
		return nil, err
	}
	zp, err := zeroPoints(zpt, l.np)
	if err != nil {
		return nil, err
	}
	var gx *Tensor
	if c.needGrad(0) {
		gx = c.allocRaw(x.Shape...)
	}
	wantS := c.needGrad(1)
	parts := make([][]float64, workers())
	ps := l.pstride()
	lo, hi := float64(k.typ.min), float64(k.typ.max)
	l.each(6, func(chunk, off, p0 int) {
		var acc []float64
		if wantS {
			if parts[chunk] == nil {
				parts[chunk] = make([]float64, l.np)
			}
			acc = parts[chunk]
		}
		for j := range l.inner {
			i, p := off+j, p0+j*ps
			sc := s.Data[p]
			v, _ := quantizeValue(x.Data[i], sc, zp[p], k.typ)
			inside := v >= lo && v <= hi
			if gx != nil {
				if inside {
					gx.Data[i] = g.Data[i] / sc
				} else {
					gx.Data[i] = 0
				}
			}
			if acc != nil && inside {
				sd := float64(sc)
				acc[p] -= float64(g.Data[i]) * float64(x.Data[i]) / (sd * sd)
			}
		}
	})
	var gs *Tensor
	if wantS {
		gs = sumParts(c, parts, s.Shape, lsqGradScale(x.Len(), l.np, k.typ))
	}
	return []*Tensor{gx, gs, nil}, nil
}

// sumParts adds the per-worker partial sums and scales them.
func sumParts(c *ctx, parts [][]float64, shape []int, scale float64) *Tensor {
	gs := c.alloc(shape...)
	tot := make([]float64, len(gs.Data))
	for _, p := range parts {
		for i, v := range p {
			tot[i] += v
		}
	}
	for i, v := range tot {
		gs.Data[i] = float32(v * scale)
	}
	return gs
}

// DequantizeLinear.
type dequantizeOp struct {
	axis, block int
	typ         qtype
	opset       int64
}

func newDequantize(a attrs) (kernel, error) {
	in := a.n.GetInput()
	dt, ok := a.types[in[0]]
	if len(in) > 2 && in[2] != "" {
		if zt, zok := a.types[in[2]]; zok {
			if ok && zt != dt {
				return nil, fmt.Errorf("the input is %s, the zero point %s", dt, zt)
			}
			dt, ok = zt, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("the type of input %q is unknown", in[0])
	}
	t, qok := qtypeOf(dt)
	if !qok {
		return nil, fmt.Errorf("dequantizing %s is not supported (uint8, int8, uint16, int16, uint4, int4, int32)", dt)
	}
	if a.opset < 21 && (dt == onnxio.TypeInt4 || dt == onnxio.TypeUint4 || dt == onnxio.TypeInt16 || dt == onnxio.TypeUint16) {
		return nil, fmt.Errorf("%s needs opset 21, the model imports %d", dt, a.opset)
	}
	return &dequantizeOp{axis: a.int("axis", 1), block: a.int("block_size", 0), typ: t, opset: a.opset}, nil
}

// intAt reads element i of an integer-valued tensor (int64, or float32 from QuantizeLinear).
func intAt(x *Tensor, i int) int64 {
	if x.DType == Int64 {
		return x.Ints[i]
	}
	return int64(x.Data[i])
}

func (k *dequantizeOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x, s, zpt := in[0], in[1], input(in, 2)
	if err := wantFloat("DequantizeLinear scale", s); err != nil {
		return nil, err
	}
	l, err := newLayout(x, s, zpt, k.axis, k.block, k.opset)
	if err != nil {
		return nil, err
	}
	zp, err := zeroPoints(zpt, l.np)
	if err != nil {
		return nil, err
	}
	if k.typ.dt == onnxio.TypeInt32 {
		for _, z := range zp {
			if z != 0 {
				return nil, fmt.Errorf("an int32 input needs zero points of 0, got %d", z)
			}
		}
	}
	y := c.allocRaw(x.Shape...)
	ps := l.pstride()
	l.each(2, func(_, off, p0 int) {
		for j := range l.inner {
			p := p0 + j*ps
			y.Data[off+j] = float32(intAt(x, off+j)-zp[p]) * s.Data[p]
		}
	})
	return []*Tensor{y}, nil
}

func (k *dequantizeOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	g := gout[0]
	if g == nil {
		return nil, nil
	}
	x, s, zpt := in[0], in[1], input(in, 2)
	l, err := newLayout(x, s, zpt, k.axis, k.block, k.opset)
	if err != nil {
		return nil, err
	}
	zp, err := zeroPoints(zpt, l.np)
	if err != nil {
		return nil, err
	}
	var gx *Tensor
	if c.needGrad(0) {
		if x.DType != Float32 {
			return nil, fmt.Errorf("no gradient for an integer input")
		}
		gx = c.allocRaw(x.Shape...)
	}
	wantS := c.needGrad(1)
	parts := make([][]float64, workers())
	ps := l.pstride()
	l.each(3, func(chunk, off, p0 int) {
		var acc []float64
		if wantS {
			if parts[chunk] == nil {
				parts[chunk] = make([]float64, l.np)
			}
			acc = parts[chunk]
		}
		for j := range l.inner {
			i, p := off+j, p0+j*ps
			if gx != nil {
				gx.Data[i] = g.Data[i] * s.Data[p]
			}
			if acc != nil {
				acc[p] += float64(g.Data[i]) * float64(intAt(x, i)-zp[p])
			}
		}
	})
	var gs *Tensor
	if wantS {
		gs = sumParts(c, parts, s.Shape, lsqGradScale(x.Len(), l.np, k.typ))
	}
	return []*Tensor{gx, gs, nil}, nil
}

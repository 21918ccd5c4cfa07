package quantize

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// rewrite applies the plan: folded activations go, weights and biases are stored as
// integers behind a DequantizeLinear, activation tensors get their Q/DQ pairs.
func (q *quantizer) rewrite() error {
	if len(q.removeNodes) > 0 {
		rm := map[*onnxpb.NodeProto]bool{}
		for _, n := range q.removeNodes {
			rm[n] = true
		}
		onnxio.RemoveNodes(q.g, rm)
	}
	for _, n := range q.nodes {
		if rules[n.GetOpType()].kind != kindCompute {
			continue
		}
		if err := q.rewriteCompute(n); err != nil {
			return fmt.Errorf("node %s: %w", onnxio.NodeLabel(n), err)
		}
	}
	for _, name := range q.order {
		q.insertQDQ(name, q.params[name])
	}
	q.res.ActivationsQuantized = len(q.order)
	return nil
}

// WeightAxis is the per-channel axis of a compute node's weight at input 1 (its output
// channels): Conv 0, ConvTranspose 1, Gemm by transB, MatMul the last axis.
func WeightAxis(n *onnxpb.NodeProto, rank int) int {
	switch n.GetOpType() {
	case "Conv":
		return 0
	case "ConvTranspose":
		return 1
	case "Gemm":
		if a := onnxio.Attr(n, "transB"); a != nil && a.GetI() == 1 {
			return 0
		}
		return 1
	}
	return rank - 1 // MatMul: the output columns
}

func (q *quantizer) rewriteCompute(n *onnxpb.NodeProto) error {
	ru := rules[n.GetOpType()]
	ins := n.GetInput()
	var wScale []float32
	for i, in := range ins {
		if in == "" || i == ru.bias {
			continue
		}
		t, isConst := q.ix.ConstantTensor(in)
		if !isConst {
			continue
		}
		w, err := onnxio.DecodeTensor(t)
		if err != nil {
			return err
		}
		axis := -1
		if i == ru.weight && q.opts.PerChannel && len(w.Shape) >= 2 {
			axis = WeightAxis(n, len(w.Shape))
		}
		scales, zps := q.weightParams(w, axis)
		if i == ru.weight {
			if !q.trt {
				scales = q.fitBias(n, scales, axis)
			}
			wScale = scales
		}
		dq := q.storeWeight(n, in, w, axis, scales, zps)
		n.Input[i] = dq
	}
	if ru.bias >= 0 && ru.bias < len(ins) && ins[ru.bias] != "" && !q.trt {
		q.quantizeBias(n, wScale)
	}
	return nil
}

// weightParams computes per-tensor (axis -1) or per-channel scales and zero points.
func (q *quantizer) weightParams(w *onnxio.Tensor, axis int) ([]float32, []int32) {
	data := w.Data.([]float32)
	sym := q.opts.WeightSymmetric || q.trt
	qr, _ := IntRange(q.opts.WeightType, sym, q.opts.ReduceRange)
	if axis < 0 {
		lo, hi := minMax(data)
		s, zp := scaleZeroPoint(lo, hi, qr, sym)
		return []float32{s}, []int32{zp}
	}
	ch := int(w.Shape[axis])
	inner := 1
	for _, d := range w.Shape[axis+1:] {
		inner *= int(d)
	}
	lo := make([]float32, ch)
	hi := make([]float32, ch)
	for i := range lo {
		lo[i], hi[i] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for off := 0; off+inner <= len(data); {
		for c := 0; c < ch; c++ { // the data is [outer..., ch, inner...]: walk it in runs
			l, h := lo[c], hi[c]
			for _, v := range data[off : off+inner] {
				if v < l {
					l = v
				}
				if v > h {
					h = v
				}
			}
			lo[c], hi[c] = l, h
			off += inner
		}
	}
	scales := make([]float32, ch)
	zps := make([]int32, ch)
	for c := range scales {
		if lo[c] > hi[c] { // empty channel
			lo[c], hi[c] = 0, 0
		}
		scales[c], zps[c] = scaleZeroPoint(lo[c], hi[c], qr, sym)
	}
	return scales, zps
}

// fitBias raises weight scales where the int32 bias would overflow: the bias scale is
// input scale × weight scale, and |bias / bias scale| must stay below 2^31 - 1.
func (q *quantizer) fitBias(n *onnxpb.NodeProto, scales []float32, axis int) []float32 {
	ru := rules[n.GetOpType()]
	ins := n.GetInput()
	if ru.bias < 0 || ru.bias >= len(ins) || ins[ru.bias] == "" || !q.biasQuantizable(n) {
		return scales
	}
	xp := q.params[ins[0]]
	bt, _ := q.ix.ConstantTensor(ins[ru.bias])
	b, err := onnxio.TensorFloat32s(bt)
	if err != nil {
		return scales
	}
	const limit = math.MaxInt32 - 1
	out := append([]float32(nil), scales...)
	adjusted := false
	for c, v := range b {
		k := c
		if len(out) == 1 {
			k = 0
		}
		need := float32(math.Abs(float64(v)) / (float64(xp.scale[0]) * limit) * 1.0001)
		if need > out[k] {
			out[k] = need
			adjusted = true
		}
	}
	if adjusted {
		q.res.BiasAdjusted = append(q.res.BiasAdjusted, onnxio.NodeLabel(n))
	}
	return out
}

// biasQuantizable reports whether the node's bias can become int32: its activation input
// is quantized per tensor, and for Gemm alpha and beta are 1 and the bias is 1-D.
func (q *quantizer) biasQuantizable(n *onnxpb.NodeProto) bool {
	ru := rules[n.GetOpType()]
	xp, ok := q.params[n.GetInput()[0]]
	if !ok || len(xp.scale) != 1 {
		return false
	}
	bt, isConst := q.ix.ConstantTensor(n.GetInput()[ru.bias])
	if !isConst || DataType(bt) != onnxio.TypeFloat || len(bt.GetDims()) != 1 {
		return false
	}
	if n.GetOpType() == "Gemm" {
		for _, name := range []string{"alpha", "beta"} {
			if a := onnxio.Attr(n, name); a != nil && a.GetF() != 1 {
				return false
			}
		}
	}
	return true
}

// storeWeight stores w quantized as an integer initializer followed by a
// DequantizeLinear (cpu) or keeps it float behind a Q/DQ pair (tensorrt), and returns
// the dequantized value's name. Weights shared by several nodes are stored once per
// distinct set of parameters.
func (q *quantizer) storeWeight(n *onnxpb.NodeProto, name string, w *onnxio.Tensor, axis int, scales []float32, zps []int32) string {
	key := fmt.Sprintf("%s|%d|%v", name, axis, scales)
	if dq, ok := q.weights[key]; ok {
		return dq
	}
	sym := q.opts.WeightSymmetric || q.trt
	qr, _ := IntRange(q.opts.WeightType, sym, q.opts.ReduceRange)
	p := &qparam{typ: q.opts.WeightType, scale: scales, zp: zps, axis: axis}
	scaleName, zpName := q.paramInitializers(name, p)
	dqName := q.namer.Name(name + "_dequantized")
	var nodes []*onnxpb.NodeProto
	if q.trt {
		qName := q.namer.Name(name + "_quantized")
		nodes = append(nodes, q.qdqNode("QuantizeLinear", name, scaleName, zpName, qName, p))
		nodes = append(nodes, q.qdqNode("DequantizeLinear", qName, scaleName, zpName, dqName, p))
	} else {
		data := w.Data.([]float32)
		inner := 1
		if axis >= 0 {
			for _, d := range w.Shape[axis+1:] {
				inner *= int(d)
			}
		}
		qName := q.namer.Name(name + "_quantized")
		var t *onnxio.Tensor
		if q.opts.WeightType == onnxio.TypeInt8 {
			v := make([]int8, len(data))
			for i, x := range data {
				c := channel(i, inner, len(scales))
				v[i] = int8(Quantize(x, scales[c], zps[c], qr))
			}
			t = onnxio.NewTensor(w.Shape, v)
		} else {
			v := make([]uint8, len(data))
			for i, x := range data {
				c := channel(i, inner, len(scales))
				v[i] = uint8(Quantize(x, scales[c], zps[c], qr))
			}
			t = onnxio.NewTensor(w.Shape, v)
		}
		tp, _ := onnxio.EncodeTensor(qName, t)
		q.g.Initializer = append(q.g.Initializer, tp)
		nodes = append(nodes, q.qdqNode("DequantizeLinear", qName, scaleName, zpName, dqName, p))
	}
	q.insertBefore(n, nodes...)
	q.weights[key] = dqName
	q.res.WeightsQuantized++
	return dqName
}

func channel(i, inner, n int) int {
	if n == 1 {
		return 0
	}
	return (i / inner) % n
}

// quantizeBias stores the bias as int32 with scale = input scale × weight scale and zero
// point 0, behind a DequantizeLinear.
func (q *quantizer) quantizeBias(n *onnxpb.NodeProto, wScale []float32) {
	ru := rules[n.GetOpType()]
	if !q.biasQuantizable(n) || wScale == nil {
		return
	}
	name := n.GetInput()[ru.bias]
	bt, _ := q.ix.ConstantTensor(name)
	b, _ := onnxio.TensorFloat32s(bt)
	xs := q.params[n.GetInput()[0]].scale[0]
	scales := make([]float32, len(wScale))
	for i, s := range wScale {
		scales[i] = xs * s
	}
	qb := make([]int32, len(b))
	for i, v := range b {
		s := scales[0]
		if len(scales) > 1 {
			s = scales[i]
		}
		r := math.RoundToEven(float64(v) / float64(s))
		qb[i] = int32(math.Max(-math.MaxInt32, math.Min(math.MaxInt32, r)))
	}
	bAxis := -1
	if len(scales) > 1 {
		bAxis = 0
	}
	p := &qparam{typ: onnxio.TypeInt32, scale: scales, zp: make([]int32, len(scales)), axis: bAxis}
	base := q.namer.Name(n.GetOutput()[0] + "_bias")
	qName := q.namer.Name(base + "_quantized")
	tp, _ := onnxio.EncodeTensor(qName, onnxio.NewTensor(bt.GetDims(), qb))
	q.g.Initializer = append(q.g.Initializer, tp)
	scaleName, zpName := q.paramInitializers(base, p)
	dq := q.namer.Name(base + "_dequantized")
	q.insertBefore(n, q.qdqNode("DequantizeLinear", qName, scaleName, zpName, dq, p))
	n.Input[ru.bias] = dq
}

// paramInitializers adds the scale and zero-point initializers of p, named after base.
func (q *quantizer) paramInitializers(base string, p *qparam) (scaleName, zpName string) {
	scaleName = q.namer.Name(base + "_scale")
	zpName = q.namer.Name(base + "_zero_point")
	var shape []int64
	if len(p.scale) > 1 {
		shape = []int64{int64(len(p.scale))}
	} else {
		shape = []int64{}
	}
	st, _ := onnxio.EncodeTensor(scaleName, onnxio.NewTensor(shape, p.scale))
	var zt *onnxio.Tensor
	switch p.typ {
	case onnxio.TypeInt8:
		zt = onnxio.NewTensor(shape, convertInts[int8](p.zp))
	case onnxio.TypeUint8:
		zt = onnxio.NewTensor(shape, convertInts[uint8](p.zp))
	case onnxio.TypeInt16:
		zt = onnxio.NewTensor(shape, convertInts[int16](p.zp))
	case onnxio.TypeUint16:
		zt = onnxio.NewTensor(shape, convertInts[uint16](p.zp))
	default:
		zt = onnxio.NewTensor(shape, p.zp)
	}
	ztp, _ := onnxio.EncodeTensor(zpName, zt)
	q.g.Initializer = append(q.g.Initializer, st, ztp)
	return scaleName, zpName
}

func convertInts[T int8 | uint8 | int16 | uint16](v []int32) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

func (q *quantizer) qdqNode(op, in, scale, zp, out string, p *qparam) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{
		Name:   proto.String(q.namer.Name(out + "_" + op)),
		OpType: proto.String(op),
		Input:  []string{in, scale, zp},
		Output: []string{out},
	}
	if len(p.scale) > 1 {
		n.Attribute = append(n.Attribute, onnxio.AttrInt("axis", int64(p.axis)))
	}
	if contribQDQ(p.typ, q.m.Opset("")) {
		// ONNX's QuantizeLinear/DequantizeLinear take 16- and 4-bit integers from opset 21
		// on; before it onnxruntime's com.microsoft versions do (as onnxruntime's own
		// quantizer does).
		n.Domain = proto.String("com.microsoft")
		if q.m.Opset("com.microsoft") == 0 {
			q.m.SetOpset("com.microsoft", 1)
		}
	}
	return n
}

// contribQDQ reports whether Q/DQ of type dt need onnxruntime's com.microsoft domain in
// a model importing opset.
func contribQDQ(dt onnxio.DataType, opset int64) bool {
	switch dt {
	case onnxio.TypeInt16, onnxio.TypeUint16, onnxio.TypeInt4, onnxio.TypeUint4:
		return opset < 21
	}
	return false
}

// insertBefore puts nodes just before n (their inputs are initializers or values n
// already reads, so the order stays topological).
func (q *quantizer) insertBefore(n *onnxpb.NodeProto, nodes ...*onnxpb.NodeProto) {
	for i, x := range q.g.Node {
		if x == n {
			q.g.Node = append(q.g.Node[:i], append(nodes, q.g.Node[i:]...)...)
			return
		}
	}
	q.g.Node = append(nodes, q.g.Node...)
}

// insertQDQ gives an activation tensor its Q/DQ pair: one shared by all readers (cpu),
// or one per quantized reader (tensorrt).
func (q *quantizer) insertQDQ(name string, p *qparam) {
	scaleName, zpName := q.paramInitializers(name, p)
	if !q.trt {
		qName := q.namer.Name(name + "_quantized")
		dqName := q.namer.Name(name + "_dequantized")
		qn := q.qdqNode("QuantizeLinear", name, scaleName, zpName, qName, p)
		dn := q.qdqNode("DequantizeLinear", qName, scaleName, zpName, dqName, p)
		onnxio.InsertAfter(q.g, name, dqName, true, qn, dn)
		return
	}
	for _, reader := range q.g.GetNode() {
		if !q.readers[name][reader] {
			continue
		}
		qName := q.namer.Name(name + "_quantized")
		dqName := q.namer.Name(name + "_dequantized")
		qn := q.qdqNode("QuantizeLinear", name, scaleName, zpName, qName, p)
		dn := q.qdqNode("DequantizeLinear", qName, scaleName, zpName, dqName, p)
		for i, in := range reader.Input {
			if in == name {
				reader.Input[i] = dqName
			}
		}
		q.insertBefore(reader, qn, dn)
	}
}

package quantize

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Dynamic rewrites MatMul and Gemm nodes with constant weights into dynamic quantization:
// the activation is quantized at run time by DynamicQuantizeLinear (uint8), the weight is
// stored as an integer (per column with PerChannel), and
//
//	Y = float(MatMulInteger(A_q, B_q, A_zp, B_zp)) * (A_scale * B_scale) [+ bias]
//
// which onnxruntime fuses into DynamicQuantizeMatMul. No calibration is needed. Gemm is
// handled when alpha = beta = 1 and transA = 0.
func Dynamic(m *onnxio.Model, opts Options) (*Result, error) {
	if opts.WeightType == onnxio.TypeUndefined {
		opts.WeightType = onnxio.TypeInt8
	}
	if m.Opset("") < 11 {
		return nil, fmt.Errorf("dynamic quantization needs opset 11 or newer (DynamicQuantizeLinear), the model imports %d", m.Opset(""))
	}
	g := m.Graph()
	q := &quantizer{m: m, g: g, opts: opts, res: &Result{Quantized: map[string]int{}}, weights: map[string]string{}}
	q.ix = onnxio.NewIndex(g)
	q.namer = onnxio.NewNamer(g)
	for _, n := range append([]*onnxpb.NodeProto(nil), g.GetNode()...) {
		op := n.GetOpType()
		if n.GetDomain() != "" || !slices.Contains(DynamicOps(), op) || !q.opts.opAllowed(op) {
			continue
		}
		if q.opts.excluded(n.GetName()) {
			q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: excluded by exclude_nodes", onnxio.NodeLabel(n)))
			continue
		}
		if err := q.dynamicNode(n); err != nil {
			return nil, fmt.Errorf("node %s: %w", onnxio.NodeLabel(n), err)
		}
	}
	onnxio.RemoveUnusedInitializers(g)
	if err := onnxio.TopoSort(g); err != nil {
		return nil, err
	}
	return q.res, onnxio.Check(m)
}

func (q *quantizer) dynamicNode(n *onnxpb.NodeProto) error {
	w, bias, err := q.dynamicWeight(n)
	if w == nil || err != nil {
		return err
	}
	qName, scaleName, zpName := q.storeDynamicWeight(n.GetInput()[1], w)
	nodes := q.dynamicChain(n, qName, scaleName, zpName, bias)
	// Replace n by the chain, in place.
	for i, x := range q.g.Node {
		if x == n {
			q.g.Node = append(q.g.Node[:i], append(nodes, q.g.Node[i+1:]...)...)
			break
		}
	}
	q.res.Quantized[n.GetOpType()]++
	q.res.WeightsQuantized++
	return nil
}

// dynamicWeight returns n's weight as MatMulInteger takes it ([K, N]: a Gemm's transB
// undone) and its bias (a Gemm's C, else ""), or a nil weight when n stays float (the
// reason recorded in Skipped).
func (q *quantizer) dynamicWeight(n *onnxpb.NodeProto) (*onnxio.Tensor, string, error) {
	ins := n.GetInput()
	skip := func(format string, args ...any) (*onnxio.Tensor, string, error) {
		q.res.Skipped = append(q.res.Skipped, onnxio.NodeLabel(n)+": "+fmt.Sprintf(format, args...))
		return nil, "", nil
	}
	wt, isConst := q.ix.ConstantTensor(ins[1])
	if !isConst || DataType(wt) != onnxio.TypeFloat || len(wt.GetDims()) != 2 {
		return skip("no constant 2-D float weight")
	}
	w, err := onnxio.DecodeTensor(wt)
	if err != nil {
		return nil, "", err
	}
	if !finite(w.Data.([]float32)...) {
		return skip("weight %q has NaN or Inf values", ins[1])
	}
	if tooSmall(w.Data.([]float32)) {
		return skip("weight %q has values too small for an int8 scale (below %g): they would all quantize to 0", ins[1], smallestWeight)
	}
	if n.GetOpType() != "Gemm" {
		return w, "", nil
	}
	for _, a := range []string{"alpha", "beta"} {
		if at := onnxio.Attr(n, a); at != nil && at.GetF() != 1 {
			return skip("%s != 1", a)
		}
	}
	if at := onnxio.Attr(n, "transA"); at != nil && at.GetI() != 0 {
		return skip("transA")
	}
	if at := onnxio.Attr(n, "transB"); at != nil && at.GetI() == 1 {
		w = transpose2D(w) // MatMulInteger takes B as [K, N]: store the weight transposed
	}
	bias := ""
	if len(ins) > 2 {
		bias = ins[2]
	}
	return w, bias, nil
}

// storeDynamicWeight adds w quantized (per column when per-channel) as an initializer
// named after base, with its scale and zero point, and returns the three names.
func (q *quantizer) storeDynamicWeight(base string, w *onnxio.Tensor) (qName, scaleName, zpName string) {
	axis := -1
	if q.opts.PerChannel {
		axis = 1
	}
	scales, zps := q.weightParams(w, axis)
	p := &qparam{typ: q.opts.WeightType, scale: scales, zp: zps, axis: axis}
	qr, _ := IntRange(q.opts.WeightType, q.opts.WeightSymmetric, q.opts.ReduceRange)
	qName = q.namer.Name(base + "_quantized")
	data := w.Data.([]float32)
	var qt *onnxio.Tensor
	if q.opts.WeightType == onnxio.TypeInt8 {
		v := make([]int8, len(data))
		for i, x := range data {
			c := channel(i, 1, len(scales))
			v[i] = int8(Quantize(x, scales[c], zps[c], qr))
		}
		qt = onnxio.NewTensor(w.Shape, v)
	} else {
		v := make([]uint8, len(data))
		for i, x := range data {
			c := channel(i, 1, len(scales))
			v[i] = uint8(Quantize(x, scales[c], zps[c], qr))
		}
		qt = onnxio.NewTensor(w.Shape, v)
	}
	tp, _ := onnxio.EncodeTensor(qName, qt)
	q.g.Initializer = append(q.g.Initializer, tp)
	scaleName, zpName = q.paramInitializers(base, p)
	return qName, scaleName, zpName
}

// dynamicChain is the chain that replaces n: DynamicQuantizeLinear of its input,
// MatMulInteger with the quantized weight, Cast to float, Mul by both scales, and the
// bias added when there is one; the chain ends in n's output.
func (q *quantizer) dynamicChain(n *onnxpb.NodeProto, qName, scaleName, zpName, bias string) []*onnxpb.NodeProto {
	out := n.GetOutput()[0]
	pre := q.namer.Name(out + "_dyn")
	aq, as, az := q.namer.Name(pre+"_a_quantized"), q.namer.Name(pre+"_a_scale"), q.namer.Name(pre+"_a_zero_point")
	mmi, cast, sc, mul := q.namer.Name(pre+"_int32"), q.namer.Name(pre+"_float"), q.namer.Name(pre+"_scale"), q.namer.Name(pre+"_out")
	node := func(op string, in []string, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String(q.namer.Name(pre + "_" + op)), OpType: proto.String(op), Input: in, Output: outs, Attribute: attrs}
	}
	nodes := []*onnxpb.NodeProto{
		node("DynamicQuantizeLinear", []string{n.GetInput()[0]}, []string{aq, as, az}),
		node("MatMulInteger", []string{aq, qName, az, zpName}, []string{mmi}),
		node("Cast", []string{mmi}, []string{cast}, onnxio.AttrInt("to", int64(onnxio.TypeFloat))),
		node("Mul", []string{as, scaleName}, []string{sc}),
	}
	final := out
	if bias != "" {
		final = mul
	}
	nodes = append(nodes, node("Mul", []string{cast, sc}, []string{final}))
	if bias != "" {
		nodes = append(nodes, node("Add", []string{mul, bias}, []string{out}))
	}
	return nodes
}

func transpose2D(t *onnxio.Tensor) *onnxio.Tensor {
	r, c := int(t.Shape[0]), int(t.Shape[1])
	src := t.Data.([]float32)
	dst := make([]float32, len(src))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			dst[j*r+i] = src[i*c+j]
		}
	}
	return onnxio.NewTensor([]int64{int64(c), int64(r)}, dst)
}

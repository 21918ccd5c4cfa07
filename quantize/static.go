package quantize

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Ranges gives the calibrated real range of an activation tensor; ok is false for
// tensors that were not calibrated (not float, or not reached). calibrate.Table
// implements it.
type Ranges interface {
	Range(name string) (min, max float32, ok bool)
}

// Result reports what Static or Dynamic did.
type Result struct {
	// Quantized counts the quantized nodes by op type.
	Quantized map[string]int `json:"quantized"`
	// Skipped lists nodes of supported types left in float, with the reason.
	Skipped []string `json:"skipped,omitempty"`
	// ActivationsQuantized is the number of activation tensors given a Q/DQ pair.
	ActivationsQuantized int `json:"activations_quantized"`
	// WeightsQuantized is the number of weight tensors stored as integers.
	WeightsQuantized int `json:"weights_quantized"`
	// ActivationsFolded lists Relu/Clip nodes folded into their producer's range.
	ActivationsFolded int `json:"activations_folded"`
	// BiasAdjusted lists nodes whose weight scale was raised so the int32 bias fits.
	BiasAdjusted []string `json:"bias_adjusted,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// qparam is how one tensor is quantized.
type qparam struct {
	typ   onnxio.DataType
	scale []float32 // one value, or one per channel
	zp    []int32
	axis  int // per-channel axis (when len(scale) > 1)
}

// Static rewrites m in place into QDQ form using the calibrated ranges r. The main graph
// must be topologically sorted (Prepare does it); nodes in If/Loop/Scan subgraphs stay in
// float (reported in Result.Notes). The result passes onnxio.Check.
func Static(m *onnxio.Model, r Ranges, opts Options) (*Result, error) {
	q, err := newQuantizer(m, r, opts)
	if err != nil {
		return nil, err
	}
	for _, n := range q.g.GetNode() {
		if len(onnxio.Subgraphs(n)) > 0 {
			q.res.Notes = append(q.res.Notes, fmt.Sprintf("node %s has subgraphs; their nodes stay in float", onnxio.NodeLabel(n)))
		}
	}
	if err := q.plan(); err != nil {
		return nil, err
	}
	if err := q.rewrite(); err != nil {
		return nil, err
	}
	onnxio.RemoveUnusedInitializers(q.g)
	if err := onnxio.TopoSort(q.g); err != nil {
		return nil, err
	}
	return q.res, onnxio.Check(m)
}

// newQuantizer checks opts (filling in the defaults) and m, and indexes m's sorted main
// graph for planning.
func newQuantizer(m *onnxio.Model, r Ranges, opts Options) (*quantizer, error) {
	if opts.ActivationType == onnxio.TypeUndefined {
		opts.ActivationType = onnxio.TypeUint8
	}
	if opts.WeightType == onnxio.TypeUndefined {
		opts.WeightType = onnxio.TypeInt8
	}
	if opts.Profile == "" {
		opts.Profile = ProfileCPU
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opset := m.Opset("")
	if opset < 10 {
		return nil, fmt.Errorf("QuantizeLinear needs opset 10 or newer, the model imports %d; run the prepare stage with min_opset: 13", opset)
	}
	if opts.PerChannel && opset < 13 {
		return nil, fmt.Errorf("per-channel weights need opset 13 or newer, the model imports %d; run prepare with min_opset: 13 or set per_channel: false", opset)
	}
	trt := opts.Profile == ProfileTensorRT
	if trt {
		opts.ActivationType, opts.ActivationSymmetric, opts.WeightSymmetric = onnxio.TypeInt8, true, true
		if opts.WeightType != onnxio.TypeInt8 {
			return nil, fmt.Errorf("profile tensorrt needs int8 weights")
		}
	}
	g := m.Graph()
	if err := onnxio.TopoSort(g); err != nil {
		return nil, err
	}
	q := &quantizer{m: m, g: g, r: r, opts: opts, trt: trt, res: &Result{Quantized: map[string]int{}},
		params: map[string]*qparam{}, weights: map[string]string{}}
	q.ix = onnxio.NewIndex(g)
	q.namer = onnxio.NewNamer(g)
	return q, nil
}

type quantizer struct {
	m     *onnxio.Model
	g     *onnxpb.GraphProto
	ix    *onnxio.Index
	namer *onnxio.Namer
	r     Ranges
	opts  Options
	trt   bool
	res   *Result

	// params of the activation tensors to quantize (by name)
	params map[string]*qparam
	// order of the tensors in params, for deterministic insertion
	order []string
	// consumers that read a tensor's dequantized value (nil map entry: all consumers)
	readers map[string]map[*onnxpb.NodeProto]bool
	// outputs of quantized nodes with no range of their own that a Relu or Clip may fold
	// into (wantOutput)
	foldable map[string]bool
	// nodes to quantize, with their rule
	nodes []*onnxpb.NodeProto
	// weights already quantized: key (name|axis) -> dequantized value name
	weights map[string]string
	// activation nodes folded into their producer, removed by rewrite
	removeNodes []*onnxpb.NodeProto
}

func (q *quantizer) selected(n *onnxpb.NodeProto) (rule, bool) {
	if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
		return rule{}, false
	}
	ru, ok := rules[n.GetOpType()]
	if !ok || !q.opts.opAllowed(n.GetOpType()) {
		return rule{}, false
	}
	if q.opts.excluded(n.GetName()) {
		q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: excluded by exclude_nodes", onnxio.NodeLabel(n)))
		return rule{}, false
	}
	return ru, true
}

// activation computes the parameters of activation tensor name from its calibrated
// range (and overrides). ok is false when it has no range.
func (q *quantizer) activation(name string) (*qparam, bool) {
	lo, hi, ok := q.r.Range(name)
	typ, sym := q.opts.ActivationType, q.opts.ActivationSymmetric
	if ov, has := q.opts.Overrides[name]; has {
		if ov.Min != nil && ov.Max != nil {
			lo, hi, ok = *ov.Min, *ov.Max, true
		}
		if ov.Type != "" {
			typ, _ = onnxio.ParseDataType(ov.Type)
		}
		if ov.Symmetric != nil {
			sym = *ov.Symmetric
		}
	}
	if !ok || !finite(lo, hi) {
		return nil, false
	}
	qr, err := IntRange(typ, sym, false)
	if err != nil {
		return nil, false
	}
	s, zp := scaleZeroPoint(lo, hi, qr, sym)
	return &qparam{typ: typ, scale: []float32{s}, zp: []int32{zp}}, true
}

func (q *quantizer) want(name string, p *qparam, reader *onnxpb.NodeProto) {
	if _, ok := q.params[name]; !ok {
		q.params[name] = p
		q.order = append(q.order, name)
	}
	if q.readers == nil {
		q.readers = map[string]map[*onnxpb.NodeProto]bool{}
	}
	if q.readers[name] == nil {
		q.readers[name] = map[*onnxpb.NodeProto]bool{}
	}
	if reader != nil {
		q.readers[name][reader] = true
	}
}

// plan decides which nodes and tensors are quantized, in topological order.
func (q *quantizer) plan() error {
	// Folding Relu into a range [0, max] is exact only when 0 maps to the lowest
	// quantized value, i.e. with asymmetric activations.
	asym := !q.opts.ActivationSymmetric
	for _, n := range q.g.GetNode() {
		ru, ok := q.selected(n)
		if !ok {
			continue
		}
		if len(n.GetInput()) == 0 || n.GetInput()[0] == "" || len(n.GetOutput()) == 0 || n.GetOutput()[0] == "" {
			q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: no data input or no output (not valid ONNX)", onnxio.NodeLabel(n)))
			continue
		}
		switch ru.kind {
		case kindCompute:
			if err := q.planCompute(n, ru); err != nil {
				return err
			}
		case kindMove:
			in := n.GetInput()[0]
			p, quantized := q.params[in]
			if !quantized || len(p.scale) != 1 {
				continue // onnxruntime only runs these on int8 data that is already there
			}
			if n.GetOpType() == "Pad" && !padIsZero(q.ix, n) {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: pads with a non-zero value", onnxio.NodeLabel(n)))
				continue
			}
			q.want(in, p, n)
			if !q.trt {
				for i, o := range n.GetOutput() {
					if o == "" || (n.GetOpType() == "MaxPool" && i > 0) {
						continue
					}
					if !q.ix.IsGraphOutput(o) && len(q.ix.Consumers[o]) == 0 {
						if _, _, has := q.r.Range(o); !has {
							continue // a value nothing reads, and not calibrated
						}
					}
					q.want(o, p, nil) // same scale and zero point as the input
				}
			}
			q.nodes = append(q.nodes, n)
			q.res.Quantized[n.GetOpType()]++
		case kindOwn:
			if err := q.planOwn(n, ru); err != nil {
				return err
			}
		case kindRemovable:
			if q.trt || !asym {
				continue
			}
			q.planRemovable(n)
		}
	}
	q.dropUnreadScores()
	return nil
}

// dropUnreadScores leaves float the output of each quantized score op that no quantized
// node reads (see scoreOps).
func (q *quantizer) dropUnreadScores() {
	for _, n := range q.nodes {
		if !scoreOps[n.GetOpType()] || len(n.GetOutput()) == 0 {
			continue
		}
		out := n.GetOutput()[0]
		if _, planned := q.params[out]; planned && len(q.readers[out]) == 0 {
			delete(q.params, out)
			q.order = removeString(q.order, out)
		}
	}
}

func padIsZero(ix *onnxio.Index, n *onnxpb.NodeProto) bool {
	if a := onnxio.Attr(n, "mode"); a != nil && string(a.GetS()) != "constant" {
		return true // reflect/edge padding copies existing values
	}
	if len(n.GetInput()) < 3 || n.GetInput()[2] == "" {
		return true
	}
	t, ok := ix.ConstantTensor(n.GetInput()[2])
	if !ok {
		return false
	}
	v, err := onnxio.TensorFloat32s(t)
	return err == nil && len(v) == 1 && v[0] == 0
}

// planCompute handles Conv, ConvTranspose, Gemm and MatMul.
func (q *quantizer) planCompute(n *onnxpb.NodeProto, ru rule) error {
	ins := n.GetInput()
	var need []string
	for i, in := range ins {
		if in == "" || i == ru.bias {
			continue
		}
		if t, isConst := q.ix.ConstantTensor(in); isConst {
			if DataType(t) != onnxio.TypeFloat {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: weight %q is %s, not float", onnxio.NodeLabel(n), in, DataType(t)))
				return nil
			}
			v, err := onnxio.TensorFloat32s(t)
			if err != nil || !finite(v...) {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: weight %q has NaN or Inf values", onnxio.NodeLabel(n), in))
				return nil
			}
			if tooSmall(v) {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: weight %q has values too small for an int8 scale (below %g): they would all quantize to 0", onnxio.NodeLabel(n), in, smallestWeight))
				return nil
			}
			continue
		}
		// Read even when the input already has parameters (a MaxPool's output shares
		// its input's): a table made for these options then holds the range, which a
		// quantization with more nodes excluded (auto_exclude: the MaxPool in float)
		// needs.
		if _, ok := q.activation(in); !ok {
			q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: input %q has no calibrated range", onnxio.NodeLabel(n), in))
			return nil
		}
		need = append(need, in)
	}
	if why := biasMismatch(q.ix, n, ru); why != "" {
		q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: %s", onnxio.NodeLabel(n), why))
		return nil
	}
	if n.GetOpType() == "Gemm" {
		if a := onnxio.Attr(n, "transA"); a != nil && a.GetI() != 0 {
			if _, isConst := q.ix.ConstantTensor(ins[0]); isConst {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: transposed constant A", onnxio.NodeLabel(n)))
				return nil
			}
		}
	}
	for _, in := range need {
		p, ok := q.params[in]
		if !ok {
			p, _ = q.activation(in)
		}
		q.want(in, p, n)
	}
	out := n.GetOutput()[0]
	// Gemm and MatMul have int8 kernels with a float output (QGemm, MatMulIntegerToFloat):
	// a graph output they produce stays float, sparing the model's outputs a rounding.
	floatOut := q.ix.IsGraphOutput(out) && (n.GetOpType() == "Gemm" || n.GetOpType() == "MatMul")
	if !q.trt && !floatOut {
		q.wantOutput(out)
	}
	q.nodes = append(q.nodes, n)
	q.res.Quantized[n.GetOpType()]++
	return nil
}

// scoreOps make probabilities and scores; where no quantized node reads one (it is a
// graph output, or feeds a comparison, an If, the float rest of the graph), its output
// stays float: nothing after it runs in int8, and a Q/DQ there rounds it to a step of
// 1/255 (a wake-word score of 1e-4 becomes 0, a detector's confidences move by 0.004).
var scoreOps = map[string]bool{"Sigmoid": true, "HardSigmoid": true, "Softmax": true, "Tanh": true}

// planOwn gives every listed float input and the output their own calibrated Q/DQ (but
// see scoreOps).
func (q *quantizer) planOwn(n *onnxpb.NodeProto, ru rule) error {
	idx := ru.inputs
	if idx == nil {
		for i := range n.GetInput() {
			idx = append(idx, i)
		}
	}
	type pick struct {
		name  string
		p     *qparam
		isCst bool
	}
	var picks []pick
	for _, i := range idx {
		if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
			continue
		}
		in := n.GetInput()[i]
		if t, isConst := q.ix.ConstantTensor(in); isConst {
			if DataType(t) != onnxio.TypeFloat {
				continue
			}
			// A constant operand (Add's bias, Mul's scale) is quantized per tensor.
			v, err := onnxio.TensorFloat32s(t)
			if err != nil {
				return err
			}
			if !finite(v...) {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: constant %q has NaN or Inf values", onnxio.NodeLabel(n), in))
				return nil
			}
			lo, hi := minMax(v)
			qr, _ := IntRange(q.opts.ActivationType, q.opts.ActivationSymmetric, false)
			s, zp := scaleZeroPoint(lo, hi, qr, q.opts.ActivationSymmetric)
			picks = append(picks, pick{in, &qparam{typ: q.opts.ActivationType, scale: []float32{s}, zp: []int32{zp}}, true})
			continue
		}
		p, ok := q.params[in]
		if !ok {
			if p, ok = q.activation(in); !ok {
				q.res.Skipped = append(q.res.Skipped, fmt.Sprintf("%s: input %q has no calibrated range", onnxio.NodeLabel(n), in))
				return nil
			}
		} else {
			// Not needed here (a MaxPool's output shares its input's parameters), but
			// read all the same: a table made for these options then holds the range a
			// quantization with that producer excluded needs (CalibrationTensorsFor).
			q.r.Range(in)
		}
		picks = append(picks, pick{in, p, false})
	}
	if len(picks) == 0 {
		return nil
	}
	for _, pk := range picks {
		q.want(pk.name, pk.p, n)
	}
	if out := n.GetOutput()[0]; !q.trt {
		if ru.fixedOutput != nil {
			qr, _ := IntRange(q.opts.ActivationType, q.opts.ActivationSymmetric, false)
			s, zp := scaleZeroPoint(ru.fixedOutput[0], ru.fixedOutput[1], qr, q.opts.ActivationSymmetric)
			q.want(out, &qparam{typ: q.opts.ActivationType, scale: []float32{s}, zp: []int32{zp}}, nil)
		} else {
			q.wantOutput(out)
		}
	}
	q.nodes = append(q.nodes, n)
	q.res.Quantized[n.GetOpType()]++
	return nil
}

// wantOutput quantizes the output out of a node being quantized with its calibrated
// range. Without one, when a Relu or Clip reads out alone, the fold may still come:
// folding replaces out's range with the activation's (planRemovable), so a table made for
// these options (CalibrationTensorsFor) leaves such outputs out, and out is marked to
// be folded.
func (q *quantizer) wantOutput(out string) {
	if p, ok := q.activation(out); ok {
		q.want(out, p, nil)
		return
	}
	if cons := q.ix.Consumers[out]; len(cons) == 1 && rules[cons[0].GetOpType()].kind == kindRemovable && !q.ix.IsGraphOutput(out) {
		if q.foldable == nil {
			q.foldable = map[string]bool{}
		}
		q.foldable[out] = true
	}
}

// planRemovable folds a Relu, or a Clip with constant bounds whose lower bound is 0, into
// the output range of the quantized node before it: quantizing with the activation's
// output range [0, max] clamps exactly as the activation does, so onnxruntime drops it.
func (q *quantizer) planRemovable(n *onnxpb.NodeProto) {
	in, out := n.GetInput()[0], n.GetOutput()[0]
	prod := q.ix.Producer[in]
	if prod == nil || len(q.ix.Consumers[in]) != 1 || q.ix.IsGraphOutput(in) {
		return
	}
	if _, ok := q.params[in]; !ok && !q.foldable[in] || !containsNode(q.nodes, prod) {
		return
	}
	if n.GetOpType() == "Clip" {
		lo, hi, ok := q.ix.ClipBounds(n)
		if !ok || lo != 0 {
			return
		}
		if _, _, has := q.r.Range(out); !has || hi <= lo {
			return
		}
	}
	p, ok := q.activation(out)
	if !ok {
		return
	}
	// The producer now writes the activation's output directly, with its range.
	delete(q.params, in)
	q.order = removeString(q.order, in)
	prod.Output[0] = out
	q.removeNodes = append(q.removeNodes, n)
	q.want(out, p, nil)
	q.res.ActivationsFolded++
}

func containsNode(ns []*onnxpb.NodeProto, n *onnxpb.NodeProto) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

func removeString(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func minMax(v []float32) (float32, float32) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// biasMismatch says why n's constant bias cannot be quantized with its weight's scales:
// the int32 bias needs one value per output channel of the weight ("" when it has, or
// when n has no constant bias or weight).
func biasMismatch(ix *onnxio.Index, n *onnxpb.NodeProto, ru rule) string {
	ins := n.GetInput()
	if ru.bias < 0 || ru.bias >= len(ins) || ins[ru.bias] == "" || ru.weight < 0 || ru.weight >= len(ins) {
		return ""
	}
	bt, isConst := ix.ConstantTensor(ins[ru.bias])
	wt, wConst := ix.ConstantTensor(ins[ru.weight])
	if !isConst || !wConst || len(wt.GetDims()) < 2 {
		return ""
	}
	nb, err := onnxio.NumElements(bt.GetDims())
	if err != nil {
		return "its bias's shape is invalid"
	}
	ch := wt.GetDims()[WeightAxis(n, len(wt.GetDims()))]
	if a := onnxio.Attr(n, "group"); a != nil && n.GetOpType() == "ConvTranspose" && a.GetI() > 1 {
		ch *= a.GetI() // the weight is [C, M/group, ...]
	}
	if nb != ch {
		return fmt.Sprintf("its bias has %d values, its weight %d output channels", nb, ch)
	}
	return ""
}

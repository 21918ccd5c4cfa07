package qat

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/quantize"
)

// Weight is one fake-quantized weight of a trainable model.
type Weight struct {
	// Name is the float initializer that training updates.
	Name string `json:"name"`
	// Scale and ZeroPoint are the initializers of its QuantizeLinear (ZeroPoint "" when
	// absent); Scale is learnable.
	Scale     string `json:"scale"`
	ZeroPoint string `json:"zero_point,omitempty"`
	// Type is the quantized type (int8, uint8, int4, uint4, int16, uint16).
	Type onnxio.DataType `json:"type"`
	// Axis is the per-channel axis, -1 per tensor.
	Axis int `json:"axis"`
}

// Info describes the fake quantization of a trainable model.
type Info struct {
	// Weights are the fake-quantized weights, in graph order.
	Weights []Weight `json:"weights"`
	// Biases are the float biases that were int32 in the QDQ model.
	Biases []string `json:"biases,omitempty"`
	// ActivationScales are the scale initializers of the activations' QuantizeLinear nodes.
	ActivationScales []string `json:"activation_scales,omitempty"`
	// Notes say what was left as it was, and why.
	Notes []string `json:"notes,omitempty"`
}

// WeightScales returns the scale initializers of the weights.
func (in *Info) WeightScales() []string {
	var out []string
	for _, w := range in.Weights {
		if !slices.Contains(out, w.Scale) {
			out = append(out, w.Scale)
		}
	}
	return out
}

// LearnScales returns a train.CompileOptions.LearnScales function that selects the
// weights' scales, the activations' scales or both (nil when neither).
func (in *Info) LearnScales(weights, activations bool) func(name string) bool {
	if !weights && !activations {
		return nil
	}
	set := map[string]bool{}
	if weights {
		for _, s := range in.WeightScales() {
			set[s] = true
		}
	}
	if activations {
		for _, s := range in.ActivationScales {
			set[s] = true
		}
	}
	return func(name string) bool { return set[name] }
}

// isFloatInit reports whether name is a float initializer (and not a graph input).
func isFloatInit(ix *onnxio.Index, name string) (*onnxpb.TensorProto, bool) {
	t, ok := ix.Initializers[name]
	if _, isInput := ix.Inputs[name]; !ok || isInput {
		return nil, false
	}
	return t, onnxio.DataType(t.GetDataType()) == onnxio.TypeFloat
}

// describe lists the fake-quantized weights and activation scales of m.
func describe(m *onnxio.Model, biases []string, notes []string) *Info {
	g := m.Graph()
	ix := onnxio.NewIndex(g)
	info := &Info{Biases: biases, Notes: notes}
	for _, n := range g.GetNode() {
		if n.GetOpType() != "QuantizeLinear" || !defaultDomain(n) || len(n.GetInput()) < 2 {
			continue
		}
		x, s := n.GetInput()[0], n.GetInput()[1]
		if _, ok := ix.Initializers[s]; !ok {
			continue
		}
		wt, isW := isFloatInit(ix, x)
		if !isW {
			if !slices.Contains(info.ActivationScales, s) {
				info.ActivationScales = append(info.ActivationScales, s)
			}
			continue
		}
		p, err := readParams(ix, n, wt.GetDims(), onnxio.TypeUint8)
		if err != nil {
			continue
		}
		w := Weight{Name: x, Scale: s, ZeroPoint: p.zpName, Type: p.dt, Axis: -1}
		if len(p.scale) > 1 {
			w.Axis = p.axis
		}
		info.Weights = append(info.Weights, w)
	}
	return info
}

func defaultDomain(n *onnxpb.NodeProto) bool {
	return n.GetDomain() == "" || n.GetDomain() == "ai.onnx"
}

// Trainable converts a QDQ model (integer weights behind DequantizeLinear) into a
// fake-quantized model for training; m is not changed. Each DequantizeLinear of an
// integer weight initializer (int8, uint8, int4, uint4, int16, uint16; per tensor or per
// axis) gets a float initializer holding the dequantized weight, followed by a new
// QuantizeLinear with the same scale, zero point and axis whose output takes the integer
// initializer's name, so the DequantizeLinear and everything after it are unchanged and
// the model computes exactly what the QDQ model did. Each DequantizeLinear of an int32
// initializer (a bias) is replaced by a float initializer of its value. Blocked
// DequantizeLinear nodes stay as they are (noted in Info.Notes). Float weights already
// behind QuantizeLinear → DequantizeLinear (TensorRT-style QDQ) are trainable as they are.
func Trainable(m *onnxio.Model) (*onnxio.Model, *Info, error) {
	if m == nil || m.Proto.GetGraph() == nil {
		return nil, nil, errors.New("qat: the model has no graph")
	}
	out := m.Clone()
	g := out.Graph()
	p := &trainablePass{g: g, ix: onnxio.NewIndex(g), namer: onnxio.NewNamer(g),
		removeInit: map[string]bool{}, removeNode: map[*onnxpb.NodeProto]bool{}}
	for _, n := range g.GetNode() {
		if err := p.node(n); err != nil {
			return nil, nil, err
		}
	}
	var inits []*onnxpb.TensorProto
	for _, t := range g.GetInitializer() {
		if !p.removeInit[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = append(inits, p.added...)
	g.Input = slices.DeleteFunc(g.Input, func(vi *onnxpb.ValueInfoProto) bool { return p.removeInit[vi.GetName()] })
	g.Node = slices.DeleteFunc(p.nodes, func(n *onnxpb.NodeProto) bool { return p.removeNode[n] })
	onnxio.RemoveUnusedInitializers(g)
	if err := onnxio.TopoSort(g); err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	if err := onnxio.Check(out); err != nil {
		return nil, nil, fmt.Errorf("qat: the trainable model: %w", err)
	}
	return out, describe(out, p.biases, p.notes), nil
}

// trainablePass is Trainable's pass over the nodes of g and what it collects.
type trainablePass struct {
	g          *onnxpb.GraphProto
	ix         *onnxio.Index
	namer      *onnxio.Namer
	biases     []string // the float initializers that replace int32 ones
	notes      []string
	removeInit map[string]bool // the integer initializers replaced
	removeNode map[*onnxpb.NodeProto]bool
	added      []*onnxpb.TensorProto // the new initializers
	nodes      []*onnxpb.NodeProto   // the nodes in order, with the new QuantizeLinear nodes
}

// node appends n to the nodes, converting it first when it is a DequantizeLinear of an
// integer initializer: an int32 one (a bias) is replaced by a float initializer, any
// other gets a float initializer and a QuantizeLinear before it.
func (p *trainablePass) node(n *onnxpb.NodeProto) error {
	if n.GetOpType() != "DequantizeLinear" || !defaultDomain(n) {
		p.nodes = append(p.nodes, n)
		return nil
	}
	xName := n.GetInput()[0]
	xt, isInit := p.ix.Initializers[xName]
	if !isInit || p.removeInit[xName] {
		p.nodes = append(p.nodes, n)
		return nil
	}
	xo, err := onnxio.DecodeTensor(xt)
	if err != nil {
		return fmt.Errorf("qat: %s: %v", onnxio.NodeLabel(n), err)
	}
	q, err := ints(xo)
	if err != nil {
		p.nodes = append(p.nodes, n) // not an integer tensor
		return nil
	}
	qp, err := readParams(p.ix, n, xo.Shape, xo.Type)
	if err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s left as it is: %v", onnxio.NodeLabel(n), err))
		p.nodes = append(p.nodes, n)
		return nil
	}
	base, wName, err := p.addDequantized(xName, xo.Shape, q, qp)
	if err != nil {
		return err
	}
	if xo.Type == onnxio.TypeInt32 {
		return p.floatBias(n, xName, wName)
	}
	return p.fakeQuant(n, qp, xName, base, wName)
}

// addDequantized adds a float initializer holding the dequantized values q (of shape) of
// integer initializer xName, which it marks for removal, and returns the base of its
// name (xName without "_quantized", else with "_float") and its name.
func (p *trainablePass) addDequantized(xName string, shape, q []int64, qp *qparams) (base, wName string, err error) {
	ch := qp.channelFn(shape)
	w := make([]float32, len(q))
	for i, v := range q {
		c := ch(i)
		w[i] = dequantizeValue(v, qp.scale[c], qp.zp[c])
	}
	base = strings.TrimSuffix(xName, "_quantized")
	if base == xName {
		base += "_float"
	}
	wName = p.namer.Name(base)
	wt, err := onnxio.EncodeTensor(wName, onnxio.NewTensor(shape, w))
	if err != nil {
		return "", "", fmt.Errorf("qat: %v", err)
	}
	p.added = append(p.added, wt)
	p.removeInit[xName] = true
	return base, wName, nil
}

// floatBias makes every reader of n, the DequantizeLinear of int32 initializer xName,
// read the float initializer wName instead, and removes n.
func (p *trainablePass) floatBias(n *onnxpb.NodeProto, xName, wName string) error {
	if len(p.ix.Consumers[xName]) > 1 {
		return fmt.Errorf("qat: int32 initializer %q has other readers than %s", xName, onnxio.NodeLabel(n))
	}
	for _, o := range p.g.GetOutput() {
		if o.GetName() == n.GetOutput()[0] {
			return fmt.Errorf("qat: %s writes a graph output", onnxio.NodeLabel(n))
		}
	}
	onnxio.ReplaceUses(p.g, n.GetOutput()[0], wName)
	p.removeNode[n] = true
	p.biases = append(p.biases, wName)
	return nil
}

// fakeQuant puts a QuantizeLinear of the float initializer wName before n, the
// DequantizeLinear of integer initializer xName, with n's scale, zero point and axis;
// its output takes xName's name. A zero point n lacks is added (zeros of n's type), as
// QuantizeLinear without one produces uint8.
func (p *trainablePass) fakeQuant(n *onnxpb.NodeProto, qp *qparams, xName, base, wName string) error {
	zpName := qp.zpName
	if zpName == "" {
		zpName = p.namer.Name(base + "_zero_point")
		zt, err := intTensor(qp.dt, qp.shape, make([]int64, len(qp.scale)))
		if err != nil {
			return fmt.Errorf("qat: %v", err)
		}
		ztp, err := onnxio.EncodeTensor(zpName, zt)
		if err != nil {
			return fmt.Errorf("qat: %v", err)
		}
		p.added = append(p.added, ztp)
		for len(n.Input) < 3 {
			n.Input = append(n.Input, "")
		}
		n.Input[2] = zpName
	}
	qn := &onnxpb.NodeProto{
		Name:   proto.String(p.namer.Name(xName + "_QuantizeLinear")),
		OpType: proto.String("QuantizeLinear"),
		Input:  []string{wName, qp.scaleName, zpName},
		Output: []string{xName},
	}
	if a := onnxio.Attr(n, "axis"); a != nil {
		qn.Attribute = append(qn.Attribute, proto.Clone(a).(*onnxpb.AttributeProto))
	}
	p.nodes = append(p.nodes, qn, n)
	return nil
}

// WeightOptions configures FakeQuantWeights. The zero value is int4, symmetric, per
// output channel, on Conv, ConvTranspose, Gemm and MatMul.
type WeightOptions struct {
	// Type is the weights' quantized type: TypeInt4 (default), TypeUint4, TypeInt8,
	// TypeUint8.
	Type onnxio.DataType
	// PerTensor quantizes each weight with one scale instead of one per output channel.
	PerTensor bool
	// Asymmetric uses the weights' min and max (with a zero point) instead of ±max|w|.
	Asymmetric bool
	// OpTypes limits the op types whose weights are quantized (empty: Conv,
	// ConvTranspose, Gemm, MatMul).
	OpTypes []string
	// ExcludeNodes are node names whose weights stay float.
	ExcludeNodes []string
}

// FakeQuantWeights returns a copy of the float model m whose Conv, ConvTranspose, Gemm
// and MatMul weights (float initializers at input 1) go through QuantizeLinear →
// DequantizeLinear, with scales and zero points from each weight's range
// (calibrate.ScaleZeroPoint: symmetric ±max|w| over [-7, 7] for int4, [-127, 127] for
// int8), per output channel (Conv axis 0, ConvTranspose 1, Gemm 0 or 1 by transB,
// MatMul the last) or per tensor. int4 and uint4 raise the opset to 21 (IR version 10),
// per-channel int8 to 13. A weight read by several nodes with the same axis gets one
// pair. Finalize on the result, untrained, is round-to-nearest post-training weight
// quantization.
func FakeQuantWeights(m *onnxio.Model, opts WeightOptions) (*onnxio.Model, *Info, error) {
	if m == nil || m.Proto.GetGraph() == nil {
		return nil, nil, errors.New("qat: the model has no graph")
	}
	if opts.Type == onnxio.TypeUndefined {
		opts.Type = onnxio.TypeInt4
	}
	switch opts.Type {
	case onnxio.TypeInt4, onnxio.TypeUint4, onnxio.TypeInt8, onnxio.TypeUint8:
	default:
		return nil, nil, fmt.Errorf("qat: weight type %s: int4, uint4, int8 or uint8", opts.Type)
	}
	ops := opts.OpTypes
	if len(ops) == 0 {
		ops = []string{"Conv", "ConvTranspose", "Gemm", "MatMul"}
	}
	out := m.Clone()
	if err := raiseOpset(out, opts); err != nil {
		return nil, nil, err
	}
	g := out.Graph()
	p := &fakeQuantPass{g: g, ix: onnxio.NewIndex(g), namer: onnxio.NewNamer(g), opts: opts, ops: ops,
		sym: !opts.Asymmetric, done: map[string]string{}}
	var err error
	if p.qr, err = quantize.IntRange(opts.Type, p.sym, false); err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	for _, n := range g.GetNode() {
		if err := p.node(n); err != nil {
			return nil, nil, err
		}
	}
	g.Node = p.nodes
	if err := onnxio.TopoSort(g); err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	if err := onnxio.Check(out); err != nil {
		return nil, nil, fmt.Errorf("qat: the fake-quantized model: %w", err)
	}
	return out, describe(out, nil, p.notes), nil
}

// raiseOpset raises m's opset to what the weights' QuantizeLinear and DequantizeLinear
// need: 21 for int4 and uint4 (with IR version 10, for int4 initializers), 13 per
// channel, else 10.
func raiseOpset(m *onnxio.Model, opts WeightOptions) error {
	need := int64(10)
	if !opts.PerTensor {
		need = 13
	}
	if opts.Type == onnxio.TypeInt4 || opts.Type == onnxio.TypeUint4 {
		need = 21
	}
	if m.Opset("") < need {
		if err := quantize.UpgradeOpset(m, need); err != nil {
			return fmt.Errorf("qat: %w", err)
		}
	}
	if need >= 21 && m.Proto.GetIrVersion() < 10 {
		m.Proto.IrVersion = proto.Int64(10) // int4 initializers
	}
	return nil
}

// fakeQuantPass is FakeQuantWeights' pass over the nodes of g and what it collects.
type fakeQuantPass struct {
	g     *onnxpb.GraphProto
	ix    *onnxio.Index
	namer *onnxio.Namer
	opts  WeightOptions
	ops   []string // the op types whose weights are quantized
	qr    quantize.QRange
	sym   bool
	done  map[string]string // weight|axis -> dequantized name
	nodes []*onnxpb.NodeProto
	notes []string
}

// node appends n to the nodes; when n is one of the op types and its input 1 a float
// initializer, n reads the weight through a QuantizeLinear → DequantizeLinear pair
// instead, added before it unless the weight has one for that axis already.
func (p *fakeQuantPass) node(n *onnxpb.NodeProto) error {
	if !defaultDomain(n) || !slices.Contains(p.ops, n.GetOpType()) || slices.Contains(p.opts.ExcludeNodes, n.GetName()) || len(n.GetInput()) < 2 {
		p.nodes = append(p.nodes, n)
		return nil
	}
	wName := n.GetInput()[1]
	wt, ok := isFloatInit(p.ix, wName)
	if !ok {
		p.nodes = append(p.nodes, n)
		return nil
	}
	axis := p.weightAxis(n, wName, wt.GetDims())
	key := fmt.Sprintf("%s|%d", wName, axis)
	if dq, ok := p.done[key]; ok {
		n.Input[1] = dq
		p.nodes = append(p.nodes, n)
		return nil
	}
	dqName, err := p.addQDQ(wName, wt, axis)
	if err != nil {
		return err
	}
	p.done[key] = dqName
	n.Input[1] = dqName
	p.nodes = append(p.nodes, n)
	return nil
}

// weightAxis returns the axis along which n's weight wName of shape dims is quantized:
// quantize.WeightAxis, or -1 (per tensor) with PerTensor or for a weight of rank below 2
// (noted).
func (p *fakeQuantPass) weightAxis(n *onnxpb.NodeProto, wName string, dims []int64) int {
	if p.opts.PerTensor {
		return -1
	}
	if len(dims) < 2 {
		p.notes = append(p.notes, fmt.Sprintf("%s: weight %q of rank %d is quantized per tensor", onnxio.NodeLabel(n), wName, len(dims)))
		return -1
	}
	return quantize.WeightAxis(n, len(dims))
}

// addQDQ adds the scale and zero point of weight wName (from its range, per tensor or
// along axis) as initializers and a QuantizeLinear → DequantizeLinear pair of the weight
// to the nodes, and returns the name of the dequantized weight.
func (p *fakeQuantPass) addQDQ(wName string, wt *onnxpb.TensorProto, axis int) (string, error) {
	w, err := onnxio.TensorFloat32s(wt)
	if err != nil {
		return "", fmt.Errorf("qat: weight %q: %v", wName, err)
	}
	scales, zps, err := weightParams(w, wt.GetDims(), axis, p.qr, p.sym)
	if err != nil {
		return "", fmt.Errorf("qat: weight %q: %v", wName, err)
	}
	shape := []int64{}
	if axis >= 0 {
		shape = []int64{int64(len(scales))}
	}
	sName := p.namer.Name(wName + "_scale")
	zName := p.namer.Name(wName + "_zero_point")
	st, err := onnxio.EncodeTensor(sName, onnxio.NewTensor(shape, scales))
	if err != nil {
		return "", fmt.Errorf("qat: %v", err)
	}
	zt, err := intTensor(p.opts.Type, shape, zps)
	if err != nil {
		return "", fmt.Errorf("qat: %v", err)
	}
	ztp, err := onnxio.EncodeTensor(zName, zt)
	if err != nil {
		return "", fmt.Errorf("qat: %v", err)
	}
	p.g.Initializer = append(p.g.Initializer, st, ztp)
	qName := p.namer.Name(wName + "_quantized")
	dqName := p.namer.Name(wName + "_dequantized")
	var at []*onnxpb.AttributeProto
	if axis >= 0 {
		at = []*onnxpb.AttributeProto{onnxio.AttrInt("axis", int64(axis))}
	}
	qn := &onnxpb.NodeProto{Name: proto.String(p.namer.Name(qName + "_QuantizeLinear")), OpType: proto.String("QuantizeLinear"),
		Input: []string{wName, sName, zName}, Output: []string{qName}, Attribute: at}
	dn := &onnxpb.NodeProto{Name: proto.String(p.namer.Name(dqName + "_DequantizeLinear")), OpType: proto.String("DequantizeLinear"),
		Input: []string{qName, sName, zName}, Output: []string{dqName}, Attribute: cloneAttrs(at)}
	p.nodes = append(p.nodes, qn, dn)
	return dqName, nil
}

func cloneAttrs(at []*onnxpb.AttributeProto) []*onnxpb.AttributeProto {
	out := make([]*onnxpb.AttributeProto, len(at))
	for i, a := range at {
		out[i] = proto.Clone(a).(*onnxpb.AttributeProto)
	}
	return out
}

// weightParams computes per-tensor (axis -1) or per-channel scales and zero points from
// w's range.
func weightParams(w []float32, dims []int64, axis int, qr quantize.QRange, sym bool) ([]float32, []int64, error) {
	nc, inner := 1, len(w)
	if axis >= 0 {
		nc = int(dims[axis])
		inner = 1
		for _, d := range dims[axis+1:] {
			inner *= int(d)
		}
	}
	lo := make([]float32, nc)
	hi := make([]float32, nc)
	for c := range lo {
		lo[c], hi[c] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for i, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("element %d is %g", i, v)
		}
		c := (i / inner) % nc
		lo[c], hi[c] = min(lo[c], v), max(hi[c], v)
	}
	scales := make([]float32, nc)
	zps := make([]int64, nc)
	for c := range scales {
		if lo[c] > hi[c] {
			lo[c], hi[c] = 0, 0
		}
		s, z := calibrate.ScaleZeroPoint(lo[c], hi[c], qr.Min, qr.Max, sym)
		scales[c], zps[c] = s, int64(z)
	}
	return scales, zps, nil
}

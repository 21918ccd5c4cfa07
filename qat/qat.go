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
	ix := onnxio.NewIndex(g)
	namer := onnxio.NewNamer(g)
	var biases, notes []string
	removeInit := map[string]bool{}
	removeNode := map[*onnxpb.NodeProto]bool{}
	var added []*onnxpb.TensorProto
	var nodes []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if n.GetOpType() != "DequantizeLinear" || !defaultDomain(n) {
			nodes = append(nodes, n)
			continue
		}
		xName := n.GetInput()[0]
		xt, isInit := ix.Initializers[xName]
		if !isInit || removeInit[xName] {
			nodes = append(nodes, n)
			continue
		}
		xo, err := onnxio.DecodeTensor(xt)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %s: %v", onnxio.NodeLabel(n), err)
		}
		q, err := ints(xo)
		if err != nil {
			nodes = append(nodes, n) // not an integer tensor
			continue
		}
		p, err := readParams(ix, n, xo.Shape, xo.Type)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s left as it is: %v", onnxio.NodeLabel(n), err))
			nodes = append(nodes, n)
			continue
		}
		ch := p.channelFn(xo.Shape)
		w := make([]float32, len(q))
		for i, v := range q {
			c := ch(i)
			w[i] = dequantizeValue(v, p.scale[c], p.zp[c])
		}
		base := strings.TrimSuffix(xName, "_quantized")
		if base == xName {
			base += "_float"
		}
		wName := namer.Name(base)
		wt, err := onnxio.EncodeTensor(wName, onnxio.NewTensor(xo.Shape, w))
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %v", err)
		}
		added = append(added, wt)
		removeInit[xName] = true
		if xo.Type == onnxio.TypeInt32 {
			// A bias: float from now on; every reader of the DequantizeLinear reads it.
			if len(ix.Consumers[xName]) > 1 {
				return nil, nil, fmt.Errorf("qat: int32 initializer %q has other readers than %s", xName, onnxio.NodeLabel(n))
			}
			for _, o := range g.GetOutput() {
				if o.GetName() == n.GetOutput()[0] {
					return nil, nil, fmt.Errorf("qat: %s writes a graph output", onnxio.NodeLabel(n))
				}
			}
			onnxio.ReplaceUses(g, n.GetOutput()[0], wName)
			removeNode[n] = true
			biases = append(biases, wName)
			continue
		}
		zpName := p.zpName
		if zpName == "" {
			// QuantizeLinear without a zero point would produce uint8.
			zpName = namer.Name(base + "_zero_point")
			zt, err := intTensor(p.dt, p.shape, make([]int64, len(p.scale)))
			if err != nil {
				return nil, nil, fmt.Errorf("qat: %v", err)
			}
			ztp, err := onnxio.EncodeTensor(zpName, zt)
			if err != nil {
				return nil, nil, fmt.Errorf("qat: %v", err)
			}
			added = append(added, ztp)
			for len(n.Input) < 3 {
				n.Input = append(n.Input, "")
			}
			n.Input[2] = zpName
		}
		qn := &onnxpb.NodeProto{
			Name:   proto.String(namer.Name(xName + "_QuantizeLinear")),
			OpType: proto.String("QuantizeLinear"),
			Input:  []string{wName, p.scaleName, zpName},
			Output: []string{xName},
		}
		if a := onnxio.Attr(n, "axis"); a != nil {
			qn.Attribute = append(qn.Attribute, proto.Clone(a).(*onnxpb.AttributeProto))
		}
		nodes = append(nodes, qn, n)
	}
	var inits []*onnxpb.TensorProto
	for _, t := range g.GetInitializer() {
		if !removeInit[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = append(inits, added...)
	g.Input = slices.DeleteFunc(g.Input, func(vi *onnxpb.ValueInfoProto) bool { return removeInit[vi.GetName()] })
	g.Node = slices.DeleteFunc(nodes, func(n *onnxpb.NodeProto) bool { return removeNode[n] })
	onnxio.RemoveUnusedInitializers(g)
	if err := onnxio.TopoSort(g); err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	if err := onnxio.Check(out); err != nil {
		return nil, nil, fmt.Errorf("qat: the trainable model: %w", err)
	}
	return out, describe(out, biases, notes), nil
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
	need := int64(10)
	if !opts.PerTensor {
		need = 13
	}
	if opts.Type == onnxio.TypeInt4 || opts.Type == onnxio.TypeUint4 {
		need = 21
	}
	if out.Opset("") < need {
		if err := quantize.UpgradeOpset(out, need); err != nil {
			return nil, nil, fmt.Errorf("qat: %w", err)
		}
	}
	if need >= 21 && out.Proto.GetIrVersion() < 10 {
		out.Proto.IrVersion = proto.Int64(10) // int4 initializers
	}
	g := out.Graph()
	ix := onnxio.NewIndex(g)
	namer := onnxio.NewNamer(g)
	sym := !opts.Asymmetric
	qr, err := quantize.IntRange(opts.Type, sym, false)
	if err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	done := map[string]string{} // weight|axis -> dequantized name
	var nodes []*onnxpb.NodeProto
	var notes []string
	for _, n := range g.GetNode() {
		if !defaultDomain(n) || !slices.Contains(ops, n.GetOpType()) || slices.Contains(opts.ExcludeNodes, n.GetName()) || len(n.GetInput()) < 2 {
			nodes = append(nodes, n)
			continue
		}
		wName := n.GetInput()[1]
		wt, ok := isFloatInit(ix, wName)
		if !ok {
			nodes = append(nodes, n)
			continue
		}
		dims := wt.GetDims()
		axis := -1
		if !opts.PerTensor {
			if len(dims) >= 2 {
				axis = quantize.WeightAxis(n, len(dims))
			} else {
				notes = append(notes, fmt.Sprintf("%s: weight %q of rank %d is quantized per tensor", onnxio.NodeLabel(n), wName, len(dims)))
			}
		}
		key := fmt.Sprintf("%s|%d", wName, axis)
		if dq, ok := done[key]; ok {
			n.Input[1] = dq
			nodes = append(nodes, n)
			continue
		}
		w, err := onnxio.TensorFloat32s(wt)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: weight %q: %v", wName, err)
		}
		scales, zps, err := weightParams(w, dims, axis, qr, sym)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: weight %q: %v", wName, err)
		}
		var shape []int64
		if axis >= 0 {
			shape = []int64{int64(len(scales))}
		} else {
			shape = []int64{}
		}
		sName := namer.Name(wName + "_scale")
		zName := namer.Name(wName + "_zero_point")
		st, err := onnxio.EncodeTensor(sName, onnxio.NewTensor(shape, scales))
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %v", err)
		}
		zt, err := intTensor(opts.Type, shape, zps)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %v", err)
		}
		ztp, err := onnxio.EncodeTensor(zName, zt)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %v", err)
		}
		g.Initializer = append(g.Initializer, st, ztp)
		qName := namer.Name(wName + "_quantized")
		dqName := namer.Name(wName + "_dequantized")
		var at []*onnxpb.AttributeProto
		if axis >= 0 {
			at = []*onnxpb.AttributeProto{onnxio.AttrInt("axis", int64(axis))}
		}
		qn := &onnxpb.NodeProto{Name: proto.String(namer.Name(qName + "_QuantizeLinear")), OpType: proto.String("QuantizeLinear"),
			Input: []string{wName, sName, zName}, Output: []string{qName}, Attribute: at}
		dn := &onnxpb.NodeProto{Name: proto.String(namer.Name(dqName + "_DequantizeLinear")), OpType: proto.String("DequantizeLinear"),
			Input: []string{qName, sName, zName}, Output: []string{dqName}, Attribute: cloneAttrs(at)}
		done[key] = dqName
		n.Input[1] = dqName
		nodes = append(nodes, qn, dn, n)
	}
	g.Node = nodes
	if err := onnxio.TopoSort(g); err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	if err := onnxio.Check(out); err != nil {
		return nil, nil, fmt.Errorf("qat: the fake-quantized model: %w", err)
	}
	return out, describe(out, nil, notes), nil
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

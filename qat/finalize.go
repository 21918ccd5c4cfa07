package qat

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/quantize"
)

// FinalizeOptions configures Finalize.
type FinalizeOptions struct {
	// RecomputeScales gives each weight new scales (and zero points) from the trained
	// weight's range, per channel where it was per channel, symmetric where its zero
	// points were the type's middle. By default the scales in the model are kept: the
	// ones training quantized with (the original ones, or the learned ones), so the
	// QDQ model computes exactly the trained forward.
	RecomputeScales bool
	// FloatBias keeps the biases float; by default a Conv, ConvTranspose or Gemm bias
	// whose input and weight are dequantized is stored as int32 with scale = input
	// scale × weight scale and zero point 0, as quantize.Static stores it.
	FloatBias bool
}

// FinalizeResult says what Finalize did.
type FinalizeResult struct {
	// Weights is the number of weights stored as integers.
	Weights int `json:"weights"`
	// Biases is the number of biases stored as int32.
	Biases int `json:"biases"`
	// Clipped counts bias values clipped to the int32 range.
	Clipped int `json:"clipped,omitempty"`
	// Notes say what was left float, and why.
	Notes []string `json:"notes,omitempty"`
}

// Finalize writes a trained fake-quantized model (Trainable's or FakeQuantWeights'
// model after training, as train.Graph.Export returns it) back as a QDQ model; trained
// is not changed. Every QuantizeLinear of a float initializer whose readers are all
// DequantizeLinear nodes is evaluated, as onnxruntime would, into an integer initializer
// of its type that takes the QuantizeLinear output's name, and the node goes; then the
// float biases of Conv, ConvTranspose and Gemm (alpha = beta = 1) whose input comes
// from a per-tensor DequantizeLinear and whose weight is a dequantized integer
// initializer become int32 behind a DequantizeLinear (unless FloatBias). Activation
// Q/DQ pairs, learned scales included, stay as they are. A scale that is not positive
// and finite is an error.
func Finalize(trained *onnxio.Model, opts FinalizeOptions) (*onnxio.Model, *FinalizeResult, error) {
	if trained == nil || trained.Proto.GetGraph() == nil {
		return nil, nil, errors.New("qat: the model has no graph")
	}
	out := trained.Clone()
	g := out.Graph()
	ix := onnxio.NewIndex(g)
	namer := onnxio.NewNamer(g)
	res := &FinalizeResult{}
	remove := map[*onnxpb.NodeProto]bool{}
	for _, n := range g.GetNode() {
		if n.GetOpType() != "QuantizeLinear" || !defaultDomain(n) || len(n.GetInput()) < 2 {
			continue
		}
		wName, qName := n.GetInput()[0], n.GetOutput()[0]
		wt, ok := isFloatInit(ix, wName)
		if !ok {
			if err := checkScale(ix, n); err != nil {
				return nil, nil, err
			}
			continue
		}
		readers := ix.Consumers[qName]
		if len(readers) == 0 || ix.IsGraphOutput(qName) || slices.ContainsFunc(readers, func(r *onnxpb.NodeProto) bool {
			return r.GetOpType() != "DequantizeLinear" || r.GetInput()[0] != qName
		}) {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: its output is read by other nodes than DequantizeLinear; left as it is", onnxio.NodeLabel(n)))
			continue
		}
		dt, err := outputType(ix, n)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %s: %v", onnxio.NodeLabel(n), err)
		}
		p, err := readParams(ix, n, wt.GetDims(), dt)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %s: %v", onnxio.NodeLabel(n), err)
		}
		w, err := onnxio.TensorFloat32s(wt)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: weight %q: %v", wName, err)
		}
		lo, hi, err := typeRange(p.dt)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %s: %v", onnxio.NodeLabel(n), err)
		}
		if opts.RecomputeScales {
			if err := recompute(g, namer, p, w, wt.GetDims(), readers); err != nil {
				return nil, nil, fmt.Errorf("qat: %s: %v", onnxio.NodeLabel(n), err)
			}
		}
		for c, s := range p.scale {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				return nil, nil, fmt.Errorf("qat: %s: scale %d of %q is %g; it must be positive and finite", onnxio.NodeLabel(n), c, p.scaleName, s)
			}
		}
		ch := p.channelFn(wt.GetDims())
		q := make([]int64, len(w))
		for i, v := range w {
			c := ch(i)
			q[i] = quantizeValue(v, p.scale[c], p.zp[c], lo, hi)
		}
		it, err := intTensor(p.dt, wt.GetDims(), q)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %v", err)
		}
		tp, err := onnxio.EncodeTensor(qName, it)
		if err != nil {
			return nil, nil, fmt.Errorf("qat: %v", err)
		}
		g.Initializer = append(g.Initializer, tp)
		remove[n] = true
		res.Weights++
	}
	onnxio.RemoveNodes(g, remove)
	onnxio.RemoveUnusedInitializers(g)
	if !opts.FloatBias {
		if err := quantizeBiases(g, namer, res); err != nil {
			return nil, nil, err
		}
		onnxio.RemoveUnusedInitializers(g)
	}
	if err := onnxio.TopoSort(g); err != nil {
		return nil, nil, fmt.Errorf("qat: %w", err)
	}
	if err := onnxio.Check(out); err != nil {
		return nil, nil, fmt.Errorf("qat: the finalized model: %w", err)
	}
	return out, res, nil
}

// outputType is QuantizeLinear's output type: its zero point's, else output_dtype, else
// uint8.
func outputType(ix *onnxio.Index, n *onnxpb.NodeProto) (onnxio.DataType, error) {
	if in := n.GetInput(); len(in) > 2 && in[2] != "" {
		t, ok := ix.ConstantTensor(in[2])
		if !ok {
			return 0, fmt.Errorf("zero point %q is not a constant", in[2])
		}
		return onnxio.DataType(t.GetDataType()), nil
	}
	if a := onnxio.Attr(n, "output_dtype"); a != nil && a.GetI() != 0 {
		return onnxio.DataType(a.GetI()), nil
	}
	return onnxio.TypeUint8, nil
}

// checkScale fails on an activation scale that training made non-positive.
func checkScale(ix *onnxio.Index, n *onnxpb.NodeProto) error {
	st, ok := ix.ConstantTensor(n.GetInput()[1])
	if !ok {
		return nil
	}
	s, err := onnxio.TensorFloat32s(st)
	if err != nil {
		return nil
	}
	for c, v := range s {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("qat: %s: scale %d of %q is %g; it must be positive and finite", onnxio.NodeLabel(n), c, n.GetInput()[1], v)
		}
	}
	return nil
}

// recompute replaces p's scale and zero point by ones from w's range, as new
// initializers that the readers (DequantizeLinear nodes) use.
func recompute(g *onnxpb.GraphProto, namer *onnxio.Namer, p *qparams, w []float32, dims []int64, readers []*onnxpb.NodeProto) error {
	full, err := quantize.IntRange(p.dt, false, false)
	if err != nil {
		return err
	}
	mid := int64(0)
	if full.Min == 0 {
		mid = int64(full.Max+1) / 2
	}
	sym := true
	for _, z := range p.zp {
		sym = sym && z == mid
	}
	qr, err := quantize.IntRange(p.dt, sym, false)
	if err != nil {
		return err
	}
	axis := -1
	if len(p.scale) > 1 {
		axis = p.axis
	}
	scales, zps, err := weightParams(w, dims, axis, qr, sym)
	if err != nil {
		return err
	}
	sName := namer.Name(p.scaleName)
	st, err := onnxio.EncodeTensor(sName, onnxio.NewTensor(p.shape, scales))
	if err != nil {
		return err
	}
	zName := namer.Name(p.scaleName + "_zero_point")
	zt, err := intTensor(p.dt, p.shape, zps)
	if err != nil {
		return err
	}
	ztp, err := onnxio.EncodeTensor(zName, zt)
	if err != nil {
		return err
	}
	g.Initializer = append(g.Initializer, st, ztp)
	for _, r := range readers {
		for len(r.Input) < 3 {
			r.Input = append(r.Input, "")
		}
		r.Input[1], r.Input[2] = sName, zName
	}
	p.scale, p.zp, p.scaleName, p.zpName = scales, zps, sName, zName
	return nil
}

// quantizeBiases stores the float biases of quantized Conv, ConvTranspose and Gemm nodes
// as int32.
func quantizeBiases(g *onnxpb.GraphProto, namer *onnxio.Namer, res *FinalizeResult) error {
	ix := onnxio.NewIndex(g)
	var added []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if !defaultDomain(n) || (op != "Conv" && op != "ConvTranspose" && op != "Gemm") || len(n.GetInput()) < 3 || n.GetInput()[2] == "" {
			continue
		}
		if op == "Gemm" && (attrF(n, "alpha", 1) != 1 || attrF(n, "beta", 1) != 1) {
			continue
		}
		bName := n.GetInput()[2]
		bt, ok := isFloatInit(ix, bName)
		if !ok || len(bt.GetDims()) != 1 {
			continue
		}
		xs, ok := dqScale(ix, n.GetInput()[0], false)
		if !ok || len(xs) != 1 {
			continue
		}
		ws, ok := dqScale(ix, n.GetInput()[1], true)
		if !ok {
			continue
		}
		b, err := onnxio.TensorFloat32s(bt)
		if err != nil {
			return fmt.Errorf("qat: bias %q: %v", bName, err)
		}
		if len(ws) != 1 && len(ws) != len(b) {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %d weight scales for %d bias values; bias left float", onnxio.NodeLabel(n), len(ws), len(b)))
			continue
		}
		scales := make([]float32, len(ws))
		for i, s := range ws {
			scales[i] = xs[0] * s
		}
		qb := make([]int64, len(b))
		for i, v := range b {
			s := scales[0]
			if len(scales) > 1 {
				s = scales[i]
			}
			r := math.RoundToEven(float64(v) / float64(s))
			if r > math.MaxInt32 || r < -math.MaxInt32 {
				res.Clipped++
			}
			qb[i] = int64(math.Max(-math.MaxInt32, math.Min(math.MaxInt32, r)))
		}
		var shape []int64
		var at []*onnxpb.AttributeProto
		if len(scales) > 1 {
			shape = []int64{int64(len(scales))}
			at = []*onnxpb.AttributeProto{onnxio.AttrInt("axis", 0)}
		} else {
			shape = []int64{}
		}
		qName := namer.Name(bName + "_quantized")
		sName := namer.Name(bName + "_scale")
		zName := namer.Name(bName + "_zero_point")
		dqName := namer.Name(bName + "_dequantized")
		qt, _ := intTensor(onnxio.TypeInt32, bt.GetDims(), qb)
		zt, _ := intTensor(onnxio.TypeInt32, shape, make([]int64, len(scales)))
		for _, t := range []struct {
			name string
			t    *onnxio.Tensor
		}{{qName, qt}, {sName, onnxio.NewTensor(shape, scales)}, {zName, zt}} {
			tp, err := onnxio.EncodeTensor(t.name, t.t)
			if err != nil {
				return fmt.Errorf("qat: %v", err)
			}
			g.Initializer = append(g.Initializer, tp)
		}
		added = append(added, &onnxpb.NodeProto{Name: proto.String(namer.Name(dqName + "_DequantizeLinear")),
			OpType: proto.String("DequantizeLinear"), Input: []string{qName, sName, zName}, Output: []string{dqName}, Attribute: at})
		n.Input[2] = dqName
		res.Biases++
	}
	g.Node = append(g.Node, added...)
	return nil
}

func attrF(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := onnxio.Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// dqScale returns the constant scales of the DequantizeLinear producing value; with
// intInput, only when that node dequantizes an integer initializer.
func dqScale(ix *onnxio.Index, value string, intInput bool) ([]float32, bool) {
	p := ix.Producer[value]
	if p == nil || p.GetOpType() != "DequantizeLinear" || !defaultDomain(p) || len(p.GetInput()) < 2 {
		return nil, false
	}
	if a := onnxio.Attr(p, "block_size"); a != nil && a.GetI() != 0 {
		return nil, false
	}
	if intInput {
		t, ok := ix.Initializers[p.GetInput()[0]]
		if !ok {
			return nil, false
		}
		switch onnxio.DataType(t.GetDataType()) {
		case onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt4, onnxio.TypeUint4, onnxio.TypeInt16, onnxio.TypeUint16:
		default:
			return nil, false
		}
	}
	st, ok := ix.ConstantTensor(p.GetInput()[1])
	if !ok {
		return nil, false
	}
	s, err := onnxio.TensorFloat32s(st)
	return s, err == nil
}

package quantize

import (
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// bnFold is one BatchNormalization folded into the node that produces its input: the
// new weight and bias of the producer, computed in full before the graph is touched.
type bnFold struct {
	bn, prod *onnxpb.NodeProto
	weight   *onnxio.Tensor // W * s along the output-channel axis
	wName    string         // the producer's weight initializer; "" for a new one
	bias     []float32      // (b - mean) * s + beta
}

// foldBatchNorms folds BatchNormalization (inference form) into a preceding Conv,
// ConvTranspose (group 1) or Gemm whose output only the BatchNormalization reads:
//
//	s = gamma / sqrt(var + eps);  W' = W * s (per output channel);  b' = (b - mean) * s + beta
//
// A fold is exact or not done: every parameter must be a float constant of the channel
// count, the producer's weight and bias constants of matching shape. A BatchNormalization
// that does not qualify stays as it is; the notes say why where the reason is not obvious
// from the graph (the producer is not one of the three ops, or it has other readers).
func foldBatchNorms(g *onnxpb.GraphProto) (int, []string, error) {
	ix := onnxio.NewIndex(g)
	remove := map[*onnxpb.NodeProto]bool{}
	var notes []string
	for _, bn := range g.GetNode() {
		prod := bnProducer(ix, bn)
		if prod == nil || remove[prod] {
			continue
		}
		f, why := planBNFold(ix, bn, prod)
		if f == nil {
			if why != "" {
				notes = append(notes, fmt.Sprintf("BatchNormalization %s not folded into %s: %s", onnxio.NodeLabel(bn), onnxio.NodeLabel(prod), why))
			}
			continue
		}
		if err := applyBNFold(g, f); err != nil {
			return 0, nil, err
		}
		remove[bn] = true
	}
	onnxio.RemoveNodes(g, remove)
	return len(remove), notes, nil
}

// bnProducer is the Conv, ConvTranspose or Gemm whose output only bn reads, when bn is an
// inference-form BatchNormalization; nil otherwise.
func bnProducer(ix *onnxio.Index, bn *onnxpb.NodeProto) *onnxpb.NodeProto {
	if bn.GetOpType() != "BatchNormalization" || bn.GetDomain() != "" && bn.GetDomain() != "ai.onnx" {
		return nil
	}
	if len(bn.GetInput()) != 5 || len(bn.GetOutput()) == 0 || bn.GetOutput()[0] == "" {
		return nil
	}
	for _, o := range bn.GetOutput()[1:] {
		if o != "" {
			return nil // training-mode outputs (running mean, var) in use
		}
	}
	if a := onnxio.Attr(bn, "training_mode"); a != nil && a.GetI() != 0 {
		return nil // normalizes with the batch's own statistics
	}
	if a := onnxio.Attr(bn, "spatial"); a != nil && a.GetI() == 0 {
		return nil // opset < 9: per-activation parameters
	}
	x := bn.GetInput()[0]
	prod := ix.Producer[x]
	if prod == nil || len(ix.Consumers[x]) != 1 || ix.IsGraphOutput(x) {
		return nil
	}
	if prod.GetDomain() != "" && prod.GetDomain() != "ai.onnx" {
		return nil
	}
	switch prod.GetOpType() {
	case "Conv", "ConvTranspose", "Gemm":
	default:
		return nil
	}
	if len(prod.GetInput()) < 2 || prod.GetInput()[1] == "" || len(prod.GetOutput()) != 1 || prod.GetOutput()[0] != x {
		return nil
	}
	return prod
}

// planBNFold computes the fold of bn into prod, or says why it cannot be done exactly.
func planBNFold(ix *onnxio.Index, bn, prod *onnxpb.NodeProto) (*bnFold, string) {
	params, why := bnParams(ix, bn)
	if params == nil {
		return nil, why
	}
	gamma, beta, mean, variance := params[0], params[1], params[2], params[3]
	c := len(gamma)
	eps := float32(1e-5)
	if a := onnxio.Attr(bn, "epsilon"); a != nil {
		eps = a.GetF()
	}
	s := make([]float32, c)
	for i := range s {
		s[i] = gamma[i] / float32(math.Sqrt(float64(variance[i]+eps)))
		if math.IsNaN(float64(s[i])) || math.IsInf(float64(s[i]), 0) {
			return nil, fmt.Sprintf("channel %d has variance %g with epsilon %g", i, variance[i], eps)
		}
	}
	wName := prod.GetInput()[1]
	wt, isConst := ix.ConstantTensor(wName)
	if !isConst || DataType(wt) != onnxio.TypeFloat {
		return nil, "the weight is not a float constant"
	}
	w, err := onnxio.DecodeTensor(wt)
	if err != nil {
		return nil, fmt.Sprintf("the weight cannot be read (%v)", err)
	}
	axis, ok := bnChannelAxis(prod, w.Shape, c)
	if !ok {
		return nil, fmt.Sprintf("the weight's shape %v does not have %d output channels in a supported layout", w.Shape, c)
	}
	b, why := producerBias(ix, prod, c)
	if b == nil {
		return nil, why
	}
	if _, isInit := ix.Initializers[wName]; !isInit || len(ix.Consumers[wName]) > 1 {
		// A shared weight, or one computed by a Constant or Identity node: the folded
		// weight is a new initializer, named when applied.
		wName = ""
	}
	wd := w.Data.([]float32)
	nw := make([]float32, len(wd))
	scaleAlong(nw, wd, w.Shape, axis, s)
	for i := range b {
		b[i] = (b[i]-mean[i])*s[i] + beta[i]
	}
	return &bnFold{bn: bn, prod: prod, weight: onnxio.NewTensor(w.Shape, nw), wName: wName, bias: b}, ""
}

// bnParams reads scale, bias, mean and variance of bn: float constants of one length.
func bnParams(ix *onnxio.Index, bn *onnxpb.NodeProto) ([][]float32, string) {
	params := make([][]float32, 4)
	names := [4]string{"scale", "bias", "mean", "variance"}
	for i := range params {
		t, isConst := ix.ConstantTensor(bn.GetInput()[i+1])
		if !isConst || DataType(t) != onnxio.TypeFloat {
			return nil, "" // a computed or non-float parameter: nothing to fold
		}
		v, err := onnxio.TensorFloat32s(t)
		if err != nil {
			return nil, fmt.Sprintf("its %s cannot be read (%v)", names[i], err)
		}
		if len(t.GetDims()) != 1 {
			return nil, fmt.Sprintf("its %s has shape %v, not one value per channel", names[i], t.GetDims())
		}
		if i > 0 && len(v) != len(params[0]) {
			return nil, fmt.Sprintf("its %s has %d values, its scale %d", names[i], len(v), len(params[0]))
		}
		params[i] = v
	}
	if len(params[0]) == 0 {
		return nil, "its parameters are empty"
	}
	return params, ""
}

// producerBias is the bias of prod as c values (zeros when it has none), with a Gemm's
// beta folded in; nil with a reason when it is not a float constant of c values.
func producerBias(ix *onnxio.Index, prod *onnxpb.NodeProto, c int) ([]float32, string) {
	b := make([]float32, c)
	if len(prod.GetInput()) < 3 || prod.GetInput()[2] == "" {
		return b, ""
	}
	bt, isConst := ix.ConstantTensor(prod.GetInput()[2])
	if !isConst || DataType(bt) != onnxio.TypeFloat {
		return nil, "the bias is not a float constant"
	}
	bv, err := onnxio.TensorFloat32s(bt)
	if err != nil {
		return nil, fmt.Sprintf("the bias cannot be read (%v)", err)
	}
	if len(bv) != c || len(bt.GetDims()) > 2 || len(bt.GetDims()) == 2 && bt.GetDims()[0] != 1 {
		return nil, fmt.Sprintf("the bias has shape %v, not %d values", bt.GetDims(), c)
	}
	copy(b, bv)
	if prod.GetOpType() == "Gemm" {
		// Y = alpha*A*B + beta*C: fold beta into the bias; beta becomes 1.
		if a := onnxio.Attr(prod, "beta"); a != nil {
			for i := range b {
				b[i] *= a.GetF()
			}
		}
	}
	return b, ""
}

// applyBNFold writes the fold's weight and bias into g and makes the producer compute the
// BatchNormalization's output.
func applyBNFold(g *onnxpb.GraphProto, f *bnFold) error {
	prod := f.prod
	wName := f.wName
	if wName == "" {
		wName = onnxio.NewNamer(g).Name(prod.GetInput()[1] + "_bnfolded")
	}
	wtp, err := onnxio.EncodeTensor(wName, f.weight)
	if err != nil {
		return err
	}
	replaceInitializer(g, wtp)
	bName := onnxio.NewNamer(g).Name(prod.GetOutput()[0] + "_bias")
	btp, err := onnxio.EncodeTensor(bName, onnxio.NewTensor([]int64{int64(len(f.bias))}, f.bias))
	if err != nil {
		return err
	}
	g.Initializer = append(g.Initializer, btp)
	prod.Input[1] = wName
	if len(prod.Input) > 2 {
		prod.Input[2] = bName
	} else {
		prod.Input = append(prod.Input, bName)
	}
	if prod.GetOpType() == "Gemm" {
		onnxio.SetAttr(prod, onnxio.AttrFloat("beta", 1))
	}
	prod.Output[0] = f.bn.GetOutput()[0]
	return nil
}

// bnChannelAxis is the weight axis of the producer's output channels.
func bnChannelAxis(prod *onnxpb.NodeProto, shape []int64, c int) (int, bool) {
	switch prod.GetOpType() {
	case "Conv":
		return 0, len(shape) >= 3 && shape[0] == int64(c)
	case "ConvTranspose":
		if a := onnxio.Attr(prod, "group"); a != nil && a.GetI() != 1 {
			return 0, false
		}
		return 1, len(shape) >= 3 && shape[1] == int64(c)
	case "Gemm":
		if a := onnxio.Attr(prod, "alpha"); a != nil && a.GetF() != 1 {
			return 0, false
		}
		axis := 1
		if a := onnxio.Attr(prod, "transB"); a != nil && a.GetI() == 1 {
			axis = 0
		}
		return axis, len(shape) == 2 && shape[axis] == int64(c)
	}
	return 0, false
}

// scaleAlong writes dst = src * s[index along axis].
func scaleAlong(dst, src []float32, shape []int64, axis int, s []float32) {
	inner := int64(1)
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	n := shape[axis]
	for i := range src {
		ch := (int64(i) / inner) % n
		dst[i] = src[i] * s[ch]
	}
}

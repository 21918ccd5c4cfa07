package onnxio

import (
	"fmt"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// arity is how many inputs and outputs an op of the default domain takes, over all its
// versions (max -1: any number). Only the ops listed are checked: the ones PyTorch
// exports and onnxpipe's graph passes make. A node with fewer inputs than the op needs
// would send a pass that reads Input[0] out of range.
type arity struct{ inMin, inMax, outMin, outMax int }

var arities = map[string]arity{}

func init() {
	for _, g := range []struct {
		a   arity
		ops string
	}{
		{arity{1, 1, 1, 1}, "Abs Neg Exp Log Sqrt Reciprocal Relu Sigmoid Tanh Erf Floor Ceil Round Sign Not Sin Cos " +
			"Softplus Softsign HardSwish HardSigmoid Elu Selu LeakyRelu Gelu IsNaN IsInf Identity Shape Size Flatten " +
			"Transpose Cast GlobalAveragePool GlobalMaxPool Softmax LogSoftmax AveragePool LRN ArgMax ArgMin ConstantOfShape NonZero"},
		{arity{2, 2, 1, 1}, "Add Sub Mul Div Pow MatMul Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor Mod PRelu " +
			"Gather GatherElements GatherND Expand CumSum"},
		{arity{3, 3, 1, 1}, "Where Range OneHot InstanceNormalization GroupNormalization ScatterND ScatterElements Scatter"},
		{arity{2, 3, 1, 1}, "Conv ConvTranspose Gemm QuantizeLinear DequantizeLinear Tile"},
		{arity{5, 5, 1, 5}, "BatchNormalization"},
		{arity{2, 3, 1, 3}, "LayerNormalization"},
		{arity{1, 1, 1, 2}, "MaxPool"},
		{arity{1, 3, 1, 2}, "Dropout"},
		{arity{1, 2, 1, 1}, "Reshape Squeeze Unsqueeze Upsample Trilu ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd " +
			"ReduceL1 ReduceL2 ReduceLogSumExp ReduceSumSquare"},
		{arity{1, 5, 1, 1}, "Slice"},
		{arity{1, 3, 1, 1}, "Clip"},
		{arity{1, 4, 1, 1}, "Pad Resize"},
		{arity{1, -1, 1, 1}, "Concat Sum Max Min Mean Einsum"},
		{arity{1, 2, 1, -1}, "Split"},
		{arity{1, 2, 2, 2}, "TopK"},
		{arity{1, 1, 3, 3}, "DynamicQuantizeLinear"},
		{arity{2, 4, 1, 1}, "MatMulInteger ConvInteger"},
		{arity{8, 9, 1, 1}, "QLinearConv"},
		{arity{8, 8, 1, 1}, "QLinearMatMul"},
		{arity{0, 0, 1, 1}, "Constant"},
		{arity{1, 1, 1, -1}, "If"},
		{arity{2, -1, 1, -1}, "Loop"},
	} {
		for _, op := range strings.Fields(g.ops) {
			arities[op] = g.a
		}
	}
}

// constantValueAttrs are the attributes of which a Constant node has exactly one.
var constantValueAttrs = map[string]bool{"value": true, "value_float": true, "value_floats": true, "value_int": true,
	"value_ints": true, "value_string": true, "value_strings": true, "sparse_value": true}

// present is the number of names up to the last non-empty one (trailing empty names are
// optional inputs or outputs left out).
func present(names []string) int {
	n := len(names)
	for n > 0 && names[n-1] == "" {
		n--
	}
	return n
}

func countText(lo, hi int, what string) string {
	switch {
	case hi < 0:
		return fmt.Sprintf("%d or more %ss", lo, what)
	case lo == hi && lo == 1:
		return fmt.Sprintf("1 %s", what)
	case lo == hi:
		return fmt.Sprintf("%d %ss", lo, what)
	}
	return fmt.Sprintf("%d to %d %ss", lo, hi, what)
}

// checkArity reports a node of a listed op of the default domain with too few or too
// many inputs or outputs, an empty name where one is required, and a Constant without
// exactly one value.
func (c *checker) checkArity(n *onnxpb.NodeProto, label string) {
	if canonicalDomain(n.GetDomain()) != "" {
		return
	}
	a, ok := arities[n.GetOpType()]
	if !ok {
		return
	}
	for _, side := range []struct {
		what   string
		names  []string
		lo, hi int
	}{{"input", n.GetInput(), a.inMin, a.inMax}, {"output", n.GetOutput(), a.outMin, a.outMax}} {
		have := present(side.names)
		if have < side.lo || side.hi >= 0 && have > side.hi {
			c.add(fmt.Sprintf("%s: %s takes %s, the node has %d", label, n.GetOpType(), countText(side.lo, side.hi, side.what), have))
			continue
		}
		for i := 0; i < side.lo; i++ {
			if side.names[i] == "" {
				c.add(fmt.Sprintf("%s: %s %d is required but its name is empty", label, side.what, i))
			}
		}
	}
	if n.GetOpType() == "Constant" {
		var values []string
		for _, at := range n.GetAttribute() {
			if constantValueAttrs[at.GetName()] {
				values = append(values, at.GetName())
			}
		}
		if len(values) != 1 {
			c.add(fmt.Sprintf("%s: a Constant needs exactly one of the attributes value, value_float(s), value_int(s), value_string(s), sparse_value; it has %d %v", label, len(values), values))
		}
	}
}

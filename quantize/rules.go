package quantize

import "sort"

// kind is how an op type is quantized.
type kind int

const (
	// compute ops: activations in, weights (per-channel) and an int32 bias, output out.
	kindCompute kind = iota + 1
	// ops that only move data: quantized when their input is, outputs share its
	// parameters (so onnxruntime can run them on int8 data).
	kindMove
	// ops whose every float input and output gets its own calibrated Q/DQ.
	kindOwn
	// activations that onnxruntime folds into the preceding quantized op's output range.
	kindRemovable
)

// rule describes one op type.
type rule struct {
	kind kind
	// weight is the input index of the weight of a compute op; bias of its bias (-1: none).
	weight, bias int
	// inputs lists the input indexes quantized (nil: all float inputs; for kindMove the
	// data input 0 only).
	inputs []int
	// fixedOutput forces the output range (Softmax: [0, 1]).
	fixedOutput *[2]float32
}

var rules = map[string]rule{
	"Conv":          {kind: kindCompute, weight: 1, bias: 2},
	"ConvTranspose": {kind: kindCompute, weight: 1, bias: 2},
	"Gemm":          {kind: kindCompute, weight: 1, bias: 2},
	"MatMul":        {kind: kindCompute, weight: 1, bias: -1},

	"Reshape":       {kind: kindMove, inputs: []int{0}},
	"Transpose":     {kind: kindMove, inputs: []int{0}},
	"Flatten":       {kind: kindMove, inputs: []int{0}},
	"Squeeze":       {kind: kindMove, inputs: []int{0}},
	"Unsqueeze":     {kind: kindMove, inputs: []int{0}},
	"Slice":         {kind: kindMove, inputs: []int{0}},
	"Split":         {kind: kindMove, inputs: []int{0}},
	"Gather":        {kind: kindMove, inputs: []int{0}},
	"MaxPool":       {kind: kindMove, inputs: []int{0}},
	"GlobalMaxPool": {kind: kindMove, inputs: []int{0}},
	"Resize":        {kind: kindMove, inputs: []int{0}},
	"Pad":           {kind: kindMove, inputs: []int{0}},
	"Identity":      {kind: kindMove, inputs: []int{0}},
	"DepthToSpace":  {kind: kindMove, inputs: []int{0}},
	"SpaceToDepth":  {kind: kindMove, inputs: []int{0}},

	"Add":                   {kind: kindOwn, inputs: []int{0, 1}},
	"Mul":                   {kind: kindOwn, inputs: []int{0, 1}},
	"Concat":                {kind: kindOwn},
	"AveragePool":           {kind: kindOwn, inputs: []int{0}},
	"GlobalAveragePool":     {kind: kindOwn, inputs: []int{0}},
	"Softmax":               {kind: kindOwn, inputs: []int{0}, fixedOutput: &[2]float32{0, 1}},
	"Sigmoid":               {kind: kindOwn, inputs: []int{0}},
	"LeakyRelu":             {kind: kindOwn, inputs: []int{0}},
	"LayerNormalization":    {kind: kindOwn, inputs: []int{0}},
	"InstanceNormalization": {kind: kindOwn, inputs: []int{0}},
	"ArgMax":                {kind: kindOwn, inputs: []int{0}},
	"Where":                 {kind: kindOwn, inputs: []int{1, 2}},

	"Relu": {kind: kindRemovable},
	"Clip": {kind: kindRemovable},
}

// DynamicOps lists the op types Dynamic quantizes (their weights, with activations
// quantized at run time), sorted.
func DynamicOps() []string { return []string{"Gemm", "MatMul"} }

// SupportedOps lists the op types the static quantizer handles, sorted.
func SupportedOps() []string {
	out := make([]string, 0, len(rules))
	for op := range rules {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

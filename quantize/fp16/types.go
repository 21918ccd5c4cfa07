package fp16

import (
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Element-type inference. The conversion must know which values are float32, and models
// exported by PyTorch carry no value_info for intermediate values, so the types are
// derived here from the graph inputs, the constants and a rule per op type. The rules
// follow the ONNX operator specifications (type constraints of the default domain and of
// the common com.microsoft ops); an op without a rule gives outputs of unknown type
// (onnxio.TypeUndefined) unless the model's value_info declares them.

// sameAsInput lists ops whose every output has the element type of one input (the
// value is that input's index).
var sameAsInput = map[string]int{
	"Abs": 0, "Acos": 0, "Acosh": 0, "Add": 0, "AffineGrid": 0, "Asin": 0, "Asinh": 0, "Atan": 0,
	"Atanh": 0, "AveragePool": 0, "BatchNormalization": 0, "BitShift": 0, "BitwiseAnd": 0,
	"BitwiseNot": 0, "BitwiseOr": 0, "BitwiseXor": 0, "Ceil": 0, "Celu": 0, "CenterCropPad": 0,
	"Clip": 0, "Col2Im": 0, "Compress": 0, "Concat": 0, "Conv": 0, "ConvTranspose": 0, "Cos": 0,
	"Cosh": 0, "Crop": 0, "CumSum": 0, "DeformConv": 0, "DepthToSpace": 0, "Det": 0, "DFT": 0,
	"Div": 0, "Einsum": 0, "Elu": 0, "Erf": 0, "Exp": 0, "Expand": 0, "Flatten": 0, "Floor": 0,
	"Gather": 0, "GatherElements": 0, "GatherND": 0, "Gelu": 0, "Gemm": 0, "GlobalAveragePool": 0,
	"GlobalLpPool": 0, "GlobalMaxPool": 0, "GridSample": 0, "GroupNormalization": 0, "GRU": 0,
	"HardSigmoid": 0, "HardSwish": 0, "Hardmax": 0, "Identity": 0, "ImageScaler": 0,
	"InstanceNormalization": 0, "LeakyRelu": 0, "Log": 0, "LogSoftmax": 0, "LpNormalization": 0,
	"LpPool": 0, "LRN": 0, "LSTM": 0, "MatMul": 0, "Max": 0, "MaxRoiPool": 0, "MaxUnpool": 0,
	"Mean": 0, "MeanVarianceNormalization": 0, "Min": 0, "Mish": 0, "Mod": 0, "Mul": 0, "Neg": 0,
	"NegativeLogLikelihoodLoss": 0, "Pad": 0, "Pow": 0, "PRelu": 0, "Range": 0, "Reciprocal": 0,
	"ReduceL1": 0, "ReduceL2": 0, "ReduceLogSum": 0, "ReduceLogSumExp": 0, "ReduceMax": 0,
	"ReduceMean": 0, "ReduceMin": 0, "ReduceProd": 0, "ReduceSum": 0, "ReduceSumSquare": 0,
	"Relu": 0, "Reshape": 0, "Resize": 0, "ReverseSequence": 0, "RMSNormalization": 0, "RNN": 0,
	"RoiAlign": 0, "Round": 0, "Scatter": 0, "ScatterElements": 0, "ScatterND": 0, "Selu": 0,
	"Shrink": 0, "Sigmoid": 0, "Sign": 0, "Sin": 0, "Sinh": 0, "Slice": 0, "Softmax": 0,
	"SoftmaxCrossEntropyLoss": 0, "Softplus": 0, "Softsign": 0, "SpaceToDepth": 0, "Split": 0,
	"Sqrt": 0, "Squeeze": 0, "STFT": 0, "Sub": 0, "Sum": 0, "Swish": 0, "Tan": 0, "Tanh": 0,
	"ThresholdedRelu": 0, "Tile": 0, "Transpose": 0, "Trilu": 0, "Unsqueeze": 0, "Upsample": 0,
	"Where": 1, "CastLike": 1, "OneHot": 2,
}

// fixedOutputs lists ops whose outputs have fixed types, by output index (TypeUndefined
// where the output follows input 0).
var fixedOutputs = map[string][]onnxio.DataType{
	"Shape":             {onnxio.TypeInt64},
	"Size":              {onnxio.TypeInt64},
	"NonZero":           {onnxio.TypeInt64},
	"ArgMax":            {onnxio.TypeInt64},
	"ArgMin":            {onnxio.TypeInt64},
	"NonMaxSuppression": {onnxio.TypeInt64},
	"Equal":             {onnxio.TypeBool},
	"Greater":           {onnxio.TypeBool},
	"GreaterOrEqual":    {onnxio.TypeBool},
	"Less":              {onnxio.TypeBool},
	"LessOrEqual":       {onnxio.TypeBool},
	"Not":               {onnxio.TypeBool},
	"And":               {onnxio.TypeBool},
	"Or":                {onnxio.TypeBool},
	"Xor":               {onnxio.TypeBool},
	"IsNaN":             {onnxio.TypeBool},
	"IsInf":             {onnxio.TypeBool},
	"MatMulInteger":     {onnxio.TypeInt32},
	"ConvInteger":       {onnxio.TypeInt32},
	"TfIdfVectorizer":   {onnxio.TypeFloat},
	"DynamicQuantizeLinear": {
		onnxio.TypeUint8, onnxio.TypeFloat, onnxio.TypeUint8,
	},
	"TopK":             {onnxio.TypeUndefined, onnxio.TypeInt64},
	"MaxPool":          {onnxio.TypeUndefined, onnxio.TypeInt64},
	"Dropout":          {onnxio.TypeUndefined, onnxio.TypeBool},
	"Unique":           {onnxio.TypeUndefined, onnxio.TypeInt64, onnxio.TypeInt64, onnxio.TypeInt64},
	"StringNormalizer": {onnxio.TypeString},
}

// contribSameAsInput lists com.microsoft ops whose outputs follow input 0 (the common
// transformer fusions that ORT's own float16 conversion handles).
var contribSameAsInput = map[string]bool{
	"FusedConv": true, "FusedGemm": true, "FusedMatMul": true, "Gelu": true, "FastGelu": true,
	"BiasGelu": true, "QuickGelu": true, "BiasAdd": true, "BiasSplitGelu": true,
	"SkipLayerNormalization": true, "SkipSimplifiedLayerNormalization": true,
	"SimplifiedLayerNormalization": true, "LayerNormalization": true, "Attention": true,
	"MultiHeadAttention": true, "GroupNorm": true, "SkipGroupNorm": true, "RotaryEmbedding": true,
	"BiasSoftmax": true, "NhwcConv": true, "Inverse": true,
}

// typeRule reports the output element types of node n given the types of its inputs
// (one per entry of n.Input, TypeUndefined for "" or unknown) and, for control-flow
// ops, the output types of the subgraphs (in attribute order). known is false when no
// rule covers the op.
func outputTypes(n *onnxpb.NodeProto, in []onnxio.DataType, sub map[string][]onnxio.DataType) (out []onnxio.DataType, known bool) {
	out = make([]onnxio.DataType, len(n.GetOutput()))
	inType := func(i int) onnxio.DataType {
		if i < len(in) {
			return in[i]
		}
		return onnxio.TypeUndefined
	}
	fill := func(t onnxio.DataType) {
		for i := range out {
			out[i] = t
		}
	}
	op := n.GetOpType()
	switch n.GetDomain() {
	case "", "ai.onnx":
	case "com.microsoft":
		if contribSameAsInput[op] {
			fill(inType(0))
			if op == "LayerNormalization" || op == "SimplifiedLayerNormalization" {
				for i := 1; i < len(out); i++ {
					out[i] = stashType(n)
				}
			}
			return out, true
		}
		return out, false
	default:
		return out, false
	}
	if f, ok := fixedOutputs[op]; ok {
		for i := range out {
			if i < len(f) && f[i] != onnxio.TypeUndefined {
				out[i] = f[i]
			} else {
				out[i] = inType(0)
			}
		}
		return out, true
	}
	if k, ok := sameAsInput[op]; ok {
		fill(inType(k))
		return out, true
	}
	switch op {
	case "LayerNormalization":
		fill(stashType(n))
		if len(out) > 0 {
			out[0] = inType(0)
		}
		return out, true
	case "Cast":
		fill(onnxio.DataType(attrInt(n, "to", 0)))
		return out, true
	case "Constant":
		t, ok := onnxio.ConstantNodeTensor(n)
		if ok {
			fill(onnxio.DataType(t.GetDataType()))
		} else if onnxio.Attr(n, "value_string") != nil || onnxio.Attr(n, "value_strings") != nil {
			fill(onnxio.TypeString)
		} else if a := onnxio.Attr(n, "sparse_value"); a != nil && a.SparseTensor != nil {
			fill(onnxio.DataType(a.SparseTensor.GetValues().GetDataType()))
		}
		return out, true
	case "ConstantOfShape":
		if a := onnxio.Attr(n, "value"); a != nil && a.T != nil {
			fill(onnxio.DataType(a.T.GetDataType()))
		} else {
			fill(onnxio.TypeFloat)
		}
		return out, true
	case "RandomNormal", "RandomUniform":
		fill(onnxio.DataType(attrInt(n, "dtype", int64(onnxio.TypeFloat))))
		return out, true
	case "EyeLike", "RandomNormalLike", "RandomUniformLike", "Bernoulli":
		fill(onnxio.DataType(attrInt(n, "dtype", int64(inType(0)))))
		return out, true
	case "Multinomial":
		fill(onnxio.DataType(attrInt(n, "dtype", int64(onnxio.TypeInt32))))
		return out, true
	case "BlackmanWindow", "HammingWindow", "HannWindow":
		fill(onnxio.DataType(attrInt(n, "output_datatype", int64(onnxio.TypeFloat))))
		return out, true
	case "MelWeightMatrix":
		fill(onnxio.DataType(attrInt(n, "output_datatype", int64(onnxio.TypeFloat))))
		return out, true
	case "QuantizeLinear":
		switch {
		case attrInt(n, "output_dtype", 0) != 0:
			fill(onnxio.DataType(attrInt(n, "output_dtype", 0)))
		case inType(2) != onnxio.TypeUndefined:
			fill(inType(2))
		case len(n.GetInput()) > 2 && n.GetInput()[2] != "":
			// a zero point of unknown type
		default:
			fill(onnxio.TypeUint8)
		}
		return out, true
	case "DequantizeLinear":
		if d := attrInt(n, "output_dtype", 0); d != 0 {
			fill(onnxio.DataType(d))
		} else {
			fill(inType(1))
		}
		return out, true
	case "QLinearConv", "QLinearMatMul":
		fill(inType(7))
		return out, true
	case "If":
		fill(onnxio.TypeUndefined)
		copy(out, sub["then_branch"])
		return out, true
	case "Loop":
		body := sub["body"]
		for i := range out {
			if i+1 < len(body) {
				out[i] = body[i+1] // body outputs: cond, carried..., scan outputs...
			}
		}
		return out, true
	case "Scan":
		copy(out, sub["body"])
		return out, true
	}
	return out, false
}

// stashType is LayerNormalization's type for its Mean and InvStdDev outputs.
func stashType(n *onnxpb.NodeProto) onnxio.DataType {
	return onnxio.DataType(attrInt(n, "stash_type", int64(onnxio.TypeFloat)))
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := onnxio.Attr(n, name); a != nil && a.GetType() == onnxpb.AttributeProto_INT {
		return a.GetI()
	}
	return def
}

// alwaysFloatInputs lists, per op type of the default domain, the inputs whose type
// constraint is float32 (or that carry shape-like numbers fp16 cannot hold exactly) and
// therefore stay float32 even when the node is converted. This is ORT float16.py's
// ALWAYS_FLOAT_INPUTS (Resize scales, GroupNorm gamma/beta) extended from the ONNX
// specifications.
var alwaysFloatInputs = map[string][]int{
	"Resize":                {2},          // scales: tensor(float) only
	"Upsample":              {1},          // scales: tensor(float) only
	"NonMaxSuppression":     {0, 1, 3, 4}, // boxes, scores, thresholds: tensor(float) only
	"DynamicQuantizeLinear": {0},          // x: tensor(float) only
	"QuantizeLinear":        {0, 1},       // x, y_scale: float before opset 19
	"DequantizeLinear":      {1},          // x_scale: float before opset 19
	"OneHot":                {1},          // depth: a count; fp16 holds integers exactly only to 2048
}

// contribAlwaysFloatInputs is alwaysFloatInputs for com.microsoft ops.
var contribAlwaysFloatInputs = map[string][]int{
	"GroupNorm":     {1, 2},
	"SkipGroupNorm": {1, 2},
}

// agnosticInputs lists inputs that accept any element type without changing the output
// type: no Cast is ever needed in front of them.
var agnosticInputs = map[string][]int{
	"Shape":    {0},
	"Size":     {0},
	"Cast":     {0},
	"CastLike": {0},
}

func isAlwaysFloat(n *onnxpb.NodeProto, i int) bool {
	var list []int
	switch n.GetDomain() {
	case "", "ai.onnx":
		list = alwaysFloatInputs[n.GetOpType()]
	case "com.microsoft":
		list = contribAlwaysFloatInputs[n.GetOpType()]
	}
	for _, k := range list {
		if k == i {
			return true
		}
	}
	return false
}

func isAgnostic(n *onnxpb.NodeProto, i int) bool {
	if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
		return false
	}
	for _, k := range agnosticInputs[n.GetOpType()] {
		if k == i {
			return true
		}
	}
	return false
}

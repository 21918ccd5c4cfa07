package train

import (
	"math"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

type opCase struct {
	name   string
	opset  int64
	build  func(g *gb)
	noGrad bool // no float output to differentiate, or not differentiable
}

var (
	ai = onnxio.AttrInt
	af = onnxio.AttrFloat
	as = onnxio.AttrString
)

func aints(name string, v ...int64) *onnxpb.AttributeProto { return onnxio.AttrInts(name, v...) }

// unary builds y = op(x) on a [2,3,4] input.
func unary(op string, kind genKind, attrs ...*onnxpb.AttributeProto) func(g *gb) {
	return func(g *gb) {
		x := g.in("x", kind, 2, 3, 4)
		g.out(g.b.Op(op, []string{x}, attrs...))
	}
}

// binaryCase builds y = op(a, b): a is an input, b a parameter (or an input when bIn).
func binaryCase(op string, as, bs []int, bIn bool, kindA, kindB genKind) func(g *gb) {
	return func(g *gb) {
		a := g.in("a", kindA, as...)
		var b string
		if bIn {
			b = g.in("b", kindB, bs...)
		} else {
			b = g.param("b", kindB, bs...)
		}
		g.out(g.b.Op(op, []string{a, b}))
	}
}

func conv(xs, ws []int, bias bool, attrs ...*onnxpb.AttributeProto) func(g *gb) {
	return func(g *gb) {
		x := g.in("x", normal, xs...)
		ins := []string{x, g.param("w", small, ws...)}
		if bias {
			ins = append(ins, g.param("bias", normal, ws[0]))
		}
		g.out(g.b.Op("Conv", ins, attrs...))
	}
}

func pool(op string, xs []int, attrs ...*onnxpb.AttributeProto) func(g *gb) {
	return func(g *gb) {
		x := g.in("x", distinct, xs...)
		g.out(g.b.Op(op, []string{x}, attrs...))
	}
}

func opCases() []opCase {
	cs := []opCase{
		// Gemm and MatMul
		{name: "Gemm", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Gemm", []string{g.in("a", normal, 3, 5), g.param("b", normal, 5, 4), g.param("c", normal, 4)}))
		}},
		{name: "Gemm/transB alpha beta C[M,N]", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Gemm", []string{g.in("a", normal, 3, 5), g.param("b", normal, 4, 5), g.param("c", normal, 3, 4)},
				ai("transB", 1), af("alpha", 0.7), af("beta", 1.3)))
		}},
		{name: "Gemm/transA transB C[M,1]", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Gemm", []string{g.in("a", normal, 5, 3), g.param("b", normal, 4, 5), g.param("c", normal, 3, 1)},
				ai("transA", 1), ai("transB", 1)))
		}},
		{name: "Gemm/transA no C", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Gemm", []string{g.in("a", normal, 5, 3), g.in("b", normal, 5, 4)}, ai("transA", 1)))
		}},
		{name: "Gemm/large", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Gemm", []string{g.in("a", normal, 70, 80), g.param("b", small, 90, 80), g.param("c", normal, 90)}, ai("transB", 1)))
		}},
		{name: "MatMul/2D", opset: 13, build: binaryCase("MatMul", []int{3, 4}, []int{4, 5}, false, normal, normal)},
		{name: "MatMul/batched x 2D", opset: 13, build: binaryCase("MatMul", []int{2, 3, 4}, []int{4, 5}, false, normal, normal)},
		{name: "MatMul/batched x batched", opset: 13, build: binaryCase("MatMul", []int{2, 3, 3, 4}, []int{2, 3, 4, 2}, true, normal, normal)},
		{name: "MatMul/broadcast batch", opset: 13, build: binaryCase("MatMul", []int{2, 1, 3, 4}, []int{3, 4, 2}, true, normal, normal)},
		{name: "MatMul/2D x batched", opset: 13, build: binaryCase("MatMul", []int{3, 4}, []int{2, 4, 5}, true, normal, normal)},
		{name: "MatMul/vec x mat", opset: 13, build: binaryCase("MatMul", []int{4}, []int{2, 4, 5}, true, normal, normal)},
		{name: "MatMul/mat x vec", opset: 13, build: binaryCase("MatMul", []int{2, 3, 4}, []int{4}, true, normal, normal)},
		{name: "MatMul/large", opset: 13, build: binaryCase("MatMul", []int{2, 40, 70}, []int{70, 90}, false, normal, small)},

		// broadcasting arithmetic
		{name: "Add/same", opset: 13, build: binaryCase("Add", []int{2, 3, 4}, []int{2, 3, 4}, true, normal, normal)},
		{name: "Add/bias", opset: 13, build: binaryCase("Add", []int{2, 3, 4}, []int{4}, false, normal, normal)},
		{name: "Add/both broadcast", opset: 13, build: binaryCase("Add", []int{2, 1, 4}, []int{3, 1}, true, normal, normal)},
		{name: "Sub/scalar", opset: 13, build: binaryCase("Sub", []int{2, 3, 4}, []int{}, false, normal, normal)},
		{name: "Sub/broadcast a", opset: 13, build: binaryCase("Sub", []int{3, 1}, []int{2, 3, 4}, true, normal, normal)},
		{name: "Mul/channel", opset: 13, build: binaryCase("Mul", []int{2, 3, 4, 5}, []int{3, 1, 1}, false, normal, normal)},
		{name: "Mul/same", opset: 13, build: binaryCase("Mul", []int{2, 3, 4}, []int{2, 3, 4}, true, normal, normal)},
		{name: "Add/x+x", opset: 13, build: func(g *gb) {
			x := g.in("x", normal, 2, 3)
			g.out(g.b.Op("Add", []string{x, x}))
		}},
		{name: "Mul/x*x then reuse", opset: 13, build: func(g *gb) {
			x := g.in("x", normal, 2, 3)
			sq := g.b.Op("Mul", []string{x, x})
			g.out(g.b.Op("Sub", []string{sq, x}))
		}},
		{name: "Div/broadcast", opset: 13, build: binaryCase("Div", []int{2, 3, 4}, []int{3, 1}, true, normal, positive)},
		{name: "Div/by input", opset: 13, build: binaryCase("Div", []int{4}, []int{2, 3, 4}, true, normal, positive)},
		{name: "Pow/exponent 2", opset: 13, build: func(g *gb) {
			two := g.b.Initializer("two", onnxio.NewTensor([]int64{}, []float32{2}))
			g.out(g.b.Op("Pow", []string{g.in("x", normal, 2, 3, 4), two}))
		}},
		{name: "Pow/exponent 0.5", opset: 13, build: func(g *gb) {
			e := g.b.Op("Constant", nil, onnxio.AttrFloat("value_float", 0.5))
			g.out(g.b.Op("Pow", []string{g.in("x", positive, 2, 3, 4), e}))
		}},
		{name: "Pow/tensor exponent", opset: 13, build: binaryCase("Pow", []int{2, 3, 4}, []int{4}, true, positive, normal)},

		// unary
		{name: "Relu", opset: 13, build: unary("Relu", awayZero)},
		{name: "LeakyRelu", opset: 13, build: unary("LeakyRelu", awayZero, af("alpha", 0.2))},
		{name: "LeakyRelu/default alpha", opset: 13, build: unary("LeakyRelu", awayZero)},
		{name: "Sigmoid", opset: 13, build: unary("Sigmoid", normal)},
		{name: "Tanh", opset: 13, build: unary("Tanh", normal)},
		{name: "Erf", opset: 13, build: unary("Erf", normal)},
		{name: "Sqrt", opset: 13, build: unary("Sqrt", positive)},
		{name: "Exp", opset: 13, build: unary("Exp", normal)},
		{name: "Log", opset: 13, build: unary("Log", positive)},
		{name: "Neg", opset: 13, build: unary("Neg", normal)},
		{name: "Abs", opset: 13, build: unary("Abs", awayZero)},
		{name: "Identity", opset: 13, build: unary("Identity", normal)},
		{name: "Softmax/last", opset: 13, build: unary("Softmax", normal)},
		{name: "Softmax/axis 1", opset: 13, build: unary("Softmax", normal, ai("axis", 1))},
		{name: "Softmax/opset 11 flatten", opset: 11, build: unary("Softmax", normal, ai("axis", 1))},
		{name: "LogSoftmax/last", opset: 13, build: unary("LogSoftmax", normal)},
		{name: "LogSoftmax/axis 0", opset: 13, build: unary("LogSoftmax", normal, ai("axis", 0))},
		{name: "LogSoftmax/opset 11 default", opset: 11, build: unary("LogSoftmax", normal)},

		// convolution and pooling
		{name: "Conv/basic", opset: 13, build: conv([]int{2, 3, 7, 6}, []int{4, 3, 3, 3}, true)},
		{name: "Conv/pads strides", opset: 13, build: conv([]int{2, 3, 7, 6}, []int{4, 3, 3, 2}, true, aints("pads", 1, 0, 2, 1), aints("strides", 2, 2))},
		{name: "Conv/dilations", opset: 13, build: conv([]int{1, 2, 9, 8}, []int{3, 2, 3, 3}, false, aints("dilations", 2, 2), aints("pads", 1, 1, 1, 1))},
		{name: "Conv/groups", opset: 13, build: conv([]int{2, 4, 6, 6}, []int{6, 2, 3, 3}, true, ai("group", 2), aints("pads", 1, 1, 1, 1))},
		{name: "Conv/depthwise", opset: 13, build: conv([]int{2, 3, 6, 5}, []int{3, 1, 3, 3}, true, ai("group", 3), aints("strides", 2, 1))},
		{name: "Conv/SAME_UPPER", opset: 13, build: conv([]int{1, 2, 7, 6}, []int{3, 2, 4, 3}, true, as("auto_pad", "SAME_UPPER"), aints("strides", 2, 2))},
		{name: "Conv/SAME_LOWER", opset: 13, build: conv([]int{1, 2, 7, 6}, []int{3, 2, 4, 3}, false, as("auto_pad", "SAME_LOWER"))},
		{name: "Conv/VALID", opset: 13, build: conv([]int{1, 2, 7, 6}, []int{3, 2, 3, 3}, true, as("auto_pad", "VALID"), aints("strides", 2, 2))},
		{name: "Conv/1x1", opset: 13, build: conv([]int{2, 5, 4, 4}, []int{3, 5, 1, 1}, true)},
		{name: "Conv/1x1 stride 2", opset: 13, build: conv([]int{2, 5, 5, 4}, []int{3, 5, 1, 1}, false, aints("strides", 2, 2))},
		{name: "Conv/1D", opset: 13, build: conv([]int{2, 3, 9}, []int{4, 3, 3}, true, aints("pads", 1, 2), aints("strides", 2))},
		{name: "Conv/large", opset: 13, build: conv([]int{3, 8, 20, 20}, []int{16, 8, 3, 3}, true, aints("pads", 1, 1, 1, 1))},
		{name: "MaxPool/2x2", opset: 13, build: pool("MaxPool", []int{2, 3, 6, 6}, aints("kernel_shape", 2, 2), aints("strides", 2, 2))},
		{name: "MaxPool/3x3 pads", opset: 13, build: pool("MaxPool", []int{2, 2, 5, 6}, aints("kernel_shape", 3, 3), aints("pads", 1, 1, 1, 1))},
		{name: "MaxPool/ceil", opset: 13, build: pool("MaxPool", []int{1, 2, 7, 7}, aints("kernel_shape", 2, 2), aints("strides", 2, 2), ai("ceil_mode", 1))},
		{name: "MaxPool/ceil last window in pad", opset: 13, build: pool("MaxPool", []int{1, 2, 5, 5}, aints("kernel_shape", 2, 2), aints("strides", 2, 2), aints("pads", 1, 1, 1, 1), ai("ceil_mode", 1))},
		{name: "AveragePool/ceil last window in pad", opset: 13, build: pool("AveragePool", []int{1, 2, 5, 5}, aints("kernel_shape", 2, 2), aints("strides", 2, 2), aints("pads", 1, 1, 1, 1), ai("ceil_mode", 1))},
		{name: "AveragePool/ceil include pad", opset: 13, build: pool("AveragePool", []int{1, 2, 6, 6}, aints("kernel_shape", 3, 3), aints("strides", 2, 2), aints("pads", 1, 1, 1, 1), ai("ceil_mode", 1), ai("count_include_pad", 1))},
		{name: "MaxPool/dilations", opset: 13, build: pool("MaxPool", []int{1, 2, 7, 7}, aints("kernel_shape", 2, 2), aints("dilations", 2, 2))},
		{name: "MaxPool/SAME_UPPER", opset: 13, build: pool("MaxPool", []int{1, 2, 7, 6}, aints("kernel_shape", 3, 3), aints("strides", 2, 2), as("auto_pad", "SAME_UPPER"))},
		{name: "MaxPool/1D", opset: 13, build: pool("MaxPool", []int{2, 3, 9}, aints("kernel_shape", 3), aints("strides", 2))},
		{name: "AveragePool/exclude pad", opset: 13, build: pool("AveragePool", []int{2, 2, 6, 5}, aints("kernel_shape", 3, 3), aints("strides", 2, 2), aints("pads", 1, 1, 1, 1))},
		{name: "AveragePool/include pad", opset: 13, build: pool("AveragePool", []int{2, 2, 6, 5}, aints("kernel_shape", 3, 3), aints("strides", 2, 2), aints("pads", 1, 1, 1, 1), ai("count_include_pad", 1))},
		{name: "AveragePool/ceil", opset: 13, build: pool("AveragePool", []int{1, 2, 7, 7}, aints("kernel_shape", 2, 2), aints("strides", 2, 2), ai("ceil_mode", 1))},
		{name: "AveragePool/1D", opset: 13, build: pool("AveragePool", []int{2, 3, 8}, aints("kernel_shape", 2), aints("strides", 2))},
		{name: "GlobalAveragePool", opset: 13, build: unary("GlobalAveragePool", normal)},
		{name: "GlobalAveragePool/4D", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("GlobalAveragePool", []string{g.in("x", normal, 2, 3, 4, 5)}))
		}},

		// normalization
		{name: "BatchNormalization/inference", opset: 13, build: func(g *gb) {
			x := g.in("x", normal, 2, 3, 4, 5)
			g.out(g.b.Op("BatchNormalization", []string{x, g.param("s", positive, 3), g.param("bias", normal, 3),
				g.param("mean", small, 3), g.param("var", positive, 3)}, af("epsilon", 1e-3)))
		}},
		{name: "BatchNormalization/2D input", opset: 13, build: func(g *gb) {
			x := g.in("x", normal, 4, 3)
			g.out(g.b.Op("BatchNormalization", []string{x, g.param("s", positive, 3), g.param("bias", normal, 3),
				g.param("mean", small, 3), g.param("var", positive, 3)}))
		}},
		{name: "LayerNormalization/last", opset: 17, build: func(g *gb) {
			x := g.in("x", normal, 2, 3, 4)
			g.out(g.b.Op("LayerNormalization", []string{x, g.param("s", positive, 4), g.param("bias", normal, 4)}))
		}},
		{name: "LayerNormalization/axis 1 no bias", opset: 17, build: func(g *gb) {
			x := g.in("x", normal, 2, 3, 4)
			g.out(g.b.Op("LayerNormalization", []string{x, g.param("s", positive, 3, 4)}, ai("axis", 1), af("epsilon", 1e-3)))
		}},
		{name: "ReduceMean/axes keepdims", opset: 13, build: unary("ReduceMean", normal, aints("axes", 1))},
		{name: "ReduceMean/two axes no keepdims", opset: 13, build: unary("ReduceMean", normal, aints("axes", 0, -1), ai("keepdims", 0))},
		{name: "ReduceMean/all", opset: 13, build: unary("ReduceMean", normal)},
		{name: "ReduceMean/opset 18 axes input", opset: 18, build: func(g *gb) {
			g.out(g.b.Op("ReduceMean", []string{g.in("x", normal, 2, 3, 4), g.ints("axes", 2)}))
		}},
		{name: "ReduceSum/axes input", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("ReduceSum", []string{g.in("x", normal, 2, 3, 4), g.ints("axes", 0, 2)}, ai("keepdims", 0)))
		}},

		// dropout at inference is the identity
		{name: "Dropout/inference", opset: 13, build: func(g *gb) {
			ratio := g.b.Initializer("ratio", onnxio.NewTensor([]int64{}, []float32{0.3}))
			g.out(g.b.Op("Dropout", []string{g.in("x", normal, 2, 3, 4), ratio}))
		}},
		{name: "Dropout/opset 10", opset: 10, build: unary("Dropout", normal, af("ratio", 0.3))},

		// shapes
		{name: "Flatten/axis 1", opset: 13, build: unary("Flatten", normal)},
		{name: "Flatten/axis 0", opset: 13, build: unary("Flatten", normal, ai("axis", 0))},
		{name: "Flatten/axis -1", opset: 13, build: unary("Flatten", normal, ai("axis", -1))},
		{name: "Reshape/0 and -1", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Reshape", []string{g.in("x", normal, 2, 3, 4), g.ints("shape", 0, -1, 2)}))
		}},
		{name: "Reshape/param", opset: 13, build: func(g *gb) {
			w := g.b.Op("Reshape", []string{g.param("w", normal, 12), g.ints("shape", 3, 4)})
			g.out(g.b.Op("MatMul", []string{g.in("x", normal, 2, 3), w}))
		}},
		{name: "Transpose/perm", opset: 13, build: unary("Transpose", normal, aints("perm", 1, 2, 0))},
		{name: "Transpose/default", opset: 13, build: unary("Transpose", normal)},
		{name: "Transpose/4D", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Transpose", []string{g.in("x", normal, 2, 3, 4, 5)}, aints("perm", 0, 2, 1, 3)))
		}},
		{name: "Concat/axis 1", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Concat", []string{g.in("a", normal, 2, 3, 4), g.param("b", normal, 2, 1, 4), g.in("c", normal, 2, 2, 4)}, ai("axis", 1)))
		}},
		{name: "Concat/axis -1 same input twice", opset: 13, build: func(g *gb) {
			a := g.in("a", normal, 2, 3)
			g.out(g.b.Op("Concat", []string{a, a}, ai("axis", -1)))
		}},
		{name: "Slice/basic", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Slice", []string{g.in("x", normal, 4, 5, 6), g.ints("s", 1, 0), g.ints("e", 3, -1), g.ints("a", 0, 2)}))
		}},
		{name: "Slice/steps negative clamp", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Slice", []string{g.in("x", normal, 4, 5, 6), g.ints("s", -1, 100, 0), g.ints("e", -100, 0, 6),
				g.ints("a", 1, 0, -1), g.ints("st", -2, -1, 2)}))
		}},
		{name: "Slice/opset 9 attributes", opset: 9, build: unary("Slice", normal, aints("starts", 1, 0), aints("ends", 3, 2), aints("axes", 2, 0))},
		{name: "Gather/axis 0 param table", opset: 13, build: func(g *gb) {
			idx := g.b.Initializer("idx", onnxio.NewTensor([]int64{2, 2}, []int64{3, -1, 0, 3}))
			g.out(g.b.Op("Gather", []string{g.param("table", normal, 5, 3), idx}))
		}},
		{name: "Gather/axis 1 scalar index", opset: 13, build: func(g *gb) {
			idx := g.b.Initializer("idx", onnxio.NewTensor([]int64{}, []int64{2}))
			g.out(g.b.Op("Gather", []string{g.in("x", normal, 2, 3, 4), idx}, ai("axis", 1)))
		}},
		{name: "Gather/runtime indices", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Gather", []string{g.in("x", normal, 5, 3), g.inInts("idx", []int{3}, 4, 0, 4)}))
		}},
		{name: "Unsqueeze/opset 13", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Unsqueeze", []string{g.in("x", normal, 2, 3), g.ints("axes", 0, -1)}))
		}},
		{name: "Unsqueeze/opset 11", opset: 11, build: unary("Unsqueeze", normal, aints("axes", 1))},
		{name: "Squeeze/opset 13", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Squeeze", []string{g.in("x", normal, 2, 1, 3, 1), g.ints("axes", 1)}))
		}},
		{name: "Squeeze/all", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Squeeze", []string{g.in("x", normal, 2, 1, 3, 1)}))
		}},
		{name: "Squeeze/opset 11", opset: 11, build: func(g *gb) {
			g.out(g.b.Op("Squeeze", []string{g.in("x", normal, 1, 3, 1)}, aints("axes", 0, 2)))
		}},
		{name: "Shape", opset: 13, noGrad: true, build: func(g *gb) {
			g.outInts(g.b.Op("Shape", []string{g.in("x", normal, 2, 3, 4)}))
		}},
		{name: "Shape/start end", opset: 15, noGrad: true, build: func(g *gb) {
			g.outInts(g.b.Op("Shape", []string{g.in("x", normal, 2, 3, 4)}, ai("start", 1), ai("end", -1)))
		}},
		{name: "Cast/float to int64 and back", opset: 13, noGrad: true, build: func(g *gb) {
			i := g.b.Op("Cast", []string{g.in("x", normal, 2, 3)}, ai("to", int64(onnxio.TypeInt64)))
			g.outInts(i)
			g.out(g.b.Op("Cast", []string{i}, ai("to", int64(onnxio.TypeFloat))))
		}},
		{name: "Cast/float to float", opset: 13, build: unary("Cast", normal, ai("to", int64(onnxio.TypeFloat)))},
		{name: "Constant", opset: 13, build: func(g *gb) {
			tp, _ := onnxio.EncodeTensor("k", onnxio.NewTensor([]int64{3}, []float32{1, -2, 3}))
			k := g.b.Op("Constant", nil, onnxio.AttrTensor("value", tp))
			g.out(g.b.Op("Mul", []string{g.in("x", normal, 2, 3), k}))
		}},
		// activations and selections of real students (ops_extra.go)
		{name: "Clip/opset 6 attributes", opset: 6, build: unary("Clip", spreadA, af("min", -1), af("max", 2))},
		{name: "Clip/opset 6 default max", opset: 6, build: unary("Clip", spreadA, af("min", 0))},
		{name: "Clip/opset 11 min only", opset: 11, build: func(g *gb) {
			lo := g.b.Initializer("lo", onnxioScalar(-0.5))
			g.out(g.b.Op("Clip", []string{g.in("x", spreadA, 2, 3, 4), lo}))
		}},
		{name: "Clip/opset 11 max only", opset: 11, build: func(g *gb) {
			hi := g.b.Initializer("hi", onnxioScalar(1.5))
			g.out(g.b.Op("Clip", []string{g.in("x", spreadA, 2, 3, 4), "", hi}))
		}},
		{name: "Clip/ReLU6 opset 13", opset: 13, build: func(g *gb) {
			x := g.b.Op("Mul", []string{g.in("x", spreadA, 2, 3, 4), g.b.Initializer("k", onnxioScalar(2.5))})
			lo := g.b.Op("Constant", nil, onnxio.AttrFloat("value_float", 0))
			g.out(g.b.Op("Clip", []string{x, lo, g.b.Initializer("six", onnxioScalar(6))}))
		}},
		{name: "Clip/no bounds", opset: 13, build: unary("Clip", spreadA)},
		{name: "HardSigmoid", opset: 13, build: unary("HardSigmoid", spreadA)},
		{name: "HardSigmoid/alpha beta", opset: 6, build: unary("HardSigmoid", spreadA, af("alpha", 0.5), af("beta", 0.4))},
		{name: "HardSwish", opset: 14, build: unary("HardSwish", spreadA)},
		{name: "Max/two broadcast", opset: 13, build: binaryCase("Max", []int{2, 3, 4}, []int{4}, true, spreadA, spreadB)},
		{name: "Max/three", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Max", []string{g.in("a", spreadA, 2, 3, 4), g.in("b", spreadB, 3, 1), g.in("c", spreadC, 2, 1, 4)}))
		}},
		{name: "Max/one", opset: 13, build: unary("Max", normal)},
		{name: "Max/opset 6", opset: 6, build: binaryCase("Max", []int{2, 3}, []int{2, 3}, true, spreadA, spreadB)},
		{name: "Min/two broadcast", opset: 13, build: binaryCase("Min", []int{3, 1}, []int{2, 3, 4}, true, spreadA, spreadB)},
		{name: "Min/three", opset: 12, build: func(g *gb) {
			g.out(g.b.Op("Min", []string{g.in("a", spreadA, 2, 3, 4), g.in("b", spreadB, 4), g.in("c", spreadC, 2, 3, 1)}))
		}},
		{name: "Gelu from Erf", opset: 13, build: func(g *gb) {
			x := g.in("x", normal, 2, 3, 4)
			c := func(name string, v float32) string { return g.b.Initializer(name, onnxioScalar(v)) }
			erf := g.b.Op("Erf", []string{g.b.Op("Div", []string{x, c("sqrt2", 1.4142135)})})
			g.out(g.b.Op("Mul", []string{g.b.Op("Mul", []string{x, g.b.Op("Add", []string{erf, c("one", 1)})}), c("half", 0.5)}))
		}},
		{name: "Where/broadcast", opset: 13, build: func(g *gb) {
			cond := g.b.Initializer("cond", onnxio.NewTensor([]int64{3, 4}, []bool{true, false, false, true, true, true, false, false, true, false, true, false}))
			g.out(g.b.Op("Where", []string{cond, g.in("x", normal, 2, 3, 4), g.param("y", normal, 4)}))
		}},
		{name: "Where/scalar condition", opset: 9, build: func(g *gb) {
			cond := g.b.Initializer("cond", onnxio.NewTensor([]int64{}, []bool{false}))
			g.out(g.b.Op("Where", []string{cond, g.in("x", normal, 3, 1), g.in("y", normal, 2, 1, 4)}))
		}},
		{name: "Expand/broadcast", opset: 13, build: func(g *gb) {
			g.out(g.b.Op("Expand", []string{g.in("x", normal, 3, 1), g.ints("shape", 2, 1, 4)}))
		}},
		{name: "Expand/same rank ones", opset: 8, build: func(g *gb) {
			g.out(g.b.Op("Expand", []string{g.in("x", normal, 2, 3, 4), g.ints("shape", 1, 1, 4)}))
		}},
		{name: "Expand/int64", opset: 13, noGrad: true, build: func(g *gb) {
			g.outInts(g.b.Op("Expand", []string{g.inInts("x", []int{2, 1}, 5, -3), g.ints("shape", 2, 3)}))
		}},
		// the dynamic-shape pattern PyTorch exports: Shape → Gather → Unsqueeze → Concat → Reshape
		{name: "shape subgraph", opset: 13, build: func(g *gb) {
			x := g.in("x", normal, 3, 4, 2)
			s := g.b.Op("Shape", []string{x})
			zero := g.b.Op("Constant", nil, onnxio.AttrTensor("value", must(onnxio.EncodeTensor("z", onnxio.NewTensor([]int64{}, []int64{0})))))
			n := g.b.Op("Gather", []string{s, zero}, ai("axis", 0))
			nu := g.b.Op("Unsqueeze", []string{n, g.ints("ax", 0)})
			shape := g.b.Op("Concat", []string{nu, g.ints("rest", -1)}, ai("axis", 0))
			f := g.b.Op("Cast", []string{g.b.Op("Cast", []string{shape}, ai("to", int64(onnxio.TypeFloat)))}, ai("to", int64(onnxio.TypeInt64)))
			g.out(g.b.Op("Reshape", []string{x, f}))
		}},
	}
	return cs
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestOpsParityORT compares each op's forward with onnxruntime on small graphs.
func TestOpsParityORT(t *testing.T) {
	const tol = 1e-4
	worst, worstName := 0.0, ""
	for i, c := range opCases() {
		t.Run(c.name, func(t *testing.T) {
			g := newGB(c.opset, uint64(i+1))
			c.build(g)
			e := compareORT(t, g.model(t), g.inputs)
			if e > tol {
				t.Errorf("relative error %.3g > %g", e, tol)
			}
			if e > worst {
				worst, worstName = e, c.name
			}
		})
	}
	t.Logf("worst relative error against onnxruntime: %.3g (%s)", worst, worstName)
}

// TestOpsGradients checks every op's backward against central finite differences.
func TestOpsGradients(t *testing.T) {
	const tol = 3e-3
	worst, worstName := 0.0, ""
	total := 0
	for i, c := range opCases() {
		if c.noGrad {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			g := newGB(c.opset, uint64(i+1))
			c.build(g)
			res := gradCheck(t, g.model(t), g.inputs, false, 1e-2, 24)
			total += res.checked
			if res.checked == 0 {
				t.Fatalf("nothing to check")
			}
			if res.worst > tol {
				t.Errorf("gradient error %.3g > %g (in %s)", res.worst, tol, res.where)
			}
			if res.worst > worst {
				worst, worstName = res.worst, c.name+" "+res.where
			}
		})
	}
	t.Logf("%d gradient elements checked; worst error %.3g (%s)", total, worst, worstName)
}

// TestTrainingModeGradients checks batch-norm with batch statistics (and layer norm in
// a composite) against finite differences.
func TestTrainingModeGradients(t *testing.T) {
	cases := []opCase{
		{name: "BatchNormalization/training 4D", build: func(g *gb) {
			x := g.in("x", normal, 3, 2, 3, 3)
			g.out(g.b.Op("BatchNormalization", []string{x, g.param("s", positive, 2), g.param("bias", normal, 2),
				g.param("mean", small, 2), g.param("var", positive, 2)}))
		}},
		{name: "BatchNormalization/training 2D", build: func(g *gb) {
			x := g.in("x", normal, 5, 3)
			g.out(g.b.Op("BatchNormalization", []string{x, g.param("s", positive, 3), g.param("bias", normal, 3),
				g.param("mean", small, 3), g.param("var", positive, 3)}))
		}},
		{name: "Conv+BN+Relu+MaxPool+Gemm", build: func(g *gb) {
			x := g.in("x", normal, 2, 2, 6, 6)
			c := g.b.Op("Conv", []string{x, g.param("w", normal, 3, 2, 3, 3), g.param("cb", normal, 3)}, aints("pads", 1, 1, 1, 1))
			bn := g.b.Op("BatchNormalization", []string{c, g.param("s", positive, 3), g.param("bias", normal, 3),
				g.param("mean", small, 3), g.param("var", positive, 3)})
			p := g.b.Op("MaxPool", []string{g.b.Op("Sigmoid", []string{bn})}, aints("kernel_shape", 2, 2), aints("strides", 2, 2))
			f := g.b.Op("Flatten", []string{p})
			g.out(g.b.Op("Gemm", []string{f, g.param("fw", normal, 4, 27), g.param("fb", normal, 4)}, ai("transB", 1)))
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGB(13, uint64(100+i))
			c.build(g)
			res := gradCheck(t, g.model(t), g.inputs, true, 1e-2, 24)
			if res.worst > 3e-3 {
				t.Errorf("gradient error %.3g > 3e-3 (in %s)", res.worst, res.where)
			}
			t.Logf("%d elements, worst %.3g (%s)", res.checked, res.worst, res.where)
		})
	}
}

// TestBatchNormTraining checks batch statistics and the running-statistics update
// against a direct computation, and that Export carries the updated statistics.
func TestBatchNormTraining(t *testing.T) {
	g := newGB(13, 5)
	x := g.in("x", normal, 4, 2, 3)
	g.out(g.b.Op("BatchNormalization", []string{x, g.param("s", positive, 2), g.param("bias", normal, 2),
		g.param("mean", small, 2), g.param("var", positive, 2)}, af("momentum", 0.8), af("epsilon", 1e-5)))
	m := g.model(t)
	gr, err := Compile(m, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Params()) != 2 {
		t.Fatalf("params %d, want 2 (scale and bias; mean and var are state)", len(gr.Params()))
	}
	st := gr.State()
	m0, v0 := st["mean"].Clone(), st["var"].Clone()
	xs := g.inputs["x"]
	tape, err := gr.Forward(g.inputs, true)
	if err != nil {
		t.Fatal(err)
	}
	y := tape.Output(gr.Outputs()[0])
	sc, bias := gr.Param("s").Value.Data, gr.Param("bias").Value.Data
	for c := range 2 {
		var vals []float64
		for n := range 4 {
			for j := range 3 {
				vals = append(vals, float64(xs.Data[(n*2+c)*3+j]))
			}
		}
		var mean, sq float64
		for _, v := range vals {
			mean += v
		}
		mean /= float64(len(vals))
		for _, v := range vals {
			sq += (v - mean) * (v - mean)
		}
		variance := sq / float64(len(vals))
		for n := range 4 {
			for j := range 3 {
				i := (n*2+c)*3 + j
				want := (float64(xs.Data[i])-mean)/math.Sqrt(variance+1e-5)*float64(sc[c]) + float64(bias[c])
				if d := math.Abs(float64(y.Data[i]) - want); d > 1e-5 {
					t.Fatalf("y[%d] = %v, want %v", i, y.Data[i], want)
				}
			}
		}
		wantMean := 0.8*float64(m0.Data[c]) + 0.2*mean
		wantVar := 0.8*float64(v0.Data[c]) + 0.2*sq/float64(len(vals)-1)
		if math.Abs(float64(st["mean"].Data[c])-wantMean) > 1e-6 || math.Abs(float64(st["var"].Data[c])-wantVar) > 1e-6 {
			t.Fatalf("running stats channel %d: %v %v, want %v %v", c, st["mean"].Data[c], st["var"].Data[c], wantMean, wantVar)
		}
	}
	out, err := gr.Export()
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range out.Proto.GetGraph().GetInitializer() {
		if tp.GetName() == "mean" {
			f, _ := onnxio.TensorFloat32s(tp)
			if f[0] != st["mean"].Data[0] {
				t.Fatalf("exported mean %v, engine %v", f, st["mean"].Data)
			}
		}
	}
	// the original model is untouched
	for _, tp := range m.Proto.GetGraph().GetInitializer() {
		if tp.GetName() == "mean" {
			f, _ := onnxio.TensorFloat32s(tp)
			if f[0] != m0.Data[0] {
				t.Fatalf("the source model changed")
			}
		}
	}
}

func TestDropout(t *testing.T) {
	g := newGB(13, 3)
	ratio := g.b.Initializer("ratio", onnxio.NewTensor([]int64{}, []float32{0.25}))
	x := g.in("x", positive, 100, 100)
	outs := g.b.Node("Dropout", []string{x, ratio}, 2)
	g.out(outs[0])
	g.b.Output(outs[1], onnxio.TypeBool, nil)
	m := g.model(t)
	run := func(seed uint64) (*Tape, *Graph) {
		gr, err := Compile(m, CompileOptions{Seed: seed, InputGrads: true})
		if err != nil {
			t.Fatal(err)
		}
		tape, err := gr.Forward(g.inputs, true)
		if err != nil {
			t.Fatal(err)
		}
		return tape, gr
	}
	tape, _ := run(7)
	y, mask := tape.Output(outs[0]), tape.Output(outs[1])
	dropped := 0
	for i, v := range y.Data {
		switch {
		case v == 0:
			dropped++
			if mask.Data[i] != 0 {
				t.Fatalf("mask %v where dropped", mask.Data[i])
			}
		case math.Abs(float64(v)-float64(g.inputs["x"].Data[i])/0.75) > 1e-5:
			t.Fatalf("kept element %d scaled to %v, want %v", i, v, g.inputs["x"].Data[i]/0.75)
		}
	}
	if frac := float64(dropped) / float64(len(y.Data)); math.Abs(frac-0.25) > 0.02 {
		t.Fatalf("dropped %.3f of the elements, want about 0.25", frac)
	}
	seed := NewTensor(y.Shape, genData(g.r, normal, len(y.Data)))
	if err := tape.Backward(map[string]*Tensor{outs[0]: seed}); err != nil {
		t.Fatal(err)
	}
	dx := tape.Grad("x")
	for i, v := range y.Data {
		want := float32(0)
		if v != 0 {
			want = seed.Data[i] / 0.75
		}
		if math.Abs(float64(dx.Data[i]-want)) > 1e-5 {
			t.Fatalf("dx[%d] = %v, want %v", i, dx.Data[i], want)
		}
	}
	// the same seed gives the same mask
	tape2, _ := run(7)
	for i, v := range tape2.Output(outs[0]).Data {
		if v != y.Data[i] {
			t.Fatalf("seeded dropout differs at %d", i)
		}
	}
}

func TestUnsupportedOps(t *testing.T) {
	g := newGB(13, 1)
	x := g.in("x", normal, 2, 3)
	a := g.b.Op("Cos", []string{x})
	b := g.b.Op("Cos", []string{a})
	c := g.b.Op("TopK", []string{b, g.ints("k", 1)})
	g.out(g.b.Op("Relu", []string{c}))
	_, err := Compile(g.model(t), CompileOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Cos", "TopK", `"Cos"`, `"Cos_1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	t.Log(err)

	g = newGB(13, 1)
	x = g.in("x", normal, 1, 2, 4, 4)
	outs := g.b.Node("MaxPool", []string{x}, 2, aints("kernel_shape", 2, 2))
	g.out(outs[0])
	g.outInts(outs[1])
	if _, err := Compile(g.model(t), CompileOptions{}); err == nil || !strings.Contains(err.Error(), "output 1") {
		t.Errorf("MaxPool Indices: %v", err)
	}

	g = newGB(13, 1)
	x = g.in("x", normal, 1, 1, 4, 4, 4)
	g.out(g.b.Op("MaxPool", []string{x}, aints("kernel_shape", 2, 2, 2)))
	if _, err := Compile(g.model(t), CompileOptions{}); err == nil || !strings.Contains(err.Error(), "3-D") {
		t.Errorf("3-D pooling: %v", err)
	}
}

func TestConstantFolding(t *testing.T) {
	g := newGB(13, 1)
	x := g.in("x", normal, 2, 3)
	w := g.b.Op("Transpose", []string{g.param("w", normal, 4, 3)})
	frozen := g.b.Op("Mul", []string{g.param("frozen", normal, 3, 4), g.b.Op("Constant", nil, onnxio.AttrFloat("value_float", 2))})
	g.out(g.b.Op("Add", []string{g.b.Op("MatMul", []string{x, w}), g.b.Op("MatMul", []string{x, frozen})}))
	m := g.model(t)
	gr, err := Compile(m, CompileOptions{Frozen: func(name string) bool { return name == "frozen" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Params()) != 1 || gr.Params()[0].Name != "w" {
		t.Fatalf("params %v, want only w", gr.Params())
	}
	// Transpose(w) must run (w is trained); Mul(frozen, 2) and the Constant are folded.
	if n := gr.NumNodes(); n != 4 {
		t.Fatalf("%d nodes run, want 4 (Transpose, 2 MatMul, Add)", n)
	}
	if e := compareORT(t, m, g.inputs); e > 1e-5 {
		t.Fatalf("relative error %g", e)
	}
}

func TestForwardInputChecks(t *testing.T) {
	g := newGB(13, 1)
	g.b.Input("x", onnxio.TypeFloat, []int64{-1, 3}, "batch")
	g.out(g.b.Op("Relu", []string{"x"}))
	gr, err := Compile(g.model(t), CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   map[string]*Tensor
		want string
	}{
		{map[string]*Tensor{}, "missing"},
		{map[string]*Tensor{"x": Zeros(2, 4)}, "dimension 1"},
		{map[string]*Tensor{"x": Zeros(3)}, "rank"},
		{map[string]*Tensor{"x": NewInt64Tensor([]int{2, 3}, nil)}, "int64"},
		{map[string]*Tensor{"x": Zeros(2, 3), "y": Zeros(1)}, "not an input"},
	} {
		if _, err := gr.Forward(c.in, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("inputs %v: error %v, want %q", c.in, err, c.want)
		}
	}
	if _, err := gr.Forward(map[string]*Tensor{"x": Zeros(5, 3)}, false); err != nil {
		t.Fatal(err)
	}
}

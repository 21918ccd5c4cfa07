package fp16

import (
	"fmt"
	"math/rand/v2"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// One-op float32 models, one per op type that real CNN, Transformer and detection
// models use, for measuring which ops onnxruntime runs in float16 (the generator) and
// for testing the block list. Float inputs are graph inputs (so nothing constant-folds
// away) holding values exactly representable in float16, so the converted model sees
// the same inputs as the float32 one; weights are initializers.

// opModel builds one test model.
type opModel struct {
	b     *onnxio.Builder
	opset int64
	rng   *rand.Rand
	feeds map[string]*onnxio.Tensor
	n     int
}

func newOpModel(opset int64, seed uint64) *opModel {
	return &opModel{b: onnxio.NewBuilder(opset), opset: opset, rng: rand.New(rand.NewPCG(seed, 7)), feeds: map[string]*onnxio.Tensor{}}
}

func (m *opModel) name(p string) string { m.n++; return fmt.Sprintf("%s%d", p, m.n) }

// in adds a float32 graph input holding data.
func (m *opModel) in(shape []int64, data []float32) string {
	name := m.b.Input(m.name("x"), onnxio.TypeFloat, shape)
	m.feeds[name] = onnxio.NewTensor(shape, data)
	return name
}

// x adds a float32 graph input of normal(0,1) values.
func (m *opModel) x(shape ...int64) string { return m.in(shape, normalData(m.rng, numel(shape))) }

// xr adds a float32 graph input of uniform [lo, hi) values.
func (m *opModel) xr(lo, hi float64, shape ...int64) string {
	return m.in(shape, uniformData(m.rng, numel(shape), lo, hi))
}

// xi adds an int64 graph input.
func (m *opModel) xi(shape []int64, data []int64) string {
	name := m.b.Input(m.name("i"), onnxio.TypeInt64, shape)
	m.feeds[name] = onnxio.NewTensor(shape, data)
	return name
}

// xb adds a bool graph input.
func (m *opModel) xb(shape []int64, data []bool) string {
	name := m.b.Input(m.name("b"), onnxio.TypeBool, shape)
	m.feeds[name] = onnxio.NewTensor(shape, data)
	return name
}

// w adds a float32 initializer of normal(0, 0.5^2) values.
func (m *opModel) w(shape ...int64) string {
	d := normalData(m.rng, numel(shape))
	for i := range d {
		d[i] = fp16Exact(d[i] / 2)
	}
	return m.b.Initializer(m.name("w"), onnxio.NewTensor(shape, d))
}

// wr adds a float32 initializer of uniform [lo, hi) values.
func (m *opModel) wr(lo, hi float64, shape ...int64) string {
	return m.b.Initializer(m.name("w"), onnxio.NewTensor(shape, uniformData(m.rng, numel(shape), lo, hi)))
}

// f adds a 1-D float32 initializer; fs a scalar one.
func (m *opModel) f(v ...float32) string {
	return m.b.Initializer(m.name("f"), onnxio.NewTensor([]int64{int64(len(v))}, v))
}
func (m *opModel) fs(v float32) string {
	return m.b.Initializer(m.name("f"), onnxio.NewTensor([]int64{}, []float32{v}))
}

// ints adds a 1-D int64 initializer; is a scalar one.
func (m *opModel) ints(v ...int64) string {
	return m.b.Initializer(m.name("k"), onnxio.NewTensor([]int64{int64(len(v))}, v))
}
func (m *opModel) is(v int64) string {
	return m.b.Initializer(m.name("k"), onnxio.NewTensor([]int64{}, []int64{v}))
}

// op adds a node and marks its first output (float) as a graph output.
func (m *opModel) op(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	o := m.b.Op(op, inputs, attrs...)
	m.b.Output(o, onnxio.TypeFloat, nil)
	return o
}

// opT is op for an output of another type.
func (m *opModel) opT(dt onnxio.DataType, op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	o := m.b.Op(op, inputs, attrs...)
	m.b.Output(o, dt, nil)
	return o
}

// outs adds a node with several outputs of the given types, all graph outputs.
func (m *opModel) outs(types []onnxio.DataType, op string, inputs []string, attrs ...*onnxpb.AttributeProto) {
	outs := m.b.Node(op, inputs, len(types), attrs...)
	for i, o := range outs {
		m.b.Output(o, types[i], nil)
	}
}

// axes passes reduction axes as an attribute or (from opset 18, or 13 for ReduceSum) an
// input.
func (m *opModel) reduce(op string, x string, axes ...int64) {
	since := int64(18)
	if op == "ReduceSum" {
		since = 13
	}
	if m.opset >= since {
		m.op(op, []string{x, m.ints(axes...)}, onnxio.AttrInt("keepdims", 1))
		return
	}
	m.op(op, []string{x}, onnxio.AttrInts("axes", axes...), onnxio.AttrInt("keepdims", 1))
}

type opCase struct {
	op     string
	min    int64   // first opset tested (the op's version that real models use)
	opsets []int64 // explicit opsets (overrides the default 13, 17, 21)
	random bool    // nondeterministic outputs: only run, do not compare
	build  func(m *opModel)
}

// testOpsets are the opsets each op is tried at (from its min): the common export
// opsets of PyTorch 1.x and 2.x and a recent one.
var testOpsets = []int64{13, 17, 21}

func (c opCase) versions() []int64 {
	if c.opsets != nil {
		return c.opsets
	}
	var v []int64
	for _, o := range testOpsets {
		if o >= c.min {
			v = append(v, o)
		}
	}
	if len(v) == 0 {
		v = []int64{c.min}
	}
	return v
}

func unary(op string, lo, hi float64, attrs ...*onnxpb.AttributeProto) func(m *opModel) {
	return func(m *opModel) {
		x := m.x(2, 3, 4)
		if lo != 0 || hi != 0 {
			x = m.xr(lo, hi, 2, 3, 4)
		}
		m.op(op, []string{x}, attrs...)
	}
}

func binop(op string, lo, hi float64) func(m *opModel) {
	return func(m *opModel) {
		a := m.x(2, 3, 4)
		b := m.x(3, 4)
		if lo != 0 || hi != 0 {
			b = m.xr(lo, hi, 3, 4)
		}
		m.op(op, []string{a, b})
	}
}

func compare(op string) func(m *opModel) {
	return func(m *opModel) {
		m.opT(onnxio.TypeBool, op, []string{m.x(2, 3, 4), m.x(3, 4)})
	}
}

func rnn(op string, gates int64) func(m *opModel) {
	return func(m *opModel) {
		const seq, batch, in, hid = 3, 2, 4, 5
		x := m.x(seq, batch, in)
		w := m.w(1, gates*hid, in)
		r := m.w(1, gates*hid, hid)
		b := m.w(1, 2*gates*hid)
		m.op(op, []string{x, w, r, b}, onnxio.AttrInt("hidden_size", hid))
	}
}

// opCases is the list the generator measures. Keep it sorted by op.
var opCases = []opCase{
	{op: "Abs", build: unary("Abs", 0, 0)},
	{op: "Acos", build: unary("Acos", -0.9, 0.9)},
	{op: "Acosh", build: unary("Acosh", 1.1, 3)},
	{op: "Add", build: binop("Add", 0, 0)},
	{op: "ArgMax", build: func(m *opModel) { m.opT(onnxio.TypeInt64, "ArgMax", []string{m.x(2, 3, 4)}, onnxio.AttrInt("axis", 1)) }},
	{op: "ArgMin", build: func(m *opModel) { m.opT(onnxio.TypeInt64, "ArgMin", []string{m.x(2, 3, 4)}, onnxio.AttrInt("axis", 1)) }},
	{op: "Asin", build: unary("Asin", -0.9, 0.9)},
	{op: "Asinh", build: unary("Asinh", 0, 0)},
	{op: "Atan", build: unary("Atan", 0, 0)},
	{op: "Atanh", build: unary("Atanh", -0.9, 0.9)},
	{op: "AveragePool", build: func(m *opModel) {
		m.op("AveragePool", []string{m.x(1, 3, 8, 8)}, onnxio.AttrInts("kernel_shape", 2, 2), onnxio.AttrInts("strides", 2, 2))
	}},
	{op: "BatchNormalization", build: func(m *opModel) {
		m.op("BatchNormalization", []string{m.x(2, 3, 4, 4), m.wr(0.5, 1.5, 3), m.w(3), m.w(3), m.wr(0.25, 1.75, 3)})
	}},
	{op: "Bernoulli", min: 15, random: true, build: func(m *opModel) { m.op("Bernoulli", []string{m.xr(0, 1, 2, 3)}) }},
	{op: "Cast", build: func(m *opModel) {
		m.op("Cast", []string{m.xi([]int64{2, 3}, []int64{1, -2, 3, 1000, 5, -6})}, onnxio.AttrInt("to", int64(onnxio.TypeFloat)))
	}},
	{op: "CastLike", min: 15, build: func(m *opModel) {
		m.op("CastLike", []string{m.xi([]int64{2, 3}, []int64{1, -2, 3, 1000, 5, -6}), m.w(1)})
	}},
	{op: "Ceil", build: unary("Ceil", 0, 0)},
	{op: "Celu", build: unary("Celu", 0, 0)},
	{op: "Clip", build: func(m *opModel) { m.op("Clip", []string{m.x(2, 3, 4), m.fs(-0.5), m.fs(0.5)}) }},
	{op: "Concat", build: func(m *opModel) { m.op("Concat", []string{m.x(2, 3), m.x(2, 2)}, onnxio.AttrInt("axis", 1)) }},
	{op: "Constant", build: func(m *opModel) {
		tp, _ := onnxio.EncodeTensor("c", onnxio.NewTensor([]int64{3}, []float32{0.5, -1, 2}))
		c := m.b.Op("Constant", nil, onnxio.AttrTensor("value", tp))
		m.op("Concat", []string{m.x(2, 3), m.b.Op("Unsqueeze", []string{c, m.ints(0)})}, onnxio.AttrInt("axis", 0))
	}},
	{op: "ConstantOfShape", build: func(m *opModel) {
		tp, _ := onnxio.EncodeTensor("v", onnxio.NewTensor([]int64{1}, []float32{0.25}))
		m.op("ConstantOfShape", []string{m.xi([]int64{2}, []int64{2, 3})}, onnxio.AttrTensor("value", tp))
	}},
	{op: "Conv", build: func(m *opModel) {
		m.op("Conv", []string{m.x(1, 3, 8, 8), m.w(4, 3, 3, 3), m.w(4)}, onnxio.AttrInts("pads", 1, 1, 1, 1))
	}},
	{op: "ConvTranspose", build: func(m *opModel) {
		m.op("ConvTranspose", []string{m.x(1, 3, 5, 5), m.w(3, 2, 3, 3), m.w(2)}, onnxio.AttrInts("strides", 2, 2))
	}},
	{op: "Cos", build: unary("Cos", 0, 0)},
	{op: "Cosh", build: unary("Cosh", 0, 0)},
	{op: "CumSum", build: func(m *opModel) { m.op("CumSum", []string{m.x(2, 3, 4), m.is(1)}) }},
	{op: "DepthToSpace", build: func(m *opModel) { m.op("DepthToSpace", []string{m.x(1, 8, 2, 3)}, onnxio.AttrInt("blocksize", 2)) }},
	{op: "DequantizeLinear", build: func(m *opModel) {
		x := m.b.Input(m.name("q"), onnxio.TypeUint8, []int64{2, 3})
		m.feeds[x] = onnxio.NewTensor([]int64{2, 3}, []uint8{0, 10, 128, 200, 255, 3})
		zp := m.b.Initializer(m.name("zp"), onnxio.NewTensor([]int64{}, []uint8{128}))
		m.op("DequantizeLinear", []string{x, m.fs(0.05), zp})
	}},
	{op: "Det", build: func(m *opModel) { m.op("Det", []string{m.x(2, 3, 3)}) }},
	{op: "Div", build: binop("Div", 0.5, 2)},
	{op: "Dropout", build: unary("Dropout", 0, 0)},
	{op: "DynamicQuantizeLinear", build: func(m *opModel) {
		m.outs([]onnxio.DataType{onnxio.TypeUint8, onnxio.TypeFloat, onnxio.TypeUint8}, "DynamicQuantizeLinear", []string{m.x(2, 3, 4)})
	}},
	{op: "Einsum", build: func(m *opModel) {
		m.op("Einsum", []string{m.x(2, 3, 4), m.x(2, 4, 5)}, onnxio.AttrString("equation", "bij,bjk->bik"))
	}},
	{op: "Elu", build: unary("Elu", 0, 0)},
	{op: "Equal", build: func(m *opModel) {
		d := normalData(m.rng, 12)
		e := append([]float32(nil), d...)
		e[0], e[5] = 1, 2
		m.opT(onnxio.TypeBool, "Equal", []string{m.in([]int64{3, 4}, d), m.in([]int64{3, 4}, e)})
	}},
	{op: "Erf", build: unary("Erf", 0, 0)},
	{op: "Exp", build: unary("Exp", 0, 0)},
	{op: "Expand", build: func(m *opModel) { m.op("Expand", []string{m.x(3, 1), m.ints(2, 3, 4)}) }},
	{op: "EyeLike", build: func(m *opModel) { m.op("EyeLike", []string{m.x(3, 4)}) }},
	{op: "Flatten", build: func(m *opModel) { m.op("Flatten", []string{m.x(2, 3, 4)}) }},
	{op: "Floor", build: unary("Floor", 0, 0)},
	{op: "GRU", build: rnn("GRU", 3)},
	{op: "Gather", build: func(m *opModel) { m.op("Gather", []string{m.x(5, 3), m.ints(0, 4, 2, 2)}) }},
	{op: "GatherElements", build: func(m *opModel) {
		idx := m.b.Initializer(m.name("k"), onnxio.NewTensor([]int64{2, 2}, []int64{0, 2, 1, 0}))
		m.op("GatherElements", []string{m.x(2, 3), idx}, onnxio.AttrInt("axis", 1))
	}},
	{op: "GatherND", build: func(m *opModel) {
		idx := m.b.Initializer(m.name("k"), onnxio.NewTensor([]int64{2, 2}, []int64{0, 1, 1, 2}))
		m.op("GatherND", []string{m.x(2, 3, 4), idx})
	}},
	{op: "Gelu", min: 20, build: unary("Gelu", 0, 0)},
	{op: "Gemm", build: func(m *opModel) {
		m.op("Gemm", []string{m.x(2, 4), m.w(5, 4), m.w(5)}, onnxio.AttrInt("transB", 1))
	}},
	{op: "GlobalAveragePool", build: func(m *opModel) { m.op("GlobalAveragePool", []string{m.x(1, 3, 4, 4)}) }},
	{op: "GlobalMaxPool", build: func(m *opModel) { m.op("GlobalMaxPool", []string{m.x(1, 3, 4, 4)}) }},
	{op: "Greater", build: compare("Greater")},
	{op: "GreaterOrEqual", build: compare("GreaterOrEqual")},
	{op: "GridSample", min: 16, build: func(m *opModel) {
		m.op("GridSample", []string{m.x(1, 2, 4, 4), m.xr(-1, 1, 1, 3, 3, 2)})
	}},
	{op: "GroupNormalization", min: 21, build: func(m *opModel) {
		m.op("GroupNormalization", []string{m.x(2, 4, 3, 3), m.wr(0.5, 1.5, 4), m.w(4)}, onnxio.AttrInt("num_groups", 2))
	}},
	{op: "HardSigmoid", build: unary("HardSigmoid", 0, 0)},
	{op: "HardSwish", min: 14, build: unary("HardSwish", 0, 0)},
	{op: "Hardmax", build: unary("Hardmax", 0, 0)},
	{op: "Identity", build: unary("Identity", 0, 0)},
	{op: "If", build: func(m *opModel) {
		x := m.x(2, 3)
		c := m.xb([]int64{}, []bool{true})
		// The branches only move data, so that the case measures If itself.
		branch := func(name string, first bool, k float32) *onnxpb.GraphProto {
			b := onnxio.NewBuilder(m.opset)
			kk := b.Initializer(name+"_k", onnxio.NewTensor([]int64{1, 3}, []float32{k, k, k}))
			in := []string{x, kk}
			if !first {
				in = []string{kk, x}
			}
			o := b.Op("Concat", in, onnxio.AttrInt("axis", 0))
			b.Output(o, onnxio.TypeFloat, nil)
			g := b.Graph()
			g.Name = &name
			for _, n := range g.Node {
				n.Name = strPtr(name + "_" + n.GetName())
				n.Output[0] = name + "_" + n.Output[0]
			}
			g.Output[0].Name = &g.Node[0].Output[0]
			return g
		}
		m.op("If", []string{c}, onnxio.AttrGraph("then_branch", branch("then", true, 1.5)), onnxio.AttrGraph("else_branch", branch("else", false, 2)))
	}},
	{op: "InstanceNormalization", build: func(m *opModel) {
		m.op("InstanceNormalization", []string{m.x(2, 3, 4, 4), m.wr(0.5, 1.5, 3), m.w(3)})
	}},
	{op: "IsInf", build: func(m *opModel) { m.opT(onnxio.TypeBool, "IsInf", []string{m.x(2, 3)}) }},
	{op: "IsNaN", build: func(m *opModel) { m.opT(onnxio.TypeBool, "IsNaN", []string{m.x(2, 3)}) }},
	{op: "LRN", build: func(m *opModel) { m.op("LRN", []string{m.x(1, 5, 3, 3)}, onnxio.AttrInt("size", 3)) }},
	{op: "LSTM", build: rnn("LSTM", 4)},
	{op: "LayerNormalization", min: 17, build: func(m *opModel) {
		m.op("LayerNormalization", []string{m.x(2, 3, 8), m.wr(0.5, 1.5, 8), m.w(8)}, onnxio.AttrInt("axis", -1))
	}},
	{op: "LeakyRelu", build: unary("LeakyRelu", 0, 0)},
	{op: "Less", build: compare("Less")},
	{op: "LessOrEqual", build: compare("LessOrEqual")},
	{op: "Log", build: unary("Log", 0.1, 4)},
	{op: "LogSoftmax", build: unary("LogSoftmax", 0, 0)},
	{op: "Loop", build: func(m *opModel) {
		x := m.x(2, 3)
		b := onnxio.NewBuilder(m.opset)
		b.Input("it", onnxio.TypeInt64, []int64{})
		b.Input("cin", onnxio.TypeBool, []int64{})
		v := b.Input("v", onnxio.TypeFloat, nil)
		// The body only moves data, so that the case measures Loop itself.
		cout := b.Op("Identity", []string{"cin"})
		o := b.Op("Identity", []string{v})
		s := b.Op("Concat", []string{o, x}, onnxio.AttrInt("axis", 0))
		b.Output(cout, onnxio.TypeBool, []int64{})
		b.Output(o, onnxio.TypeFloat, nil)
		b.Output(s, onnxio.TypeFloat, nil)
		g := b.Graph()
		for _, n := range g.Node {
			n.Name = strPtr("body_" + n.GetName())
		}
		trip := m.is(3)
		cond := m.b.Initializer(m.name("c"), onnxio.NewTensor([]int64{}, []bool{true}))
		m.outs([]onnxio.DataType{onnxio.TypeFloat, onnxio.TypeFloat}, "Loop", []string{trip, cond, m.x(2, 3)}, onnxio.AttrGraph("body", g))
	}},
	{op: "LpNormalization", build: unary("LpNormalization", 0, 0)},
	{op: "LpPool", build: func(m *opModel) { m.op("LpPool", []string{m.x(1, 2, 4, 4)}, onnxio.AttrInts("kernel_shape", 2, 2)) }},
	{op: "MatMul", build: func(m *opModel) { m.op("MatMul", []string{m.x(2, 3, 4), m.w(4, 5)}) }},
	{op: "Max", build: binop("Max", 0, 0)},
	{op: "MaxPool", build: func(m *opModel) {
		m.op("MaxPool", []string{m.x(1, 3, 8, 8)}, onnxio.AttrInts("kernel_shape", 2, 2), onnxio.AttrInts("strides", 2, 2))
	}},
	{op: "Mean", build: binop("Mean", 0, 0)},
	{op: "MeanVarianceNormalization", build: func(m *opModel) { m.op("MeanVarianceNormalization", []string{m.x(2, 3, 4, 4)}) }},
	{op: "Min", build: binop("Min", 0, 0)},
	{op: "Mish", min: 18, build: unary("Mish", 0, 0)},
	{op: "Mod", build: func(m *opModel) {
		m.op("Mod", []string{m.x(2, 3, 4), m.xr(0.5, 2, 3, 4)}, onnxio.AttrInt("fmod", 1))
	}},
	{op: "Mul", build: binop("Mul", 0, 0)},
	{op: "Neg", build: unary("Neg", 0, 0)},
	{op: "NonMaxSuppression", build: func(m *opModel) {
		boxes := m.in([]int64{1, 4, 4}, []float32{0, 0, 1, 1, 0, 0.1, 1, 1.1, 0, 3, 1, 4, 0, 5, 1, 6})
		scores := m.in([]int64{1, 1, 4}, []float32{0.9, 0.75, 0.625, 0.5})
		m.opT(onnxio.TypeInt64, "NonMaxSuppression", []string{boxes, scores, m.ints(3), m.f(0.5), m.f(0)})
	}},
	{op: "NonZero", build: func(m *opModel) {
		m.opT(onnxio.TypeInt64, "NonZero", []string{m.in([]int64{2, 3}, []float32{0, 1, 0, -2, 0.5, 0})})
	}},
	{op: "OneHot", build: func(m *opModel) {
		m.op("OneHot", []string{m.xi([]int64{3}, []int64{0, 2, 4}), m.fs(5), m.f(-1, 1)})
	}},
	{op: "PRelu", build: func(m *opModel) { m.op("PRelu", []string{m.x(2, 3, 4), m.w(3, 1)}) }},
	{op: "Pad", build: func(m *opModel) { m.op("Pad", []string{m.x(2, 3), m.ints(0, 1, 1, 2), m.fs(0.5)}) }},
	{op: "Pow", build: func(m *opModel) { m.op("Pow", []string{m.xr(0.5, 2, 2, 3, 4), m.x(3, 4)}) }},
	{op: "QuantizeLinear", build: func(m *opModel) {
		zp := m.b.Initializer(m.name("zp"), onnxio.NewTensor([]int64{}, []uint8{128}))
		m.opT(onnxio.TypeUint8, "QuantizeLinear", []string{m.x(2, 3), m.fs(0.05), zp})
	}},
	{op: "RNN", build: rnn("RNN", 1)},
	{op: "RandomNormal", random: true, build: func(m *opModel) {
		m.op("Add", []string{m.b.Op("RandomNormal", nil, onnxio.AttrInts("shape", 2, 3)), m.x(2, 3)})
	}},
	{op: "RandomUniform", random: true, build: func(m *opModel) {
		m.op("Add", []string{m.b.Op("RandomUniform", nil, onnxio.AttrInts("shape", 2, 3)), m.x(2, 3)})
	}},
	{op: "RandomNormalLike", random: true, build: func(m *opModel) { m.op("RandomNormalLike", []string{m.x(2, 3)}) }},
	{op: "RandomUniformLike", random: true, build: func(m *opModel) { m.op("RandomUniformLike", []string{m.x(2, 3)}) }},
	{op: "Range", build: func(m *opModel) {
		m.op("Range", []string{m.in([]int64{}, []float32{1}), m.in([]int64{}, []float32{6.5}), m.in([]int64{}, []float32{0.5})})
	}},
	{op: "Reciprocal", build: unary("Reciprocal", 0.5, 2)},
	{op: "ReduceL1", build: func(m *opModel) { m.reduce("ReduceL1", m.x(2, 3, 4), 1) }},
	{op: "ReduceL2", build: func(m *opModel) { m.reduce("ReduceL2", m.x(2, 3, 4), 1) }},
	{op: "ReduceLogSum", build: func(m *opModel) { m.reduce("ReduceLogSum", m.xr(0.5, 2, 2, 3, 4), 1) }},
	{op: "ReduceLogSumExp", build: func(m *opModel) { m.reduce("ReduceLogSumExp", m.x(2, 3, 4), 1) }},
	{op: "ReduceMax", build: func(m *opModel) { m.reduce("ReduceMax", m.x(2, 3, 4), 1) }},
	{op: "ReduceMean", build: func(m *opModel) { m.reduce("ReduceMean", m.x(2, 3, 4), 1) }},
	{op: "ReduceMin", build: func(m *opModel) { m.reduce("ReduceMin", m.x(2, 3, 4), 1) }},
	{op: "ReduceProd", build: func(m *opModel) { m.reduce("ReduceProd", m.x(2, 3, 4), 1) }},
	{op: "ReduceSum", build: func(m *opModel) { m.reduce("ReduceSum", m.x(2, 3, 4), 1) }},
	{op: "ReduceSumSquare", build: func(m *opModel) { m.reduce("ReduceSumSquare", m.x(2, 3, 4), 1) }},
	{op: "Relu", build: unary("Relu", 0, 0)},
	{op: "Reshape", build: func(m *opModel) { m.op("Reshape", []string{m.x(2, 3, 4), m.ints(6, -1)}) }},
	{op: "Resize", build: func(m *opModel) {
		m.op("Resize", []string{m.x(1, 2, 3, 3), "", m.f(1, 1, 2, 2)}, onnxio.AttrString("mode", "linear"))
	}},
	{op: "RoiAlign", build: func(m *opModel) {
		rois := m.in([]int64{2, 4}, []float32{0, 0, 4, 4, 1, 1, 6, 7})
		m.op("RoiAlign", []string{m.x(1, 2, 8, 8), rois, m.ints(0, 0)},
			onnxio.AttrInt("output_height", 2), onnxio.AttrInt("output_width", 2))
	}},
	{op: "Round", build: unary("Round", 0, 0)},
	{op: "ScatterElements", build: func(m *opModel) {
		idx := m.b.Initializer(m.name("k"), onnxio.NewTensor([]int64{1, 2}, []int64{2, 0}))
		m.op("ScatterElements", []string{m.x(2, 3), idx, m.x(1, 2)}, onnxio.AttrInt("axis", 1))
	}},
	{op: "ScatterND", build: func(m *opModel) {
		idx := m.b.Initializer(m.name("k"), onnxio.NewTensor([]int64{2, 1}, []int64{0, 2}))
		m.op("ScatterND", []string{m.x(3, 4), idx, m.x(2, 4)})
	}},
	{op: "Scan", build: func(m *opModel) {
		b := onnxio.NewBuilder(m.opset)
		s := b.Input("s", onnxio.TypeFloat, []int64{3})
		xt := b.Input("xt", onnxio.TypeFloat, []int64{3})
		// The body only moves data, so that the case measures Scan itself.
		next := b.Op("Identity", []string{xt})
		y := b.Op("Concat", []string{s, xt}, onnxio.AttrInt("axis", 0))
		b.Output(next, onnxio.TypeFloat, []int64{3})
		b.Output(y, onnxio.TypeFloat, []int64{6})
		g := b.Graph()
		for _, n := range g.Node {
			n.Name = strPtr("scan_" + n.GetName())
		}
		m.outs([]onnxio.DataType{onnxio.TypeFloat, onnxio.TypeFloat}, "Scan", []string{m.x(3), m.x(4, 3)},
			onnxio.AttrInt("num_scan_inputs", 1), onnxio.AttrGraph("body", g))
	}},
	{op: "Selu", build: unary("Selu", 0, 0)},
	{op: "Shape", build: func(m *opModel) { m.opT(onnxio.TypeInt64, "Shape", []string{m.x(2, 3, 4)}) }},
	{op: "Shrink", build: unary("Shrink", 0, 0, onnxio.AttrFloat("lambd", 0.5))},
	{op: "Sigmoid", build: unary("Sigmoid", 0, 0)},
	{op: "Sign", build: unary("Sign", 0, 0)},
	{op: "Sin", build: unary("Sin", 0, 0)},
	{op: "Sinh", build: unary("Sinh", 0, 0)},
	{op: "Size", build: func(m *opModel) { m.opT(onnxio.TypeInt64, "Size", []string{m.x(2, 3, 4)}) }},
	{op: "Slice", build: func(m *opModel) {
		m.op("Slice", []string{m.x(4, 6), m.ints(1, 0), m.ints(3, 5), m.ints(0, 1), m.ints(1, 2)})
	}},
	{op: "Softmax", build: unary("Softmax", 0, 0)},
	{op: "Softplus", build: unary("Softplus", 0, 0)},
	{op: "Softsign", build: unary("Softsign", 0, 0)},
	{op: "SpaceToDepth", build: func(m *opModel) { m.op("SpaceToDepth", []string{m.x(1, 2, 4, 6)}, onnxio.AttrInt("blocksize", 2)) }},
	{op: "Split", build: func(m *opModel) {
		m.outs([]onnxio.DataType{onnxio.TypeFloat, onnxio.TypeFloat}, "Split", []string{m.x(2, 6), m.ints(2, 4)}, onnxio.AttrInt("axis", 1))
	}},
	{op: "Sqrt", build: unary("Sqrt", 0.1, 4)},
	{op: "Squeeze", build: func(m *opModel) { m.op("Squeeze", []string{m.x(2, 1, 4), m.ints(1)}) }},
	{op: "Sub", build: binop("Sub", 0, 0)},
	{op: "Sum", build: binop("Sum", 0, 0)},
	{op: "Tan", build: unary("Tan", -1, 1)},
	{op: "Tanh", build: unary("Tanh", 0, 0)},
	{op: "ThresholdedRelu", build: unary("ThresholdedRelu", 0, 0)},
	{op: "Tile", build: func(m *opModel) { m.op("Tile", []string{m.x(2, 3), m.ints(2, 2)}) }},
	{op: "TopK", build: func(m *opModel) {
		m.outs([]onnxio.DataType{onnxio.TypeFloat, onnxio.TypeInt64}, "TopK", []string{m.x(3, 6), m.ints(2)})
	}},
	{op: "Transpose", build: func(m *opModel) { m.op("Transpose", []string{m.x(2, 3, 4)}, onnxio.AttrInts("perm", 2, 0, 1)) }},
	{op: "Trilu", min: 14, build: func(m *opModel) { m.op("Trilu", []string{m.x(2, 4, 4)}) }},
	{op: "Unsqueeze", build: func(m *opModel) { m.op("Unsqueeze", []string{m.x(2, 4), m.ints(1)}) }},
	{op: "Upsample", opsets: []int64{9}, build: func(m *opModel) {
		m.op("Upsample", []string{m.x(1, 2, 3, 3), m.f(1, 1, 2, 2)})
	}},
	{op: "Where", build: func(m *opModel) {
		c := m.xb([]int64{3, 4}, []bool{true, false, true, true, false, false, true, false, true, true, false, true})
		m.op("Where", []string{c, m.x(3, 4), m.x(3, 4)})
	}},
}

func strPtr(s string) *string { return &s }

// buildOpModel builds case c at opset.
func buildOpModel(c opCase, opset int64) (*onnxio.Model, map[string]*onnxio.Tensor, error) {
	m := newOpModel(opset, uint64(len(c.op))*1000+uint64(opset))
	c.build(m)
	model, err := m.b.Model()
	if err != nil {
		return nil, nil, err
	}
	if model.Opset("") < 13 && model.Proto.GetIrVersion() > 7 {
		model.Proto.IrVersion = int64Ptr(7)
	}
	return model, m.feeds, nil
}

func int64Ptr(v int64) *int64 { return &v }

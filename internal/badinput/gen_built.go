package badinput

import (
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// small is a model built with onnxio.Builder on the MNIST fixture's input [N, 1, 28, 28]:
// Conv(1 -> 4, 3x3) -> BatchNormalization -> Relu -> GlobalAveragePool -> Flatten ->
// "logits" [N, 4]. Its parts are exposed so that cases can break them.
type small struct {
	b              *onnxio.Builder
	rng            *rand.Rand
	conv, bn, relu *onnxpb.NodeProto
	weight, bias   string
	scale, shift   string
	mean, variance string
	convOut, bnOut string
	channels       int64
}

func (s *small) floats(n int64, mean, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + std*s.rng.NormFloat64())
	}
	return v
}

// newSmall builds the model's first layers; finish adds the rest. edit may change the
// parts in between.
func newSmall() *small {
	s := &small{b: onnxio.NewBuilder(13), rng: rand.New(rand.NewPCG(5, 5)), channels: 4}
	b := s.b
	x := b.Input("input", onnxio.TypeFloat, []int64{-1, 1, 28, 28}, "batch")
	c := s.channels
	s.weight = b.Initializer("conv.weight", onnxio.NewTensor([]int64{c, 1, 3, 3}, s.floats(c*9, 0, 0.5)))
	s.bias = b.Initializer("conv.bias", onnxio.NewTensor([]int64{c}, s.floats(c, 0, 0.1)))
	s.convOut = b.Op("Conv", []string{x, s.weight, s.bias}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1))
	s.conv = b.Graph().Node[len(b.Graph().Node)-1]
	s.scale = b.Initializer("bn.scale", onnxio.NewTensor([]int64{c}, s.floats(c, 1, 0.2)))
	s.shift = b.Initializer("bn.bias", onnxio.NewTensor([]int64{c}, s.floats(c, 0, 0.2)))
	s.mean = b.Initializer("bn.mean", onnxio.NewTensor([]int64{c}, s.floats(c, 0, 0.3)))
	v := s.floats(c, 1, 0.2)
	for i := range v {
		v[i] = float32(math.Abs(float64(v[i]))) + 0.1
	}
	s.variance = b.Initializer("bn.var", onnxio.NewTensor([]int64{c}, v))
	s.bnOut = b.Op("BatchNormalization", []string{s.convOut, s.scale, s.shift, s.mean, s.variance}, onnxio.AttrFloat("epsilon", 1e-5))
	s.bn = b.Graph().Node[len(b.Graph().Node)-1]
	return s
}

// finish adds Relu -> GlobalAveragePool -> Flatten -> logits and returns the model.
func (s *small) finish(from string) *onnxpb.ModelProto {
	b := s.b
	y := b.Op("Relu", []string{from})
	s.relu = b.Graph().Node[len(b.Graph().Node)-1]
	y = b.Op("GlobalAveragePool", []string{y})
	b.Node("Flatten", []string{y}, 1)
	b.Graph().Node[len(b.Graph().Node)-1].Output[0] = "logits"
	b.Output("logits", onnxio.TypeFloat, []int64{-1, s.channels}, "batch")
	m, err := b.Model()
	if err != nil {
		panic(err)
	}
	return m.Proto
}

func (s *small) tensor(name string) *onnxpb.TensorProto {
	for _, t := range s.b.Graph().Initializer {
		if t.GetName() == name {
			return t
		}
	}
	panic("badinput: no initializer " + name)
}

// builtCases are small models made with onnxio.Builder around the graph patterns the
// graph passes rewrite: BatchNormalization folding, constants, shared weights, functions,
// subgraphs.
func (g *gen) builtCases() {
	labels := onnxio.NewTensor([]int64{4}, []int64{0, 1, 2, 3})
	add := func(name string, must bool, mentions []string, build func() *onnxpb.ModelProto) {
		g.add(&Case{Name: "built/" + name, Kind: KindBuilt, Fixture: "mnist", MustFail: must, Mentions: mentions,
			edit: func(w *Workspace) error {
				w.Model = build()
				w.Labels = labels
				return nil
			}})
	}
	std := func(edit func(s *small)) func() *onnxpb.ModelProto {
		return func() *onnxpb.ModelProto {
			s := newSmall()
			if edit != nil {
				edit(s)
			}
			return s.finish(s.bnOut)
		}
	}
	add("ok", false, nil, std(nil))
	bnNames := []string{"BatchNormalization", "bn.scale", "bn.bias", "bn.mean", "bn.var", "logits"}
	// BatchNormalization parameters shorter (or longer) than the channels.
	for _, p := range []struct{ how, name string }{{"scale", "bn.scale"}, {"bias", "bn.bias"}, {"mean", "bn.mean"}, {"var", "bn.var"}} {
		add("bn-short-"+p.how, true, bnNames, std(func(s *small) {
			t := s.tensor(p.name)
			t.Dims = []int64{2}
			t.RawData = t.RawData[:8]
		}))
		add("bn-long-"+p.how, true, bnNames, std(func(s *small) {
			t := s.tensor(p.name)
			t.Dims = []int64{8}
			t.RawData = append(t.RawData, t.RawData...)
		}))
		add("bn-2d-"+p.how, true, bnNames, std(func(s *small) { s.tensor(p.name).Dims = []int64{2, 2} }))
		add("bn-scalar-"+p.how, true, bnNames, std(func(s *small) {
			t := s.tensor(p.name)
			t.Dims = nil
			t.RawData = t.RawData[:4]
		}))
	}
	add("bn-one-param", true, bnNames, std(func(s *small) { s.bn.Input = s.bn.Input[:2] }))
	add("bn-negative-variance", false, bnNames, std(func(s *small) {
		t := s.tensor("bn.var")
		t.RawData = float32Bytes([]float32{-1, 0.5, -0.2, 1})
	}))
	add("bn-zero-variance-zero-epsilon", false, bnNames, std(func(s *small) {
		s.tensor("bn.var").RawData = float32Bytes([]float32{0, 0, 0, 0})
		onnxio.SetAttr(s.bn, onnxio.AttrFloat("epsilon", 0))
	}))
	add("bn-negative-epsilon", false, bnNames, std(func(s *small) { onnxio.SetAttr(s.bn, onnxio.AttrFloat("epsilon", -10)) }))
	add("bn-training-mode", false, bnNames, std(func(s *small) {
		onnxio.SetAttr(s.bn, onnxio.AttrInt("training_mode", 1))
		s.bn.Output = append(s.bn.Output, "bn.running_mean", "bn.running_var")
	}))
	add("bn-params-int64", true, bnNames, std(func(s *small) {
		t := s.tensor("bn.scale")
		t.DataType = proto.Int32(int32(onnxio.TypeInt64))
		t.RawData = make([]byte, 8*s.channels)
	}))
	// The Conv's bias is not a constant: it is computed from the data (the mean of the
	// input, broadcast), so BatchNormalization folding cannot bake it into a new bias.
	add("conv-bias-from-data-then-bn", false, bnNames, std(func(s *small) {
		b := s.b
		m := b.Op("ReduceMean", []string{"input"}, onnxio.AttrInt("keepdims", 0))
		shape := b.Initializer("bias.shape", onnxio.NewTensor([]int64{1}, []int64{1}))
		one := b.Op("Reshape", []string{m, shape})
		rep := b.Initializer("bias.repeats", onnxio.NewTensor([]int64{1}, []int64{s.channels}))
		bias := b.Op("Tile", []string{one, rep})
		// the bias must come before the Conv in the node list
		nodes := b.Graph().Node
		k := len(nodes)
		moved := append([]*onnxpb.NodeProto(nil), nodes[k-3:]...)
		rest := append([]*onnxpb.NodeProto(nil), nodes[:k-3]...)
		b.Graph().Node = append(moved, rest...)
		s.conv.Input[2] = bias
	}))
	// The bias is a graph input with a default (an initializer of the same name).
	add("conv-bias-overridable-then-bn", false, bnNames, std(func(s *small) {
		t := s.tensor("conv.bias")
		s.b.Graph().Input = append(s.b.Graph().Input, onnxio.ValueInfo(t.GetName(), onnxio.TypeFloat, t.Dims))
	}))
	// The Conv's weight is a graph input with a default.
	add("conv-weight-overridable-then-bn", false, bnNames, std(func(s *small) {
		t := s.tensor("conv.weight")
		s.b.Graph().Input = append(s.b.Graph().Input, onnxio.ValueInfo(t.GetName(), onnxio.TypeFloat, t.Dims))
	}))
	// The Conv's weight is computed (a Mul of two initializers): constant folding first.
	add("conv-weight-computed-then-bn", false, bnNames, std(func(s *small) {
		b := s.b
		two := b.Initializer("two", onnxio.NewTensor([]int64{1}, []float32{2}))
		w := b.Op("Mul", []string{s.weight, two})
		nodes := b.Graph().Node
		k := len(nodes)
		b.Graph().Node = append([]*onnxpb.NodeProto{nodes[k-1]}, nodes[:k-1]...)
		s.conv.Input[1] = w
	}))
	// Two Convs share the weight and bias; only one is followed by BatchNormalization:
	// folding must not change the other's.
	g.add(&Case{Name: "built/shared-weight-one-bn", Kind: KindBuilt, Fixture: "mnist", Mentions: bnNames,
		edit: func(w *Workspace) error {
			s := newSmall()
			other := s.b.Op("Conv", []string{"input", s.weight, s.bias}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1))
			sum := s.b.Op("Add", []string{s.bnOut, other})
			w.Model = s.finish(sum)
			w.Labels = labels
			return nil
		}})
	// Two BatchNormalizations share their parameters after two Convs.
	g.add(&Case{Name: "built/shared-bn-params", Kind: KindBuilt, Fixture: "mnist", Mentions: bnNames,
		edit: func(w *Workspace) error {
			s := newSmall()
			b := s.b
			w2 := b.Initializer("conv2.weight", onnxio.NewTensor([]int64{s.channels, 1, 3, 3}, s.floats(s.channels*9, 0, 0.5)))
			c2 := b.Op("Conv", []string{"input", w2}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1))
			bn2 := b.Op("BatchNormalization", []string{c2, s.scale, s.shift, s.mean, s.variance})
			w.Model = s.finish(b.Op("Add", []string{s.bnOut, bn2}))
			w.Labels = labels
			return nil
		}})
	// The Conv's output is also a graph output: folding changes what it shows.
	g.add(&Case{Name: "built/conv-output-also-graph-output", Kind: KindBuilt, Fixture: "mnist", Mentions: bnNames,
		edit: func(w *Workspace) error {
			s := newSmall()
			w.Model = s.finish(s.bnOut)
			w.Model.Graph.Output = append(w.Model.Graph.Output, onnxio.ValueInfo(s.convOut, onnxio.TypeFloat, []int64{-1, s.channels, 28, 28}, "batch"))
			w.Labels = labels
			return nil
		}})
	// The Conv's output also feeds another node besides the BatchNormalization.
	g.add(&Case{Name: "built/conv-output-two-consumers", Kind: KindBuilt, Fixture: "mnist", Mentions: bnNames,
		edit: func(w *Workspace) error {
			s := newSmall()
			w.Model = s.finish(s.b.Op("Add", []string{s.bnOut, s.convOut}))
			w.Labels = labels
			return nil
		}})
	// A BatchNormalization with no Conv before it (on the input).
	g.add(&Case{Name: "built/bn-on-input", Kind: KindBuilt, Fixture: "mnist", Mentions: bnNames,
		edit: func(w *Workspace) error {
			s := newSmall()
			b := s.b
			one := func(name string, v float32) string {
				return b.Initializer(name, onnxio.NewTensor([]int64{1}, []float32{v}))
			}
			in := b.Op("BatchNormalization", []string{"input", one("s1", 2), one("b1", 0.5), one("m1", 0.1), one("v1", 0.9)})
			s.conv.Input[0] = in
			nodes := b.Graph().Node
			b.Graph().Node = append([]*onnxpb.NodeProto{nodes[len(nodes)-1]}, nodes[:len(nodes)-1]...)
			w.Model = s.finish(s.bnOut)
			w.Labels = labels
			return nil
		}})

	// Constants, added to the BatchNormalization's output.
	constant := func(attrs ...*onnxpb.AttributeProto) func() *onnxpb.ModelProto {
		return func() *onnxpb.ModelProto {
			s := newSmall()
			c := &onnxpb.NodeProto{Name: proto.String("c"), OpType: proto.String("Constant"), Output: []string{"c_out"}, Attribute: attrs}
			s.b.Graph().Node = append([]*onnxpb.NodeProto{c}, s.b.Graph().Node...)
			return s.finish(s.b.Op("Add", []string{s.bnOut, "c_out"}))
		}
	}
	short, _ := onnxio.EncodeTensor("", onnxio.NewTensor([]int64{4}, []float32{1, 2, 3, 4}))
	short.RawData = short.RawData[:6]
	add("constant-ok", false, nil, constant(onnxio.AttrFloat("value_float", 0.5)))
	add("constant-no-value", true, []string{"Constant", "c_out"}, constant())
	add("constant-short-value", true, []string{"Constant", "c_out"}, constant(onnxio.AttrTensor("value", short)))
	add("constant-two-values", true, []string{"Constant", "c_out"}, constant(onnxio.AttrFloat("value_float", 1), onnxio.AttrFloats("value_floats", 1, 2)))
	add("constant-value-nan", false, []string{"Constant", "c_out", "logits"}, constant(onnxio.AttrFloat("value_float", float32(math.NaN()))))
	// The BatchNormalization's scale comes from a Constant node instead of an initializer.
	add("bn-scale-from-constant", false, bnNames, std(func(s *small) {
		t := s.tensor("bn.scale")
		c := &onnxpb.NodeProto{Name: proto.String("scale_const"), OpType: proto.String("Constant"), Output: []string{"scale_c"},
			Attribute: []*onnxpb.AttributeProto{onnxio.AttrTensor("value", proto.Clone(t).(*onnxpb.TensorProto))}}
		s.b.Graph().Node = append([]*onnxpb.NodeProto{c}, s.b.Graph().Node...)
		s.bn.Input[1] = "scale_c"
	}))

	// Dangling parts: an unused initializer and an unused node.
	add("unused-initializer", false, nil, std(func(s *small) {
		s.b.Initializer("unused", onnxio.NewTensor([]int64{3}, []float32{1, 2, 3}))
	}))
	add("unused-node", false, nil, std(func(s *small) { s.b.Op("Relu", []string{s.convOut}) }))
	add("graph-output-is-input", false, nil, func() *onnxpb.ModelProto {
		s := newSmall()
		m := s.finish(s.bnOut)
		m.Graph.Output = append(m.Graph.Output, onnxio.ValueInfo("input", onnxio.TypeFloat, []int64{-1, 1, 28, 28}, "batch"))
		return m
	})
	add("graph-output-is-initializer", false, nil, func() *onnxpb.ModelProto {
		s := newSmall()
		m := s.finish(s.bnOut)
		m.Graph.Output = append(m.Graph.Output, onnxio.ValueInfo("bn.scale", onnxio.TypeFloat, []int64{s.channels}))
		return m
	})
	// A second graph input that no dataset feeds.
	add("second-input-unfed", true, []string{"second"}, func() *onnxpb.ModelProto {
		s := newSmall()
		sec := s.b.Input("second", onnxio.TypeFloat, []int64{-1, 4, 28, 28}, "batch")
		return s.finish(s.b.Op("Add", []string{s.bnOut, sec}))
	})

	// Subgraphs: an If whose branch reads a value that does not exist.
	add("if-branch-undefined-value", true, []string{"nowhere"}, std(func(s *small) {
		branch := func(in string) *onnxpb.GraphProto {
			return &onnxpb.GraphProto{Name: proto.String("branch"),
				Node:   []*onnxpb.NodeProto{{Name: proto.String("id_" + in), OpType: proto.String("Identity"), Input: []string{in}, Output: []string{"branch_out_" + in}}},
				Output: []*onnxpb.ValueInfoProto{onnxio.ValueInfo("branch_out_"+in, onnxio.TypeFloat, nil)}}
		}
		cond := s.b.Initializer("cond", onnxio.NewTensor([]int64{}, []bool{true}))
		s.b.Graph().Node = append(s.b.Graph().Node, &onnxpb.NodeProto{Name: proto.String("if"), OpType: proto.String("If"), Input: []string{cond}, Output: []string{"if_out"},
			Attribute: []*onnxpb.AttributeProto{onnxio.AttrGraph("then_branch", branch("nowhere")), onnxio.AttrGraph("else_branch", branch(s.convOut))}})
	}))

	// Local functions: one that calls itself (inlining must not loop), one that is
	// called but not defined, one whose body is broken.
	fn := func(name string, body []*onnxpb.NodeProto) *onnxpb.FunctionProto {
		return &onnxpb.FunctionProto{Name: proto.String(name), Domain: proto.String("local"), Input: []string{"x"}, Output: []string{"y"},
			Node: body, OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}, {Domain: proto.String("local"), Version: proto.Int64(1)}}}
	}
	callRelu := func(edit func(m *onnxpb.ModelProto, call *onnxpb.NodeProto)) func() *onnxpb.ModelProto {
		return func() *onnxpb.ModelProto {
			s := newSmall()
			m := s.finish(s.bnOut)
			s.relu.OpType, s.relu.Domain = proto.String("MyRelu"), proto.String("local")
			m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("local"), Version: proto.Int64(1)})
			edit(m, s.relu)
			return m
		}
	}
	add("function-ok", false, nil, callRelu(func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
		m.Functions = append(m.Functions, fn("MyRelu", []*onnxpb.NodeProto{{OpType: proto.String("Relu"), Input: []string{"x"}, Output: []string{"y"}}}))
	}))
	add("function-recursive", true, []string{"MyRelu"}, callRelu(func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
		m.Functions = append(m.Functions, fn("MyRelu", []*onnxpb.NodeProto{{OpType: proto.String("MyRelu"), Domain: proto.String("local"), Input: []string{"x"}, Output: []string{"y"}}}))
	}))
	add("function-mutually-recursive", true, []string{"MyRelu", "Other"}, callRelu(func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
		m.Functions = append(m.Functions,
			fn("MyRelu", []*onnxpb.NodeProto{{OpType: proto.String("Other"), Domain: proto.String("local"), Input: []string{"x"}, Output: []string{"y"}}}),
			fn("Other", []*onnxpb.NodeProto{{OpType: proto.String("MyRelu"), Domain: proto.String("local"), Input: []string{"x"}, Output: []string{"y"}}}))
	}))
	add("function-missing", true, []string{"MyRelu"}, callRelu(func(*onnxpb.ModelProto, *onnxpb.NodeProto) {}))
	add("function-body-undefined-value", true, []string{"MyRelu", "nowhere"}, callRelu(func(m *onnxpb.ModelProto, _ *onnxpb.NodeProto) {
		m.Functions = append(m.Functions, fn("MyRelu", []*onnxpb.NodeProto{{OpType: proto.String("Relu"), Input: []string{"nowhere"}, Output: []string{"y"}}}))
	}))
	add("function-wrong-arity", true, []string{"MyRelu"}, callRelu(func(m *onnxpb.ModelProto, call *onnxpb.NodeProto) {
		m.Functions = append(m.Functions, fn("MyRelu", []*onnxpb.NodeProto{{OpType: proto.String("Relu"), Input: []string{"x"}, Output: []string{"y"}}}))
		call.Input = append(call.Input, call.Input[0])
	}))

	// Shapes that cannot meet: a Conv weight of 2 input channels on a 1-channel input; a
	// Reshape to two unknown dimensions.
	add("conv-channels-mismatch", true, []string{"Conv", "conv.weight"}, std(func(s *small) {
		t := s.tensor("conv.weight")
		t.Dims = []int64{2, 2, 3, 3}
	}))
	add("reshape-two-minus-ones", true, []string{"Reshape", "shape"}, func() *onnxpb.ModelProto {
		s := newSmall()
		shape := s.b.Initializer("shape", onnxio.NewTensor([]int64{2}, []int64{-1, -1}))
		r := s.b.Op("Reshape", []string{s.bnOut, shape})
		return s.finish(r)
	})
	add("zero-channels", true, []string{"Conv", "conv.weight", "conv.bias", "bn.scale", "logits"}, std(func(s *small) {
		for _, n := range []string{"conv.weight", "conv.bias", "bn.scale", "bn.bias", "bn.mean", "bn.var"} {
			t := s.tensor(n)
			t.Dims[0] = 0
			t.RawData = nil
		}
	}))
}

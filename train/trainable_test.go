package train

import (
	"math"
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func sortedParams(g *Graph) []string {
	out := paramNames(g)
	sort.Strings(out)
	return out
}

// TestSharedWeightIdentity: a weight that two layers read through Identity nodes (as
// PyTorch exports tied weights) compiles, gets its role (Reinit draws it like a
// Linear weight, no nil dereference), and receives the gradients of both layers.
func TestSharedWeightIdentity(t *testing.T) {
	g := newGB(13, 2)
	x := g.in("x", normal, 3, 4)
	w := g.param("w", normal, 4, 4)
	w1 := g.b.Op("Identity", []string{w})
	w2 := g.b.Op("Identity", []string{w1})
	h := g.b.Op("MatMul", []string{x, w1})
	g.out(g.b.Op("Gemm", []string{h, w2, g.param("c", normal, 4)}))
	m := g.model(t)
	gr, err := Compile(m, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedParams(gr); !slices.Equal(got, []string{"c", "w"}) {
		t.Fatalf("params %v, want [c w]", got)
	}
	p := gr.Param("w")
	if p.role != roleWeight || p.fanIn != 4 {
		t.Fatalf("w: role %d fan_in %d, want a weight with fan_in 4", p.role, p.fanIn)
	}
	gr.Reinit(1)
	for _, v := range p.Value.Data {
		if math.Abs(float64(v)) > 0.5 {
			t.Fatalf("w after Reinit has %v, outside the Kaiming bound 1/sqrt(4)", v)
		}
	}
	if c := gr.Param("c"); slices.ContainsFunc(c.Value.Data, func(v float32) bool { return v != 0 }) {
		t.Fatalf("bias after Reinit: %v, want zeros", c.Value.Data)
	}
	if r := gradCheckDefault(t, m, g.inputs); r.worst > 1e-2 {
		t.Fatalf("gradient of the shared weight: worst %.3g at %s", r.worst, r.where)
	}
}

// gradCheckDefault is gradCheck with the default trainable rule.
func gradCheckDefault(t *testing.T, m *onnxio.Model, inputs map[string]*Tensor) gradResult {
	t.Helper()
	return gradCheckWith(t, m, CompileOptions{InputGrads: true, Seed: 1}, inputs, false, 1e-2, 20)
}

// constantsAsInitializers returns m with every Constant node replaced by an
// initializer of the same name, as exporters that fold constants (or
// keep_initializers_as_inputs) write them.
func constantsAsInitializers(t testing.TB, m *onnxio.Model) *onnxio.Model {
	t.Helper()
	mp := proto.Clone(m.Proto).(*onnxpb.ModelProto)
	gp := mp.Graph
	kept := gp.Node[:0]
	for _, n := range gp.Node {
		if n.GetOpType() != "Constant" {
			kept = append(kept, n)
			continue
		}
		a := onnxio.Attr(n, "value")
		if a == nil || a.GetT() == nil {
			t.Fatalf("Constant %s has no value tensor", n.GetName())
		}
		tp := proto.Clone(a.GetT()).(*onnxpb.TensorProto)
		tp.Name = proto.String(n.GetOutput()[0])
		gp.Initializer = append(gp.Initializer, tp)
	}
	gp.Node = kept
	return &onnxio.Model{Proto: mp}
}

// TestConstantsNotTrained: in a decomposed LayerNorm and GELU whose constants are
// initializers (Pow's exponent 2, epsilon, √2, 1, ½, an attention-style scale), only
// the Linear weight and bias and the normalization's scale and shift are parameters;
// the constants keep their values through training; Trainable overrides the rule.
func TestConstantsNotTrained(t *testing.T) {
	g := newGB(13, 4)
	c := func(name string, v float32) string { return g.b.Initializer(name, onnxioScalar(v)) }
	x := g.in("x", normal, 2, 3, 8)
	h := g.b.Op("Add", []string{g.b.Op("MatMul", []string{x, g.param("w", small, 8, 8)}), g.param("b", normal, 8)})
	mean := g.b.Op("ReduceMean", []string{h}, aints("axes", -1))
	d := g.b.Op("Sub", []string{h, mean})
	v := g.b.Op("ReduceMean", []string{g.b.Op("Pow", []string{d, c("two", 2)})}, aints("axes", -1))
	n := g.b.Op("Div", []string{d, g.b.Op("Sqrt", []string{g.b.Op("Add", []string{v, c("eps", 1e-5)})})})
	n = g.b.Op("Add", []string{g.b.Op("Mul", []string{n, g.param("ln.weight", positive, 8)}), g.param("ln.bias", normal, 8)})
	erf := g.b.Op("Erf", []string{g.b.Op("Div", []string{n, c("sqrt2", 1.4142135)})})
	gelu := g.b.Op("Mul", []string{g.b.Op("Mul", []string{n, g.b.Op("Add", []string{erf, c("one", 1)})}), c("half", 0.5)})
	g.out(g.b.Op("Div", []string{gelu, c("scale", 2.828427)}))
	m := g.model(t)
	gr, err := Compile(m, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedParams(gr); !slices.Equal(got, []string{"b", "ln.bias", "ln.weight", "w"}) {
		t.Fatalf("params %v, want [b ln.bias ln.weight w]", got)
	}
	opt, _ := NewOptimizer(gr.Params(), OptimizerConfig{Name: "adam", LR: 0.1})
	for range 3 {
		tape, err := gr.Forward(g.inputs, true)
		if err != nil {
			t.Fatal(err)
		}
		_, grad := MSE(tape.Output(gr.Outputs()[0]), Zeros(2, 3, 8))
		opt.ZeroGrad()
		if err := tape.Backward(map[string]*Tensor{gr.Outputs()[0]: grad}); err != nil {
			t.Fatal(err)
		}
		opt.Step()
	}
	exp, err := gr.Export()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float32{"two": 2, "eps": 1e-5, "sqrt2": 1.4142135, "one": 1, "half": 0.5, "scale": 2.828427}
	for _, tp := range exp.Proto.Graph.Initializer {
		if w, ok := want[tp.GetName()]; ok {
			ot, _ := onnxio.DecodeTensor(tp)
			if got := ot.Data.([]float32)[0]; got != w {
				t.Errorf("constant %s is %v after training, want %v", tp.GetName(), got, w)
			}
		}
	}
	if r := gradCheckDefault(t, m, g.inputs); r.worst > 2e-2 {
		t.Errorf("gradients: worst %.3g at %s", r.worst, r.where)
	}
	all, err := Compile(m, CompileOptions{Trainable: func(n string) bool { return n != "eps" }})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(all.Params()); got != 9 {
		t.Errorf("Trainable all but eps: %d params %v, want 9", got, sortedParams(all))
	}
}

// TestTransformerConstantInitializers: the tiny transformer with its Constant nodes
// turned into initializers (and its classifier weight read through an Identity) has
// exactly the weights of the PyTorch module as parameters, and trains with Adam at lr
// 1e-3 from its own weights: the loss stays finite and falls.
func TestTransformerConstantInitializers(t *testing.T) {
	orig := loadFixture(t, "tiny_transformer")
	m := constantsAsInitializers(t, orig)
	// fc.weight read through Identity, as PyTorch writes a shared weight
	for _, n := range m.Proto.Graph.Node {
		if n.GetOpType() == "Gemm" && n.Input[1] == "fc.weight" {
			n.Input[1] = "fc.weight.shared"
		}
	}
	m.Proto.Graph.Node = append([]*onnxpb.NodeProto{{OpType: proto.String("Identity"), Name: proto.String("share"),
		Input: []string{"fc.weight"}, Output: []string{"fc.weight.shared"}}}, m.Proto.Graph.Node...)
	ref, err := Compile(orig, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Compile(m, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedParams(g), sortedParams(ref); !slices.Equal(got, want) {
		t.Fatalf("params %v, want the module's weights %v", got, want)
	}
	if len(sortedParams(ref)) != 26 {
		t.Fatalf("%d params in the fixture, want 26", len(sortedParams(ref)))
	}
	// a different network of the same shape is the target
	tgt, _ := Compile(orig, CompileOptions{})
	tgt.Reinit(5)
	x := fixtureInput(1, 16, []int{16, 32})
	tt, err := tgt.Forward(x, false)
	if err != nil {
		t.Fatal(err)
	}
	target := tt.Output("logits")
	opt, _ := NewOptimizer(g.Params(), OptimizerConfig{Name: "adam", LR: 1e-3})
	var losses []float64
	for range 20 {
		tape, err := g.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		l, grad := MSE(tape.Output("logits"), target)
		losses = append(losses, l)
		opt.ZeroGrad()
		if err := tape.Backward(map[string]*Tensor{"logits": grad}); err != nil {
			t.Fatal(err)
		}
		opt.Step()
		tape.Release()
	}
	for _, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("loss not finite: %v", losses)
		}
	}
	if !(losses[19] < 0.5*losses[0]) {
		t.Fatalf("loss %v → %v: did not fall by half in 20 steps", losses[0], losses[19])
	}
	t.Logf("loss %.4g → %.4g", losses[0], losses[19])
	g.Reinit(3) // random init through the shared weight: no panic
}

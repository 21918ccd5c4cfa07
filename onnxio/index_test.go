package onnxio

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// sharedWeightsGraph is a PyTorch-style graph: the weight W is read directly by mm1 and,
// through a chain of two Identity nodes, by mm2 and mm3 (tied weights); Constant nodes
// hold a tensor, a value_float and a value_ints; B is an initializer that is also a graph
// input (a caller may override it).
func sharedWeightsGraph(t testing.TB) *onnxpb.GraphProto {
	t.Helper()
	return &onnxpb.GraphProto{
		Name: proto.String("shared"),
		Input: []*onnxpb.ValueInfoProto{
			ValueInfo("x", TypeFloat, []int64{-1, 4}, "batch"),
			ValueInfo("B", TypeFloat, []int64{4}),
		},
		Initializer: []*onnxpb.TensorProto{floatInit(t, "W", 4, 4), floatInit(t, "B", 4)},
		ValueInfo:   []*onnxpb.ValueInfoProto{ValueInfo("h1", TypeFloat16, []int64{-1, 4}, "batch")},
		Node: []*onnxpb.NodeProto{
			node("id1", "Identity", []string{"W"}, []string{"W_tied"}),
			node("id2", "Identity", []string{"W_tied"}, []string{"W_tied2"}),
			node("c_tensor", "Constant", nil, []string{"C"}, AttrTensor("value", floatInit(t, "C_value", 4))),
			node("c_float", "Constant", nil, []string{"CF"}, AttrFloat("value_float", 2.5)),
			node("c_ints", "Constant", nil, []string{"CI"}, AttrInts("value_ints", 1, -1)),
			node("c_str", "Constant", nil, []string{"CS"}, &onnxpb.AttributeProto{Name: proto.String("value_string"), S: []byte("s")}),
			node("mm1", "MatMul", []string{"x", "W"}, []string{"h1"}),
			node("mm2", "MatMul", []string{"h1", "W_tied"}, []string{"h2"}),
			node("mm3", "MatMul", []string{"h2", "W_tied2"}, []string{"h3"}),
			node("add", "Add", []string{"h3", "B"}, []string{"h4"}),
			node("id_act", "Identity", []string{"h4"}, []string{"h5"}),
			node("ms_const", "Constant", nil, []string{"MS"}, AttrTensor("value", floatInit(t, "MS", 1))),
			{Name: proto.String("ms_id"), OpType: proto.String("Identity"), Domain: proto.String("com.example"), Input: []string{"MS"}, Output: []string{"MS2"}},
			node("out", "Sum", []string{"h5", "C", "CF", "CI", "", "MS2"}, []string{"y"}),
		},
		Output: []*onnxpb.ValueInfoProto{ValueInfo("y", TypeFloat, []int64{-1, 4}, "batch")},
	}
}

func TestIndex(t *testing.T) {
	g := sharedWeightsGraph(t)
	ix := NewIndex(g)
	if p := ix.Producer["h2"]; p == nil || p.GetName() != "mm2" {
		t.Errorf("Producer[h2] = %v", p)
	}
	if p := ix.Producer["W"]; p != nil {
		t.Errorf("Producer[W] = %v, want none (initializer)", p)
	}
	for _, test := range []struct {
		value string
		want  []string
	}{
		{"W", []string{"id1", "mm1"}},
		{"W_tied", []string{"id2", "mm2"}},
		{"x", []string{"mm1"}},
		{"y", nil},
		{"", nil},
		{"h5", []string{"out"}},
	} {
		if got := nodeNames(ix.Consumers[test.value]); !reflect.DeepEqual(got, test.want) {
			t.Errorf("Consumers[%q] = %q, want %q", test.value, got, test.want)
		}
	}
	if len(ix.Initializers) != 2 || ix.Initializers["W"] == nil {
		t.Errorf("Initializers = %v", ix.Initializers)
	}
	if !ix.IsGraphOutput("y") || ix.IsGraphOutput("h5") {
		t.Errorf("IsGraphOutput wrong")
	}

	for _, test := range []struct {
		name      string
		wantOK    bool
		wantName  string // the TensorProto's name
		wantFloat []float32
	}{
		{name: "W", wantOK: true, wantName: "W"},
		{name: "W_tied", wantOK: true, wantName: "W"},
		{name: "W_tied2", wantOK: true, wantName: "W"},
		{name: "C", wantOK: true, wantName: "C_value", wantFloat: []float32{0.5, 1.5, 2.5, 3.5}},
		{name: "CF", wantOK: true, wantName: "CF", wantFloat: []float32{2.5}},
		{name: "CI", wantOK: true, wantName: "CI", wantFloat: []float32{1, -1}},
		{name: "CS", wantOK: false},  // string Constant
		{name: "B", wantOK: false},   // initializer that is also an input
		{name: "x", wantOK: false},   // graph input
		{name: "h1", wantOK: false},  // computed
		{name: "h5", wantOK: false},  // Identity of a computed value
		{name: "MS2", wantOK: false}, // Identity of another domain
		{name: "nope", wantOK: false},
	} {
		tp, ok := ix.ConstantTensor(test.name)
		if ok != test.wantOK || ix.IsConstant(test.name) != test.wantOK {
			t.Errorf("ConstantTensor(%q) ok = %v, want %v", test.name, ok, test.wantOK)
			continue
		}
		if !ok {
			continue
		}
		if tp.GetName() != test.wantName {
			t.Errorf("ConstantTensor(%q) is tensor %q, want %q", test.name, tp.GetName(), test.wantName)
		}
		if test.wantFloat != nil {
			got, err := TensorFloat32s(tp)
			if err != nil || !reflect.DeepEqual(got, test.wantFloat) {
				t.Errorf("ConstantTensor(%q) = %v, %v, want %v", test.name, got, err, test.wantFloat)
			}
		}
	}

	for _, test := range []struct {
		name   string
		want   DataType
		wantOK bool
	}{
		{"x", TypeFloat, true},
		{"h1", TypeFloat16, true}, // value_info
		{"W", TypeFloat, true},
		{"W_tied2", TypeFloat, true},
		{"CI", TypeInt64, true},
		{"h2", TypeUndefined, false},
	} {
		if got, ok := ix.ElemType(test.name); got != test.want || ok != test.wantOK {
			t.Errorf("ElemType(%q) = %v, %v, want %v, %v", test.name, got, ok, test.want, test.wantOK)
		}
	}
	for _, test := range []struct {
		name      string
		dims      []int64
		dimNames  []string
		wantFound bool
	}{
		{"x", []int64{-1, 4}, []string{"batch", ""}, true},
		{"W", []int64{4, 4}, []string{"", ""}, true},
		{"h2", nil, nil, false},
	} {
		dims, names, ok := ix.Shape(test.name)
		if ok != test.wantFound || !reflect.DeepEqual(dims, test.dims) || !reflect.DeepEqual(names, test.dimNames) {
			t.Errorf("Shape(%q) = %v %q %v, want %v %q %v", test.name, dims, names, ok, test.dims, test.dimNames, test.wantFound)
		}
	}
}

func TestConstantTensorMalformed(t *testing.T) {
	// An Identity cycle must not hang; an Identity with two inputs is not a pass-through.
	g := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{
		node("a", "Identity", []string{"b"}, []string{"a_out"}),
		node("b", "Identity", []string{"a_out"}, []string{"b"}),
		node("two", "Identity", []string{"a_out", "b"}, []string{"two_out"}),
	}}
	ix := NewIndex(g)
	for _, v := range []string{"a_out", "b", "two_out"} {
		if _, ok := ix.ConstantTensor(v); ok {
			t.Errorf("ConstantTensor(%q) of a malformed graph: ok", v)
		}
	}
	// ConstantNodeTensor must not panic on a Constant node without outputs.
	for _, a := range []*onnxpb.AttributeProto{AttrFloat("value_float", 1), AttrFloats("value_floats", 1, 2), AttrInt("value_int", 3), AttrInts("value_ints", 4)} {
		n := node("c", "Constant", nil, nil, a)
		tp, ok := ConstantNodeTensor(n)
		if !ok || tp == nil {
			t.Errorf("ConstantNodeTensor(%s, no outputs) = %v, %v", a.GetName(), tp, ok)
		}
	}
	if _, ok := ConstantNodeTensor(node("c", "Constant", nil, []string{"c"})); ok {
		t.Errorf("ConstantNodeTensor of a Constant without a value: ok")
	}
}

func TestValueShape(t *testing.T) {
	for _, test := range []struct {
		name  string
		vi    *onnxpb.ValueInfoProto
		dims  []int64
		names []string
		ok    bool
	}{
		{"scalar", ValueInfo("s", TypeFloat, []int64{}), nil, nil, true},
		{"no shape", ValueInfo("n", TypeFloat, nil), nil, nil, false},
		{"symbolic", ValueInfo("v", TypeFloat, []int64{-1, 3, -1}, "b", "", "seq"), []int64{-1, 3, -1}, []string{"b", "", "seq"}, true},
		{"default dim name", ValueInfo("v", TypeFloat, []int64{-1}), []int64{-1}, []string{"N"}, true},
		{"no type", &onnxpb.ValueInfoProto{Name: proto.String("u")}, nil, nil, false},
		{"unknown dim", &onnxpb.ValueInfoProto{Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{{}}},
		}}}}, []int64{-1}, []string{""}, true},
	} {
		dims, names, ok := ValueShape(test.vi)
		if ok != test.ok || !reflect.DeepEqual(dims, test.dims) || !reflect.DeepEqual(names, test.names) {
			t.Errorf("%s: ValueShape = %v %q %v, want %v %q %v", test.name, dims, names, ok, test.dims, test.names, test.ok)
		}
	}
}

// nestedGraph: a Loop whose body holds an If whose branch reads "outer" (from the main
// graph) and "body_in" (the Loop body's input), and a second branch that has its own
// initializer named "outer" (shadowing, which ONNX allows for initializers and subgraph
// inputs but not node outputs) and reads "w".
func nestedGraph(t testing.TB) *onnxpb.GraphProto {
	t.Helper()
	vi := func(n string) *onnxpb.ValueInfoProto { return ValueInfo(n, TypeFloat, nil) }
	branchA := &onnxpb.GraphProto{
		Name:   proto.String("branch_a"),
		Node:   []*onnxpb.NodeProto{node("a_add", "Add", []string{"outer", "body_in"}, []string{"a_out"})},
		Output: []*onnxpb.ValueInfoProto{vi("a_out")},
	}
	branchB := &onnxpb.GraphProto{
		Name:        proto.String("branch_b"),
		Initializer: []*onnxpb.TensorProto{floatInit(t, "outer", 1)}, // shadows the main graph's outer
		Node: []*onnxpb.NodeProto{
			node("b_mul", "Mul", []string{"outer", "w"}, []string{"b_out"}),
		},
		Output: []*onnxpb.ValueInfoProto{vi("b_out")},
	}
	body := &onnxpb.GraphProto{
		Name:  proto.String("body"),
		Input: []*onnxpb.ValueInfoProto{vi("iter"), vi("cond_in"), vi("body_in")},
		Node: []*onnxpb.NodeProto{
			node("body_if", "If", []string{"cond_in"}, []string{"if_out"}, AttrGraph("then_branch", branchA), AttrGraph("else_branch", branchB)),
		},
		// cond passes straight through from the outer scope.
		Output: []*onnxpb.ValueInfoProto{vi("cond"), vi("if_out")},
	}
	return &onnxpb.GraphProto{
		Name:        proto.String("main"),
		Input:       []*onnxpb.ValueInfoProto{vi("x"), ValueInfo("cond", TypeBool, []int64{})},
		Initializer: []*onnxpb.TensorProto{floatInit(t, "w", 1), mustEncode(t, "trip", NewTensor([]int64{}, []int64{3}))},
		Node: []*onnxpb.NodeProto{
			node("pre", "Relu", []string{"x"}, []string{"outer"}),
			node("loop", "Loop", []string{"trip", "cond", "x"}, []string{"loop_out"}, AttrGraph("body", body)),
			node("post", "Relu", []string{"loop_out"}, []string{"y"}),
		},
		Output: []*onnxpb.ValueInfoProto{vi("y")},
	}
}

func TestCapturesAndSubgraphs(t *testing.T) {
	g := nestedGraph(t)
	loop := findNode(t, g, "loop")
	body := Subgraphs(loop)[0]
	bodyIf := body.Node[0]
	branches := Subgraphs(bodyIf)
	for _, test := range []struct {
		name string
		g    *onnxpb.GraphProto
		want []string
	}{
		{"branch_a", branches[0], []string{"outer", "body_in"}},
		{"branch_b (shadows outer)", branches[1], []string{"w"}},
		{"body", body, []string{"outer", "w", "cond"}},
	} {
		if got := Captures(test.g); !reflect.DeepEqual(got, test.want) {
			t.Errorf("Captures(%s) = %q, want %q", test.name, got, test.want)
		}
	}
	if got := NodeInputs(loop); !reflect.DeepEqual(got, []string{"trip", "cond", "x", "outer", "w"}) {
		t.Errorf("NodeInputs(loop) = %q", got)
	}
	if got := NodeInputs(node("n", "Add", []string{"a", "", "a", "b"}, nil)); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("NodeInputs dedup = %q", got)
	}
	ix := NewIndex(g)
	for _, v := range []string{"outer", "w"} {
		if got := nodeNames(ix.Consumers[v]); !reflect.DeepEqual(got, []string{"loop"}) {
			t.Errorf("Consumers[%q] = %q, want the Loop that captures it", v, got)
		}
	}
	if len(Subgraphs(findNode(t, g, "pre"))) != 0 {
		t.Errorf("Subgraphs of a Relu is not empty")
	}
	// Graphs in a GRAPHS attribute count too.
	multi := node("scan", "Custom", nil, nil, &onnxpb.AttributeProto{Name: proto.String("gs"), Graphs: []*onnxpb.GraphProto{branches[0], branches[1]}})
	if got := len(Subgraphs(multi)); got != 2 {
		t.Errorf("Subgraphs of a GRAPHS attribute: %d", got)
	}
	// A subgraph output with no name is not a capture.
	empty := &onnxpb.GraphProto{Output: []*onnxpb.ValueInfoProto{{}}}
	if got := Captures(empty); len(got) != 0 {
		t.Errorf("Captures of an unnamed output = %q", got)
	}
}

func TestNamer(t *testing.T) {
	g := nestedGraph(t)
	g.ValueInfo = append(g.ValueInfo, ValueInfo("stale", TypeFloat, nil))
	nm := NewNamer(g)
	for _, test := range []struct{ base, want string }{
		{"fresh", "fresh"},
		{"fresh", "fresh_1"},
		{"fresh", "fresh_2"},
		{"outer", "outer_1"},     // main graph value
		{"a_out", "a_out_1"},     // value of a nested subgraph
		{"body_in", "body_in_1"}, // subgraph input
		{"b_mul", "b_mul_1"},     // node name in a subgraph
		{"loop", "loop_1"},       // node name
		{"trip", "trip_1"},       // initializer
		{"stale", "stale_1"},     // value_info entry
		{"y", "y_1"},             // graph output
		{"fresh_1", "fresh_1_1"},
	} {
		if got := nm.Name(test.base); got != test.want {
			t.Errorf("Name(%q) = %q, want %q", test.base, got, test.want)
		}
	}
	// Many calls never repeat a name.
	seen := map[string]bool{}
	for range 200 {
		n := nm.Name("x")
		if seen[n] {
			t.Fatalf("Name returned %q twice", n)
		}
		seen[n] = true
	}
}

// randomDAG builds a valid, topologically sorted graph of n nodes; each node reads one to
// three earlier values (graph inputs, initializers or node outputs), some nodes have two
// outputs, and a few read a value through an If subgraph capture.
func randomDAG(t testing.TB, rng *rand.Rand, n int) *onnxpb.GraphProto {
	g := &onnxpb.GraphProto{
		Name:        proto.String("dag"),
		Input:       []*onnxpb.ValueInfoProto{ValueInfo("in0", TypeFloat, nil), ValueInfo("in1", TypeFloat, nil)},
		Initializer: []*onnxpb.TensorProto{floatInit(t, "w0", 1)},
	}
	values := []string{"in0", "in1", "w0"}
	for i := range n {
		var ins []string
		for range 1 + rng.IntN(3) {
			ins = append(ins, values[rng.IntN(len(values))])
		}
		name := "n" + strconv.Itoa(i)
		outs := []string{name + "_o0"}
		if rng.IntN(4) == 0 {
			outs = append(outs, name+"_o1")
		}
		nd := node(name, "Mix", ins, outs) // an op of no schema: any number of inputs and outputs
		if rng.IntN(6) == 0 {
			captured := values[rng.IntN(len(values))]
			branch := &onnxpb.GraphProto{
				Node:   []*onnxpb.NodeProto{node(name+"_inner", "Identity", []string{captured}, []string{name + "_inner_o"})},
				Output: []*onnxpb.ValueInfoProto{ValueInfo(name+"_inner_o", TypeFloat, nil)},
			}
			nd = node(name, "If", ins[:1], outs, AttrGraph("then_branch", branch), AttrGraph("else_branch", branch))
		}
		g.Node = append(g.Node, nd)
		values = append(values, outs...)
	}
	g.Output = []*onnxpb.ValueInfoProto{ValueInfo(values[len(values)-1], TypeFloat, nil)}
	return g
}

// validOrder reports the first node that reads a value produced by itself or a later node.
func validOrder(g *onnxpb.GraphProto) error {
	pos := map[string]int{}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			pos[o] = i
		}
	}
	for i, n := range g.GetNode() {
		for _, in := range NodeInputs(n) {
			if p, ok := pos[in]; ok && p >= i {
				return errors.New("node " + NodeLabel(n) + " reads " + in + " produced at or after it")
			}
		}
	}
	return nil
}

func TestTopoSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 20 {
		g := randomDAG(t, rng, 5+rng.IntN(60))
		sorted := slices.Clone(g.Node)
		if err := validOrder(g); err != nil {
			t.Fatalf("trial %d: randomDAG is not sorted: %v", trial, err)
		}
		// An already sorted graph keeps its order exactly.
		if err := TopoSort(g); err != nil {
			t.Fatalf("trial %d: TopoSort of a sorted graph: %v", trial, err)
		}
		if !slices.Equal(g.Node, sorted) {
			t.Errorf("trial %d: TopoSort reordered an already sorted graph", trial)
		}
		// A permutation gets sorted, keeping every node.
		rng.Shuffle(len(g.Node), func(i, j int) { g.Node[i], g.Node[j] = g.Node[j], g.Node[i] })
		if err := TopoSort(g); err != nil {
			t.Fatalf("trial %d: TopoSort of a shuffled graph: %v", trial, err)
		}
		if err := validOrder(g); err != nil {
			t.Errorf("trial %d: after TopoSort: %v", trial, err)
		}
		if len(g.Node) != len(sorted) {
			t.Fatalf("trial %d: %d nodes after TopoSort, want %d", trial, len(g.Node), len(sorted))
		}
		for _, n := range sorted {
			if !slices.Contains(g.Node, n) {
				t.Errorf("trial %d: node %s lost", trial, n.GetName())
			}
		}
		checkOK(t, wrapGraph(g), "sorted random graph")
	}
}

func TestTopoSortStable(t *testing.T) {
	for _, test := range []struct {
		name  string
		nodes []*onnxpb.NodeProto
		want  []string
	}{
		{
			// Only c is out of place: among ready nodes the earliest goes first.
			name: "one misplaced",
			nodes: []*onnxpb.NodeProto{
				node("c", "Relu", []string{"b"}, []string{"c"}),
				node("a", "Relu", []string{"x"}, []string{"a"}),
				node("b", "Relu", []string{"a"}, []string{"b"}),
				node("d", "Relu", []string{"x"}, []string{"d"}),
			},
			want: []string{"a", "b", "c", "d"},
		},
		{
			name: "independent nodes keep their order",
			nodes: []*onnxpb.NodeProto{
				node("z", "Relu", []string{"x"}, []string{"z"}),
				node("late", "Add", []string{"z", "m"}, []string{"late"}),
				node("y", "Relu", []string{"x"}, []string{"y"}),
				node("m", "Relu", []string{"x"}, []string{"m"}),
			},
			want: []string{"z", "y", "m", "late"},
		},
		{
			name: "If capture orders the producer first",
			nodes: []*onnxpb.NodeProto{
				node("if", "If", []string{"x"}, []string{"if_out"}, AttrGraph("then_branch", &onnxpb.GraphProto{
					Node:   []*onnxpb.NodeProto{node("inner", "Identity", []string{"h"}, []string{"inner_o"})},
					Output: []*onnxpb.ValueInfoProto{ValueInfo("inner_o", TypeFloat, nil)},
				})),
				node("h", "Relu", []string{"x"}, []string{"h"}),
			},
			want: []string{"h", "if"},
		},
	} {
		g := &onnxpb.GraphProto{Node: test.nodes}
		if err := TopoSort(g); err != nil {
			t.Errorf("%s: %v", test.name, err)
			continue
		}
		if got := nodeNames(g.Node); !reflect.DeepEqual(got, test.want) {
			t.Errorf("%s: order %q, want %q", test.name, got, test.want)
		}
	}
}

func TestTopoSortCycle(t *testing.T) {
	thenReads := func(v string) *onnxpb.AttributeProto {
		return AttrGraph("then_branch", &onnxpb.GraphProto{
			Node:   []*onnxpb.NodeProto{node("inner", "Identity", []string{v}, []string{"inner_o"})},
			Output: []*onnxpb.ValueInfoProto{ValueInfo("inner_o", TypeFloat, nil)},
		})
	}
	for _, test := range []struct {
		name    string
		nodes   []*onnxpb.NodeProto
		inCycle []string
		outside []string
	}{
		{
			name: "three nodes",
			nodes: []*onnxpb.NodeProto{
				node("d", "Relu", []string{"x"}, []string{"d"}),
				node("a", "Relu", []string{"c"}, []string{"a"}),
				node("b", "Relu", []string{"a"}, []string{"b"}),
				node("c", "Relu", []string{"b"}, []string{"c"}),
				node("after", "Relu", []string{"c"}, []string{"after"}),
			},
			inCycle: []string{`"a"`, `"b"`, `"c"`},
			outside: []string{`"d"`, `"after"`},
		},
		{
			name:    "self loop",
			nodes:   []*onnxpb.NodeProto{node("self", "Add", []string{"x", "s"}, []string{"s"})},
			inCycle: []string{`"self"`},
		},
		{
			name: "through an If capture",
			nodes: []*onnxpb.NodeProto{
				node("if", "If", []string{"x"}, []string{"if_out"}, thenReads("r")),
				node("r", "Relu", []string{"if_out"}, []string{"r"}),
			},
			inCycle: []string{`"if"`, `"r"`},
		},
		{
			name: "two cycles, unnamed nodes",
			nodes: []*onnxpb.NodeProto{
				node("", "Relu", []string{"q"}, []string{"p"}),
				node("", "Relu", []string{"p"}, []string{"q"}),
				node("", "Relu", []string{"v"}, []string{"u"}),
				node("", "Relu", []string{"u"}, []string{"v"}),
			},
			inCycle: []string{`Relu -> "`},
		},
	} {
		g := &onnxpb.GraphProto{Node: test.nodes}
		before := slices.Clone(g.Node)
		err := TopoSort(g)
		var ce *CycleError
		if !errors.As(err, &ce) {
			t.Errorf("%s: TopoSort = %v, want a *CycleError", test.name, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "graph has a cycle through nodes ") {
			t.Errorf("%s: message %q", test.name, msg)
		}
		for _, s := range test.inCycle {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: %q does not name %s", test.name, msg, s)
			}
		}
		for _, s := range test.outside {
			if strings.Contains(msg, s) {
				t.Errorf("%s: %q names %s, which is not in the cycle", test.name, msg, s)
			}
		}
		if len(ce.Nodes) == 0 || len(ce.Nodes) > 10 {
			t.Errorf("%s: %d nodes named", test.name, len(ce.Nodes))
		}
		if !slices.Equal(g.Node, before) {
			t.Errorf("%s: TopoSort changed the graph although it failed", test.name)
		}
	}
	// A long cycle names at most 10 nodes.
	var long []*onnxpb.NodeProto
	for i := range 50 {
		long = append(long, node("n"+strconv.Itoa(i), "Relu", []string{"v" + strconv.Itoa((i+49)%50)}, []string{"v" + strconv.Itoa(i)}))
	}
	var ce *CycleError
	if err := TopoSort(&onnxpb.GraphProto{Node: long}); !errors.As(err, &ce) || len(ce.Nodes) != 10 {
		t.Errorf("long cycle: %v", err)
	}
}

// TestTopoSortDefinedTwice: a node output that reuses the name of a graph input, an
// initializer or another node's output is an error naming the nodes, not a cycle through
// the readers (which it looked like: the first Conv's input "came from" the last Gemm).
func TestTopoSortDefinedTwice(t *testing.T) {
	for _, test := range []struct {
		name string
		g    *onnxpb.GraphProto
		want string
	}{
		{"graph input", &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{ValueInfo("x", TypeFloat, nil)},
			Node: []*onnxpb.NodeProto{node("a", "Relu", []string{"x"}, []string{"y"}), node("b", "Relu", []string{"y"}, []string{"x"})}},
			`node "b" (Relu): output "x" has the name of a graph input; every value is defined once`},
		{"initializer", &onnxpb.GraphProto{Initializer: []*onnxpb.TensorProto{floatInit(t, "w", 1)},
			Node: []*onnxpb.NodeProto{node("b", "Relu", []string{"x"}, []string{"w"})}},
			`node "b" (Relu): output "w" has the name of an initializer`},
		{"two nodes", &onnxpb.GraphProto{
			Node: []*onnxpb.NodeProto{node("a", "Relu", []string{"x"}, []string{"y"}), node("b", "Relu", []string{"y"}, []string{"y"})}},
			`value "y" is the output of two nodes, "a" (Relu) and "b" (Relu)`},
	} {
		before := slices.Clone(test.g.Node)
		err := TopoSort(test.g)
		if err == nil || !strings.HasPrefix(err.Error(), test.want) {
			t.Errorf("%s: TopoSort = %v, want %q", test.name, err, test.want)
		}
		if !slices.Equal(test.g.Node, before) {
			t.Errorf("%s: TopoSort changed the graph although it failed", test.name)
		}
	}
}

func TestValues(t *testing.T) {
	g := nestedGraph(t)
	g.SparseInitializer = []*onnxpb.SparseTensorProto{{Values: floatInit(t, "sp", 1)}}
	got := Values(g)
	for _, v := range []string{"x", "cond", "w", "trip", "outer", "loop_out", "y", "sp"} {
		if !got[v] {
			t.Errorf("Values lacks %q", v)
		}
	}
	for _, v := range []string{"a_out", "body_in", ""} {
		if got[v] {
			t.Errorf("Values holds %q", v)
		}
	}
}

package onnxio

import (
	"reflect"
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// editGraph is the graph the edit tests work on:
//
//	r = Relu(x); a = MatMul(r, W); b = MatMul(r, W)        W shared directly
//	if_out = If(cond) { then: Neg(r) ; else: Neg(own initializer r) }
//	s = Add(a, b); W2_t = Identity(W2)                      W2 shared through Identity
//	c = MatMul(s, W2_t); d = MatMul(if_out, W2_t); y = Add(c, d); z = Relu(y)
//
// Graph outputs: y (also read by the node "tail") and z.
func editGraph(t testing.TB) *onnxpb.GraphProto {
	t.Helper()
	vi := func(n string) *onnxpb.ValueInfoProto { return ValueInfo(n, TypeFloat, nil) }
	thenG := &onnxpb.GraphProto{
		Name:   proto.String("then"),
		Node:   []*onnxpb.NodeProto{node("then_neg", "Neg", []string{"r"}, []string{"then_out"})},
		Output: []*onnxpb.ValueInfoProto{vi("then_out")},
	}
	elseG := &onnxpb.GraphProto{
		Name:        proto.String("else"),
		Initializer: []*onnxpb.TensorProto{floatInit(t, "r", 1)}, // shadows the outer r
		Node: []*onnxpb.NodeProto{
			node("else_neg", "Neg", []string{"r"}, []string{"else_out"}),
		},
		Output: []*onnxpb.ValueInfoProto{vi("else_out")},
	}
	return &onnxpb.GraphProto{
		Name:        proto.String("edit"),
		Input:       []*onnxpb.ValueInfoProto{vi("x"), ValueInfo("cond", TypeBool, []int64{})},
		Initializer: []*onnxpb.TensorProto{floatInit(t, "W", 4, 4), floatInit(t, "W2", 4, 4)},
		Node: []*onnxpb.NodeProto{
			node("relu", "Relu", []string{"x"}, []string{"r"}),
			node("mm1", "MatMul", []string{"r", "W"}, []string{"a"}),
			node("mm2", "MatMul", []string{"r", "W"}, []string{"b"}),
			node("if", "If", []string{"cond"}, []string{"if_out"}, AttrGraph("then_branch", thenG), AttrGraph("else_branch", elseG)),
			node("add", "Add", []string{"a", "b"}, []string{"s"}),
			node("id_w2", "Identity", []string{"W2"}, []string{"W2_t"}),
			node("mm3", "MatMul", []string{"s", "W2_t"}, []string{"c"}),
			node("mm4", "MatMul", []string{"if_out", "W2_t"}, []string{"d"}),
			node("out", "Add", []string{"c", "d"}, []string{"y"}),
			node("tail", "Relu", []string{"y"}, []string{"z"}),
		},
		Output: []*onnxpb.ValueInfoProto{vi("y"), vi("z")},
	}
}

// qdq returns a QuantizeLinear/DequantizeLinear pair reading v and ending in out.
func qdq(v, out string) []*onnxpb.NodeProto {
	return []*onnxpb.NodeProto{
		node("q_"+v, "QuantizeLinear", []string{v, "qscale", "qzp"}, []string{v + "_q"}),
		node("dq_"+v, "DequantizeLinear", []string{v + "_q", "qscale", "qzp"}, []string{out}),
	}
}

// inputsOf returns the inputs of the node called name in g.
func inputsOf(t testing.TB, g *onnxpb.GraphProto, name string) []string {
	return findNode(t, g, name).GetInput()
}

func outputNames(g *onnxpb.GraphProto) []string {
	var s []string
	for _, vi := range g.GetOutput() {
		s = append(s, vi.GetName())
	}
	return s
}

func TestInsertAfter(t *testing.T) {
	for _, test := range []struct {
		name    string
		value   string
		out     string
		rewire  bool
		prepare func(g *onnxpb.GraphProto)
		verify  func(t *testing.T, g *onnxpb.GraphProto)
	}{
		{
			name: "value with several readers and a capture", value: "r", out: "r_dq",
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				for _, n := range []string{"mm1", "mm2"} {
					if in := inputsOf(t, g, n); in[0] != "r_dq" {
						t.Errorf("%s reads %q", n, in)
					}
				}
				if in := inputsOf(t, g, "q_r"); in[0] != "r" {
					t.Errorf("Q reads %q", in)
				}
				ifn := findNode(t, g, "if")
				if in := Subgraphs(ifn)[0].Node[0].GetInput(); in[0] != "r_dq" {
					t.Errorf("then branch (a capture) reads %q, want r_dq", in)
				}
				if in := Subgraphs(ifn)[1].Node[0].GetInput(); in[0] != "r" {
					t.Errorf("else branch, which has its own r, reads %q", in)
				}
				if got := nodeNames(g.Node[:3]); !reflect.DeepEqual(got, []string{"relu", "q_r", "dq_r"}) {
					t.Errorf("nodes start %q, want the pair right after the producer", got)
				}
			},
		},
		{
			name: "graph output, rewired", value: "y", out: "y_dq", rewire: true,
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				if got := outputNames(g); !reflect.DeepEqual(got, []string{"y", "z"}) {
					t.Errorf("graph outputs %q, want them to keep their names", got)
				}
				ix := NewIndex(g)
				if p := ix.Producer["y"]; p == nil || p.GetName() != "dq_y" {
					t.Errorf("y is produced by %v, want the inserted DequantizeLinear", p)
				}
				pre := findNode(t, g, "out").GetOutput()[0]
				if pre == "y" || pre == "y_dq" {
					t.Errorf("old producer still writes %q", pre)
				}
				if in := inputsOf(t, g, "q_y"); in[0] != pre {
					t.Errorf("Q reads %q, want the old producer's %q", in[0], pre)
				}
				if in := inputsOf(t, g, "tail"); in[0] != "y" {
					t.Errorf("tail reads %q, want y (the chain's result)", in[0])
				}
				if _, ok := ix.Producer["y_dq"]; ok {
					t.Errorf("a value y_dq is still produced")
				}
			},
		},
		{
			name: "graph output, not rewired", value: "y", out: "y_dq",
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				ix := NewIndex(g)
				if p := ix.Producer["y"]; p.GetName() != "out" {
					t.Errorf("y produced by %s", p.GetName())
				}
				if in := inputsOf(t, g, "tail"); in[0] != "y_dq" {
					t.Errorf("tail reads %q, want y_dq", in[0])
				}
			},
		},
		{
			name: "initializer shared by two nodes", value: "W", out: "W_dq",
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				for _, n := range []string{"mm1", "mm2"} {
					if in := inputsOf(t, g, n); in[1] != "W_dq" {
						t.Errorf("%s reads %q", n, in)
					}
				}
				if got := nodeNames(g.Node[:2]); !reflect.DeepEqual(got, []string{"q_W", "dq_W"}) {
					t.Errorf("nodes start %q, want the pair first", got)
				}
				if n := RemoveUnusedInitializers(g); n != 0 {
					t.Errorf("RemoveUnusedInitializers removed %d", n)
				}
			},
		},
		{
			name: "tied weight after Identity", value: "W2_t", out: "W2_t_dq",
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				for _, n := range []string{"mm3", "mm4"} {
					if in := inputsOf(t, g, n); in[1] != "W2_t_dq" {
						t.Errorf("%s reads %q", n, in)
					}
				}
				ix := NewIndex(g)
				if tp, ok := ix.ConstantTensor("W2_t"); !ok || tp.GetName() != "W2" {
					t.Errorf("W2_t is no longer the constant W2")
				}
				if _, ok := ix.ConstantTensor("W2_t_dq"); ok {
					t.Errorf("the DequantizeLinear output counts as constant")
				}
			},
		},
		{
			name: "initializer before its Identity", value: "W2", out: "W2_dq",
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				if in := inputsOf(t, g, "id_w2"); in[0] != "W2_dq" {
					t.Errorf("Identity reads %q", in)
				}
				for _, n := range []string{"mm3", "mm4"} {
					if in := inputsOf(t, g, n); in[1] != "W2_t" {
						t.Errorf("%s reads %q", n, in)
					}
				}
				if _, ok := NewIndex(g).ConstantTensor("W2_t"); ok {
					t.Errorf("W2_t still counts as a constant")
				}
			},
		},
		{
			name: "initializer that is a graph output, rewired", value: "K", out: "K_dq", rewire: true,
			prepare: func(g *onnxpb.GraphProto) {
				g.Initializer = append(g.Initializer, floatInit(t, "K", 2))
				g.Output = append(g.Output, ValueInfo("K", TypeFloat, nil))
				g.Node = append(g.Node, node("k_reader", "Relu", []string{"K"}, []string{"k_r"}))
				g.Output = append(g.Output, ValueInfo("k_r", TypeFloat, nil))
			},
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				ix := NewIndex(g)
				if p := ix.Producer["K"]; p == nil || p.GetName() != "dq_K" {
					t.Errorf("K produced by %v", p)
				}
				if _, ok := ix.Initializers["K"]; ok {
					t.Errorf("initializer K keeps its name")
				}
				pre := inputsOf(t, g, "q_K")[0]
				if _, ok := ix.Initializers[pre]; !ok {
					t.Errorf("Q reads %q, which is not the renamed initializer", pre)
				}
			},
		},
		{
			name: "graph input that is a graph output, rewired", value: "x", out: "x_dq", rewire: true,
			prepare: func(g *onnxpb.GraphProto) {
				g.Output = append(g.Output, ValueInfo("x", TypeFloat, nil))
			},
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				if in := inputsOf(t, g, "relu"); in[0] != "x_dq" {
					t.Errorf("relu reads %q", in)
				}
				if got := outputNames(g); got[2] != "x" {
					t.Errorf("outputs %q", got)
				}
			},
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			g := editGraph(t)
			if test.prepare != nil {
				test.prepare(g)
			}
			g.Initializer = append(g.Initializer, floatInit(t, "qscale", 1), mustEncode(t, "qzp", NewTensor([]int64{}, []int8{0})))
			m := wrapGraph(g)
			checkOK(t, m, "before")
			nodesBefore := len(g.Node)
			InsertAfter(g, test.value, test.out, test.rewire, qdq(test.value, test.out)...)
			if len(g.Node) != nodesBefore+2 {
				t.Errorf("%d nodes after InsertAfter, want %d", len(g.Node), nodesBefore+2)
			}
			checkOK(t, m, "after InsertAfter")
			if err := validOrder(g); err != nil {
				t.Errorf("order after InsertAfter: %v", err)
			}
			test.verify(t, g)
		})
	}
}

// TestInsertAfterSubgraphPassThrough: inside a subgraph whose output passes an outer
// value through, rewiring has no producer to rename; the subgraph must stay valid.
func TestInsertAfterSubgraphPassThrough(t *testing.T) {
	g := nestedGraph(t)
	m := wrapGraph(g)
	checkOK(t, m, "before")
	body := Subgraphs(findNode(t, g, "loop"))[0]
	InsertAfter(body, "cond", "cond_id", true, node("pass", "Identity", []string{"cond"}, []string{"cond_id"}))
	checkOK(t, m, "after")
	for _, n := range body.Node {
		for _, in := range n.GetInput() {
			if in == "cond_pre" {
				t.Errorf("node %s reads cond_pre, which nothing produces", n.GetName())
			}
		}
	}
}

func TestReplaceUses(t *testing.T) {
	for _, test := range []struct {
		name      string
		old, new  string
		wantCount int
		verify    func(t *testing.T, g *onnxpb.GraphProto)
	}{
		{
			name: "captured through two levels", old: "outer", new: "outer2", wantCount: 1,
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				body := Subgraphs(findNode(t, g, "loop"))[0]
				br := Subgraphs(body.Node[0])
				if in := br[0].Node[0].GetInput(); in[0] != "outer2" {
					t.Errorf("branch_a reads %q", in)
				}
				if in := br[1].Node[0].GetInput(); in[0] != "outer" {
					t.Errorf("branch_b, which defines its own outer, reads %q", in)
				}
				if out := findNode(t, g, "pre").GetOutput(); out[0] != "outer" {
					t.Errorf("the producer was renamed: %q", out)
				}
			},
		},
		{
			name: "node input and subgraph pass-through output", old: "cond", new: "cond2", wantCount: 1,
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				loop := findNode(t, g, "loop")
				if loop.Input[1] != "cond2" {
					t.Errorf("loop reads %q", loop.Input)
				}
				if got := outputNames(Subgraphs(loop)[0]); got[0] != "cond2" {
					t.Errorf("body outputs %q, want the pass-through renamed", got)
				}
			},
		},
		{
			name: "graph outputs are not renamed", old: "y", new: "y2", wantCount: 0,
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				if got := outputNames(g); got[0] != "y" {
					t.Errorf("outputs %q", got)
				}
			},
		},
		{
			name: "several readers", old: "x", new: "x2", wantCount: 2,
			verify: func(t *testing.T, g *onnxpb.GraphProto) {
				if inputsOf(t, g, "pre")[0] != "x2" || inputsOf(t, g, "loop")[2] != "x2" {
					t.Errorf("readers of x not changed")
				}
			},
		},
		{
			name: "value only a subgraph defines", old: "body_in", new: "zz", wantCount: 0,
			verify: func(*testing.T, *onnxpb.GraphProto) {},
		},
	} {
		g := nestedGraph(t)
		if n := ReplaceUses(g, test.old, test.new); n != test.wantCount {
			t.Errorf("%s: ReplaceUses changed %d inputs, want %d", test.name, n, test.wantCount)
		}
		t.Run(test.name, func(t *testing.T) { test.verify(t, g) })
	}
}

func TestRemoveDeadNodes(t *testing.T) {
	g := editGraph(t)
	vi := func(n string) *onnxpb.ValueInfoProto { return ValueInfo(n, TypeFloat, nil) }
	g.Node = append(g.Node,
		node("dead1", "Relu", []string{"x"}, []string{"d1"}),
		node("dead2", "Relu", []string{"d1"}, []string{"d2"}),
		node("dead3", "Add", []string{"d2", "W"}, []string{"d3", ""}),
		node("no_outputs", "Print", []string{"x"}, nil),
		node("capt", "Relu", []string{"x"}, []string{"cap_v"}),
		node("if2", "If", []string{"cond"}, []string{"if2_out"}, AttrGraph("then_branch", &onnxpb.GraphProto{
			Node:   []*onnxpb.NodeProto{node("inner", "Identity", []string{"cap_v"}, []string{"inner_o"})},
			Output: []*onnxpb.ValueInfoProto{vi("inner_o")},
		})),
	)
	g.Output = append(g.Output, vi("if2_out"))
	live := nodeNames(g.Node)
	live = slices.DeleteFunc(live, func(s string) bool { return s == "dead1" || s == "dead2" || s == "dead3" || s == "no_outputs" })
	if n := RemoveDeadNodes(g); n != 4 {
		t.Errorf("RemoveDeadNodes removed %d nodes, want 4", n)
	}
	if got := nodeNames(g.Node); !reflect.DeepEqual(got, live) {
		t.Errorf("nodes left %q, want %q", got, live)
	}
	if n := RemoveDeadNodes(g); n != 0 {
		t.Errorf("second RemoveDeadNodes removed %d", n)
	}
	checkOK(t, wrapGraph(g), "after RemoveDeadNodes")

	// A long dead chain goes entirely (and quickly: one pass, not one per node).
	chain := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{vi("x")}, Output: []*onnxpb.ValueInfoProto{vi("x")}}
	prev := "x"
	for i := range 20000 {
		v := "c" + strconv.Itoa(i)
		chain.Node = append(chain.Node, node(v, "Relu", []string{prev}, []string{v}))
		prev = v
	}
	if n := RemoveDeadNodes(chain); n != 20000 || len(chain.Node) != 0 {
		t.Errorf("dead chain: removed %d, %d left", n, len(chain.Node))
	}
}

func TestRemoveUnusedInitializers(t *testing.T) {
	g := editGraph(t)
	g.Initializer = append(g.Initializer,
		floatInit(t, "unused", 2),
		floatInit(t, "old_style", 2), // also listed as a graph input (IR < 4)
		floatInit(t, "as_output", 2),
		floatInit(t, "captured", 2),
	)
	g.Input = append(g.Input, ValueInfo("old_style", TypeFloat, []int64{2}))
	g.Output = append(g.Output, ValueInfo("as_output", TypeFloat, nil))
	ifn := findNode(t, g, "if")
	then := Subgraphs(ifn)[0]
	then.Node = append(then.Node, node("reads_captured", "Relu", []string{"captured"}, []string{"rc"}))
	if n := RemoveUnusedInitializers(g); n != 2 {
		t.Errorf("RemoveUnusedInitializers removed %d, want 2", n)
	}
	var names []string
	for _, tp := range g.Initializer {
		names = append(names, tp.GetName())
	}
	if want := []string{"W", "W2", "as_output", "captured"}; !reflect.DeepEqual(names, want) {
		t.Errorf("initializers left %q, want %q", names, want)
	}
	for _, vi := range g.Input {
		if vi.GetName() == "old_style" {
			t.Errorf("the removed initializer's graph input is still there")
		}
	}
	checkOK(t, wrapGraph(g), "after RemoveUnusedInitializers")
}

func TestRemoveNodes(t *testing.T) {
	g := editGraph(t)
	RemoveNodes(g, map[*onnxpb.NodeProto]bool{findNode(t, g, "tail"): true, findNode(t, g, "relu"): true})
	if len(g.Node) != 8 || g.Node[0].GetName() != "mm1" {
		t.Errorf("after RemoveNodes: %q", nodeNames(g.Node))
	}
}

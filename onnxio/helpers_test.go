package onnxio

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// node makes a NodeProto by hand (the Builder invents output names; many tests need
// exact ones).
func node(name, op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: outputs, Attribute: attrs}
	if name != "" {
		n.Name = proto.String(name)
	}
	return n
}

// floatInit makes a float32 initializer of the given shape filled with 0.5, 1.5, ...
func floatInit(t testing.TB, name string, shape ...int64) *onnxpb.TensorProto {
	t.Helper()
	n, err := NumElements(shape)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i) + 0.5
	}
	tp, err := EncodeTensor(name, NewTensor(shape, data))
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// wrapGraph makes a model (IR 8, opset 17) around g.
func wrapGraph(g *onnxpb.GraphProto) *Model {
	return &Model{Proto: &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph:       g,
	}}
}

// mlpModel builds x[1,8] -> MatMul(W1) -> Add(B1) -> Relu -> MatMul(W2) -> y[1,4]. W1 is
// 8x16 floats (512 bytes), W2 16x4 (256 bytes), B1 16 floats (64 bytes).
func mlpModel(t testing.TB) *Model {
	t.Helper()
	b := NewBuilder(17)
	x := b.Input("x", TypeFloat, []int64{-1, 8}, "batch")
	w1 := b.Initializer("W1", ramp(8, 16))
	b1 := b.Initializer("B1", ramp(16))
	w2 := b.Initializer("W2", ramp(16, 4))
	h := b.Op("MatMul", []string{x, w1})
	h = b.Op("Add", []string{h, b1})
	h = b.Op("Relu", []string{h})
	y := b.Op("MatMul", []string{h, w2})
	b.Output(y, TypeFloat, []int64{-1, 4}, "batch")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ramp is a float32 tensor of the given shape holding 0, 0.25, 0.5, ...
func ramp(shape ...int64) *Tensor {
	n, _ := NumElements(shape)
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i) / 4
	}
	return NewTensor(shape, d)
}

// ifModel builds a model whose If node has two branches: then_branch reads the outer
// values "w" (an initializer) and "h" (a node output); else_branch computes Neg of its
// own value. It ends in y = Relu(If output).
func ifModel(t testing.TB) *Model {
	t.Helper()
	vi := func(n string) *onnxpb.ValueInfoProto { return ValueInfo(n, TypeFloat, []int64{2}) }
	thenG := &onnxpb.GraphProto{
		Name:   proto.String("then"),
		Node:   []*onnxpb.NodeProto{node("then_add", "Add", []string{"h", "w"}, []string{"t_out"})},
		Output: []*onnxpb.ValueInfoProto{vi("t_out")},
	}
	elseG := &onnxpb.GraphProto{
		Name: proto.String("else"),
		Node: []*onnxpb.NodeProto{
			node("else_const", "Constant", nil, []string{"e_c"}, AttrTensor("value", floatInit(t, "e_c", 2))),
			node("else_neg", "Neg", []string{"e_c"}, []string{"e_out"}),
		},
		Output: []*onnxpb.ValueInfoProto{vi("e_out")},
	}
	g := &onnxpb.GraphProto{
		Name:        proto.String("main"),
		Input:       []*onnxpb.ValueInfoProto{ValueInfo("cond", TypeBool, []int64{}), vi("x")},
		Initializer: []*onnxpb.TensorProto{floatInit(t, "w", 2)},
		Node: []*onnxpb.NodeProto{
			node("pre", "Relu", []string{"x"}, []string{"h"}),
			node("if", "If", []string{"cond"}, []string{"if_out"}, AttrGraph("then_branch", thenG), AttrGraph("else_branch", elseG)),
			node("post", "Relu", []string{"if_out"}, []string{"y"}),
		},
		Output: []*onnxpb.ValueInfoProto{vi("y")},
	}
	return wrapGraph(g)
}

// marshal serializes m.
func marshal(t testing.TB, m *Model) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opNames lists the op types (or names) of nodes, for messages and comparisons.
func nodeNames(nodes []*onnxpb.NodeProto) []string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.GetName())
	}
	return s
}

// findNode returns the node called name in g (not in subgraphs).
func findNode(t testing.TB, g *onnxpb.GraphProto, name string) *onnxpb.NodeProto {
	t.Helper()
	for _, n := range g.GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	t.Fatalf("no node %q in graph %q", name, g.GetName())
	return nil
}

// checkOK fails the test when Check finds a problem.
func checkOK(t testing.TB, m *Model, what string) {
	t.Helper()
	if err := Check(m); err != nil {
		t.Fatalf("%s: Check: %v", what, err)
	}
}

// listDir returns the sorted file names in dir.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// noTempFiles fails when dir (recursively) holds a CreateTemp leftover.
func noTempFiles(t testing.TB, dir, what string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && IsTempName(d.Name()) {
			t.Errorf("%s: stray temporary file %s", what, p)
		}
		return nil
	})
}

// wantErr checks that err is non-nil and mentions every one of subs.
func wantErr(t testing.TB, what string, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one mentioning %q", what, subs)
		return
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not mention %q", what, err, s)
		}
	}
}

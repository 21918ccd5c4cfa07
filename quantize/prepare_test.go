package quantize

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// Prepare names every unnamed node (its op type, made unique against every name in the
// graph) and leaves named ones alone, so exclude_nodes can reach any node.
func TestPrepareNamesNodes(t *testing.T) {
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 4})
	r1 := b.Op("Relu", []string{x})
	r2 := b.Op("Relu", []string{r1})
	y := b.Op("Sigmoid", []string{r2})
	b.Output(y, onnxio.TypeFloat, []int64{-1, 4})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	g.Node[0].Name = proto.String("Relu") // a named node holding the first choice
	g.Node[1].Name, g.Node[2].Name = nil, nil
	rep, err := Prepare(m, PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range g.GetNode() {
		names = append(names, n.GetName())
	}
	if rep.NodesNamed != 2 || names[0] != "Relu" || names[1] == "" || names[1] == "Relu" || names[2] == "" || names[1] == names[2] {
		t.Errorf("named %d, names %q; want 2 new unique names beside %q", rep.NodesNamed, names, "Relu")
	}
	again, err := Prepare(m, PrepareOptions{})
	if err != nil || again.NodesNamed != 0 {
		t.Errorf("a second Prepare named %d nodes (%v)", again.NodesNamed, err)
	}
}

package badinput

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// nodeIndexes picks the nodes of a fixture that get node cases: every node of the MNIST
// CNN; of the others the first node of some op types, and the last node.
func nodeIndexes(fx *Fixture) []int {
	nodes := fx.Model.Graph.Node
	if fx.Name == "mnist" {
		idx := make([]int, len(nodes))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	want := map[string]bool{"Conv": true, "BatchNormalization": true, "Add": true, "GlobalAveragePool": true,
		"Transpose": true, "Shape": true, "Constant": true, "MatMul": true, "LayerNormalization": true}
	var idx []int
	seen := map[string]bool{}
	for i, n := range nodes {
		if want[n.GetOpType()] && !seen[n.GetOpType()] && (fx.Name != "transformer" || n.GetOpType() != "Add") || i == len(nodes)-1 {
			seen[n.GetOpType()] = true
			idx = append(idx, i)
		}
	}
	return idx
}

// nodeCases break one node at a time.
func (g *gen) nodeCases() {
	for _, f := range g.fixtureNames() {
		fx := g.fx[f]
		for _, i := range nodeIndexes(fx) {
			n := fx.Model.Graph.Node[i]
			names := append([]string{n.GetName()}, n.Output...)
			add := func(how string, must bool, extra []string, edit func(m *onnxpb.ModelProto, n *onnxpb.NodeProto)) {
				g.add(&Case{Name: fmt.Sprintf("n%d/%s", i, how), Kind: KindNode, Fixture: f, MustFail: must,
					Mentions: append(append([]string(nil), names...), extra...),
					edit:     func(w *Workspace) error { edit(w.Model, w.Model.Graph.Node[i]); return nil }})
			}
			hasInputs := len(n.Input) > 0
			if hasInputs {
				add("drop-inputs", true, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.Input = nil })
				add("empty-inputs", true, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
					for k := range n.Input {
						n.Input[k] = ""
					}
				})
				add("missing-input", true, []string{"no_such_value"}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.Input[0] = "no_such_value" })
				add("extra-input", false, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
					n.Input = append(n.Input, n.Input[0], n.Input[0], n.Input[0], n.Input[0], n.Input[0])
				})
			}
			add("drop-outputs", true, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.Output = nil })
			add("empty-output", true, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.Output[0] = "" })
			// The output takes the name of another value: the graph input, or the
			// output of another node.
			other := fx.InputName
			if i > 0 {
				other = fx.Model.Graph.Node[i-1].Output[0]
			}
			add("dup-output", true, []string{other}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.Output[0] = other })
			add("dup-output-input", true, []string{fx.InputName}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.Output[0] = fx.InputName })
			add("extra-output", false, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
				n.Output = append(n.Output, "extra_out_1", "extra_out_2", "extra_out_3", "extra_out_4")
			})
			add("unknown-op", true, []string{"NoSuchOp"}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.OpType = proto.String("NoSuchOp") })
			add("empty-op", true, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) { n.OpType = proto.String("") })
			add("lowercase-op", true, nil, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
				n.OpType = proto.String(lower(n.GetOpType()))
			})
			add("unknown-domain", true, []string{"com.example.nosuch"}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
				n.Domain = proto.String("com.example.nosuch")
			})
			// An imported custom domain that no runtime implements (onnxruntime turns a
			// Constant of any domain into an initializer: that one may work).
			add("custom-domain", n.GetOpType() != "Constant", []string{"com.example.nosuch"}, func(m *onnxpb.ModelProto, n *onnxpb.NodeProto) {
				n.Domain = proto.String("com.example.nosuch")
				m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.example.nosuch"), Version: proto.Int64(1)})
			})
			add("unknown-attr", false, []string{"no_such_attr"}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
				n.Attribute = append(n.Attribute, onnxio.AttrInt("no_such_attr", 1))
			})
			if len(n.Attribute) > 0 {
				a := n.Attribute[0].GetName()
				add("attr-wrong-type", false, []string{a}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
					n.Attribute[0] = onnxio.AttrString(a, "not a number")
				})
				add("attr-twice", false, []string{a}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
					n.Attribute = append(n.Attribute, proto.Clone(n.Attribute[0]).(*onnxpb.AttributeProto))
				})
				add("attr-no-type", false, []string{a}, func(_ *onnxpb.ModelProto, n *onnxpb.NodeProto) {
					n.Attribute[0].Type = nil
				})
			}
			// The node moved to the front of the graph: out of order, which prepare's
			// topological sort repairs.
			if i > 0 {
				add("moved-first", false, nil, func(m *onnxpb.ModelProto, n *onnxpb.NodeProto) {
					g := m.Graph
					rest := append([]*onnxpb.NodeProto{n}, g.Node[:i]...)
					g.Node = append(rest, g.Node[i+1:]...)
				})
			}
			add("removed", true, nil, func(m *onnxpb.ModelProto, n *onnxpb.NodeProto) {
				g := m.Graph
				g.Node = append(g.Node[:i:i], g.Node[i+1:]...)
			})
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

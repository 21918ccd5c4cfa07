package badinput

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// modelBytes returns the fixture model's serialized bytes.
func modelBytes(w *Workspace) []byte {
	data, err := marshal(w.Model)
	if err != nil {
		panic(err)
	}
	return data
}

// modelCases break the model file as a whole, for every fixture.
func (g *gen) modelCases() {
	for _, f := range g.fixtureNames() {
		fx := g.fx[f]
		file := []string{"model.onnx"}
		must := func(name string, edit func(w *Workspace)) {
			g.add(&Case{Name: "model/" + name, Kind: KindModel, Fixture: f, MustFail: true, Mentions: file,
				edit: func(w *Workspace) error { edit(w); return nil }})
		}
		either := func(name string, unchanged bool, mentions []string, edit func(w *Workspace)) {
			if f == "transformer" && slowOnTransformer[name] {
				return
			}
			g.add(&Case{Name: "model/" + name, Kind: KindModel, Fixture: f, Unchanged: unchanged, Mentions: mentions,
				edit: func(w *Workspace) error { edit(w); return nil }})
		}
		must("empty", func(w *Workspace) { w.ModelBytes = []byte{} })
		must("truncated-half", func(w *Workspace) { b := modelBytes(w); w.ModelBytes = b[:len(b)/2] })
		must("truncated-1", func(w *Workspace) { b := modelBytes(w); w.ModelBytes = b[:len(b)-1] })
		must("first-10-bytes", func(w *Workspace) { w.ModelBytes = modelBytes(w)[:10] })
		must("random-bytes", func(w *Workspace) {
			rng := rand.New(rand.NewPCG(1, uint64(len(f))))
			b := make([]byte, 4096)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			w.ModelBytes = b
		})
		must("zeros", func(w *Workspace) { w.ModelBytes = make([]byte, 1000) })
		must("text", func(w *Workspace) { w.ModelBytes = []byte("this is not an ONNX model\n") })
		must("gzip", func(w *Workspace) {
			var buf bytes.Buffer
			z := gzip.NewWriter(&buf)
			z.Write(modelBytes(w))
			z.Close()
			w.ModelBytes = buf.Bytes()
		})
		must("no-graph", func(w *Workspace) { w.Model.Graph = nil })
		must("empty-graph", func(w *Workspace) { w.Model.Graph = &onnxpb.GraphProto{Name: proto.String("main")} })
		must("is-a-folder", func(w *Workspace) { w.ModelFile = ""; w.Dirs = append(w.Dirs, "model.onnx") })
		must("missing", func(w *Workspace) { w.ModelFile = "" })
		must("fifo", func(w *Workspace) { w.ModelFile = ""; w.FIFOs = append(w.FIFOs, "model.onnx") })
		must("symlink-loop", func(w *Workspace) { w.ModelFile = ""; w.Links["model.onnx"] = "model.onnx" })
		// A protobuf field with a wrong wire type where the graph belongs.
		must("graph-wrong-wire-type", func(w *Workspace) {
			w.Model.Graph = nil
			b := modelBytes(w)
			b = protowire.AppendTag(b, 7, protowire.VarintType)
			w.ModelBytes = protowire.AppendVarint(b, 5)
		})

		either("no-opset-import", false, file, func(w *Workspace) { w.Model.OpsetImport = nil })
		either("opset-6", false, file, func(w *Workspace) { setOpset(w.Model, 6) })
		// Re-stamped exports: the CNNs' ops mean the same at opset 9 and 10; the
		// Transformer's do not exist or take other inputs there.
		cnn := f != "transformer"
		either("opset-9", cnn, file, func(w *Workspace) { setOpset(w.Model, 9) })
		either("opset-10", cnn, file, func(w *Workspace) { setOpset(w.Model, 10) })
		either("opset-99", false, file, func(w *Workspace) { setOpset(w.Model, 99) })
		either("opset-twice", false, file, func(w *Workspace) {
			w.Model.OpsetImport = append(w.Model.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("ai.onnx"), Version: proto.Int64(11)})
		})
		either("ir-0", false, file, func(w *Workspace) { w.Model.IrVersion = proto.Int64(0) })
		either("ir-none", false, file, func(w *Workspace) { w.Model.IrVersion = nil })
		either("ir-3", false, file, func(w *Workspace) { w.Model.IrVersion = proto.Int64(3) })
		either("ir-99", false, file, func(w *Workspace) { w.Model.IrVersion = proto.Int64(99) })
		either("unknown-fields", true, file, func(w *Workspace) {
			b := modelBytes(w)
			b = protowire.AppendTag(b, 999, protowire.BytesType)
			w.ModelBytes = protowire.AppendBytes(b, []byte("from the future"))
		})
		either("empty-node-names", true, file, func(w *Workspace) {
			for _, n := range w.Model.Graph.Node {
				n.Name = nil
			}
		})
		either("same-node-names", true, file, func(w *Workspace) {
			for _, n := range w.Model.Graph.Node {
				n.Name = proto.String("n")
			}
		})
		either("producer-garbage", true, file, func(w *Workspace) {
			w.Model.ProducerName = proto.String("\x00\xff")
			w.Model.Domain = proto.String("../../etc")
			w.Model.MetadataProps = append(w.Model.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(""), Value: proto.String("\n")})
		})

		in, out := fx.InputName, fx.OutputName
		graph := func(w *Workspace) *onnxpb.GraphProto { return w.Model.Graph }
		g.add(&Case{Name: "model/no-inputs", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in, "model.onnx"},
			edit: func(w *Workspace) error { graph(w).Input = nil; return nil }})
		g.add(&Case{Name: "model/no-outputs", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{out, "output", "model.onnx"},
			edit: func(w *Workspace) error { graph(w).Output = nil; return nil }})
		g.add(&Case{Name: "model/output-undefined", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{"nowhere"},
			edit: func(w *Workspace) error { graph(w).Output[0].Name = proto.String("nowhere"); return nil }})
		g.add(&Case{Name: "model/output-twice", Kind: KindModel, Fixture: f, Mentions: []string{out},
			edit: func(w *Workspace) error {
				graph(w).Output = append(graph(w).Output, proto.Clone(graph(w).Output[0]).(*onnxpb.ValueInfoProto))
				return nil
			}})
		g.add(&Case{Name: "model/input-twice", Kind: KindModel, Fixture: f, Mentions: []string{in},
			edit: func(w *Workspace) error {
				graph(w).Input = append(graph(w).Input, proto.Clone(graph(w).Input[0]).(*onnxpb.ValueInfoProto))
				return nil
			}})
		g.add(&Case{Name: "model/input-is-output", Kind: KindModel, Fixture: f, Mentions: []string{in},
			edit: func(w *Workspace) error {
				graph(w).Output = append(graph(w).Output, proto.Clone(graph(w).Input[0]).(*onnxpb.ValueInfoProto))
				return nil
			}})
		for _, tc := range []struct {
			name string
			dt   onnxio.DataType
		}{{"input-type-undefined", 0}, {"input-type-string", onnxio.TypeString}, {"input-type-int64", onnxio.TypeInt64}, {"input-type-99", 99}} {
			g.add(&Case{Name: "model/" + tc.name, Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in},
				edit: func(w *Workspace) error {
					graph(w).Input[0].Type.GetTensorType().ElemType = proto.Int32(int32(tc.dt))
					return nil
				}})
		}
		g.add(&Case{Name: "model/input-no-type", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in},
			edit: func(w *Workspace) error { graph(w).Input[0].Type = nil; return nil }})
		g.add(&Case{Name: "model/input-rank-short", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in},
			edit: func(w *Workspace) error {
				sh := graph(w).Input[0].Type.GetTensorType().Shape
				sh.Dim = sh.Dim[:len(sh.Dim)-1]
				return nil
			}})
		g.add(&Case{Name: "model/input-dim-wrong", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in},
			edit: func(w *Workspace) error {
				sh := graph(w).Input[0].Type.GetTensorType().Shape
				sh.Dim[len(sh.Dim)-1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 5}
				return nil
			}})
		g.add(&Case{Name: "model/input-dim-negative", Kind: KindModel, Fixture: f, Mentions: []string{in},
			edit: func(w *Workspace) error {
				sh := graph(w).Input[0].Type.GetTensorType().Shape
				sh.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: -5}
				return nil
			}})
		g.add(&Case{Name: "model/input-dim-huge", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in},
			edit: func(w *Workspace) error {
				sh := graph(w).Input[0].Type.GetTensorType().Shape
				sh.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1 << 62}
				return nil
			}})
		// A fixed batch axis: a correct result either way.
		for _, b := range []int64{1, 3} {
			g.add(&Case{Name: "model/input-batch-" + string(rune('0'+b)), Kind: KindModel, Fixture: f, Unchanged: true, Mentions: []string{in},
				edit: func(w *Workspace) error {
					sh := graph(w).Input[0].Type.GetTensorType().Shape
					sh.Dim[0].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: b}
					return nil
				}})
		}
		g.add(&Case{Name: "model/output-type-int64", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{out},
			edit: func(w *Workspace) error {
				graph(w).Output[0].Type.GetTensorType().ElemType = proto.Int32(int32(onnxio.TypeInt64))
				return nil
			}})
		// The first node's input comes from the last node: a cycle through the graph.
		g.add(&Case{Name: "model/cycle", Kind: KindModel, Fixture: f, MustFail: true, Mentions: nodeNames(fx.Model.Graph.Node),
			edit: func(w *Workspace) error {
				nodes := graph(w).Node
				first := firstConsumer(nodes, in)
				last := nodes[len(nodes)-1]
				for k, x := range first.Input {
					if x == in {
						first.Input[k] = last.Output[0]
					}
				}
				last.Output[0] = "looped"
				for _, n := range nodes {
					for k, x := range n.Input {
						if x == out {
							n.Input[k] = "looped"
						}
					}
				}
				// the graph output is now undefined too; give it back through an Identity
				graph(w).Node = append(graph(w).Node, &onnxpb.NodeProto{Name: proto.String("id"), OpType: proto.String("Identity"), Input: []string{"looped"}, Output: []string{out}})
				return nil
			}})
		g.add(&Case{Name: "model/self-loop", Kind: KindModel, Fixture: f, MustFail: true, Mentions: nodeNames(fx.Model.Graph.Node),
			edit: func(w *Workspace) error {
				n := firstConsumer(graph(w).Node, in)
				for k, x := range n.Input {
					if x == in {
						n.Input[k] = n.Output[0]
					}
				}
				return nil
			}})
		g.add(&Case{Name: "model/nodes-reversed", Kind: KindModel, Fixture: f, Unchanged: true, Mentions: nodeNames(fx.Model.Graph.Node),
			edit: func(w *Workspace) error {
				n := graph(w).Node
				for i, j := 0, len(n)-1; i < j; i, j = i+1, j-1 {
					n[i], n[j] = n[j], n[i]
				}
				return nil
			}})
		// A graph input with the name of an initializer: the initializer becomes its
		// default value (IR >= 4), which a feed may override; nothing feeds it here.
		init0 := fx.Model.Graph.Initializer[0]
		g.add(&Case{Name: "model/input-shadows-initializer", Kind: KindModel, Fixture: f, Unchanged: true, Mentions: []string{init0.GetName()},
			edit: func(w *Workspace) error {
				graph(w).Input = append(graph(w).Input, onnxio.ValueInfo(init0.GetName(), onnxio.DataType(init0.GetDataType()), init0.Dims))
				return nil
			}})
		// The same, with a wrong type declared for the shadowed initializer.
		g.add(&Case{Name: "model/input-shadows-initializer-mistyped", Kind: KindModel, Fixture: f, Mentions: []string{init0.GetName()},
			edit: func(w *Workspace) error {
				graph(w).Input = append(graph(w).Input, onnxio.ValueInfo(init0.GetName(), onnxio.TypeInt64, []int64{7}))
				return nil
			}})
		g.add(&Case{Name: "model/initializer-twice", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{init0.GetName()},
			edit: func(w *Workspace) error {
				dup := proto.Clone(graph(w).Initializer[0]).(*onnxpb.TensorProto)
				dup.RawData = make([]byte, len(dup.RawData))
				graph(w).Initializer = append(graph(w).Initializer, dup)
				return nil
			}})
		g.add(&Case{Name: "model/initializer-names-input", Kind: KindModel, Fixture: f, MustFail: true, Mentions: []string{in},
			edit: func(w *Workspace) error {
				dup := proto.Clone(graph(w).Initializer[0]).(*onnxpb.TensorProto)
				dup.Name = proto.String(in)
				graph(w).Initializer = append(graph(w).Initializer, dup)
				return nil
			}})
	}
}

// slowOnTransformer are model cases that run the whole chain, left out on the slowest
// fixture (the CNNs have them).
var slowOnTransformer = map[string]bool{"unknown-fields": true, "empty-node-names": true, "producer-garbage": true, "opset-twice": true}

// setOpset stamps the default domain's import with version v.
func setOpset(mp *onnxpb.ModelProto, v int64) {
	for _, o := range mp.OpsetImport {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			o.Version = proto.Int64(v)
		}
	}
}

// firstConsumer is the first node reading value name.
func firstConsumer(nodes []*onnxpb.NodeProto, name string) *onnxpb.NodeProto {
	for _, n := range nodes {
		for _, x := range n.Input {
			if x == name {
				return n
			}
		}
	}
	return nodes[0]
}

func nodeNames(nodes []*onnxpb.NodeProto) []string {
	var out []string
	for _, n := range nodes {
		if n.GetName() != "" {
			out = append(out, n.GetName())
		}
		out = append(out, n.Output...)
	}
	return out
}

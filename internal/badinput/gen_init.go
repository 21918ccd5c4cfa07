package badinput

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// initIndexes picks the initializers of a fixture that get initializer cases: every one
// of the MNIST CNN, a few of the others (a Conv weight, BatchNorm parameters, the last
// layer's).
func initIndexes(fx *Fixture) []int {
	inits := fx.Model.Graph.Initializer
	if fx.Name == "mnist" {
		idx := make([]int, len(inits))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	want := map[string]bool{"stem.0.weight": true, "stem.1.running_var": true, "layer2.shortcut.0.weight": true, "fc.bias": true,
		"onnx::MatMul_255": true, "encoder.layers.0.self_attn.in_proj_bias": true, "encoder.layers.0.norm1.weight": true, "classifier.weight": true}
	var idx []int
	for i, t := range inits {
		if want[t.GetName()] {
			idx = append(idx, i)
		}
	}
	return idx
}

// slowCases are the initializer cases that run the whole chain (the model stays
// valid): they run on the initializers fullChain picks, the others on all of them.
var slowCases = map[string]bool{
	"raw-and-float-data": true, "as-float-data": true, "dims-flat": true, "dims-leading-1": true, "dims-swapped": true,
	"type-double-converted": true, "ext-ok": true, "nan-one": true, "nan-all": true, "inf-one": true, "neg-inf-all": true,
	"denormal-all": true, "denormal-scaled": true, "zeros": true, "huge": true, "max-float": true, "negative": true,
}

// fullChain says whether initializer i of fx gets the cases that run the whole chain:
// the first Conv's weight and bias, a BatchNorm's scale and variance and the last
// layer's weight and bias of the MNIST CNN, one initializer of the others.
func fullChain(fx *Fixture, i int) bool {
	switch fx.Name {
	case "mnist":
		return i == 0 || i == 1 || i == 2 || i == 5 || i == 14 || i == 15
	case "resnet":
		return fx.Model.Graph.Initializer[i].GetName() == "stem.1.running_var"
	}
	return fx.Model.Graph.Initializer[i].GetName() == "encoder.layers.0.norm1.weight"
}

// consumers lists the nodes reading value name, and their outputs.
func consumers(g *onnxpb.GraphProto, name string) []string {
	var out []string
	for _, n := range g.Node {
		for _, x := range n.Input {
			if x == name {
				out = append(out, n.GetName())
				out = append(out, n.Output...)
				break
			}
		}
	}
	return out
}

// initializerCases break one initializer at a time: its data, shape, type and external
// data, and its values.
func (g *gen) initializerCases() {
	for _, f := range g.fixtureNames() {
		fx := g.fx[f]
		for _, i := range initIndexes(fx) {
			t0 := fx.Model.Graph.Initializer[i]
			name := t0.GetName()
			mentions := append([]string{name}, consumers(fx.Model.Graph, name)...)
			add := func(how string, must bool, extra []string, edit func(w *Workspace, t *onnxpb.TensorProto)) {
				if slowCases[how] && !fullChain(fx, i) {
					return
				}
				g.add(&Case{Name: fmt.Sprintf("i%d/%s", i, how), Kind: KindInitializer, Fixture: f, MustFail: must,
					Mentions: append(append([]string(nil), mentions...), extra...),
					edit:     func(w *Workspace) error { edit(w, w.Model.Graph.Initializer[i]); return nil }})
			}
			n := int64(len(t0.RawData) / 4)
			// A shape that fits the data but not the graph may be found where the
			// shapes meet, nodes further on.
			allNodes := nodeNames(fx.Model.Graph.Node)

			// The data.
			add("raw-truncated", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.RawData = t.RawData[:len(t.RawData)/2] })
			add("raw-one-byte-short", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.RawData = t.RawData[:len(t.RawData)-1] })
			add("raw-one-byte-long", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.RawData = append(t.RawData, 0) })
			add("raw-empty", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.RawData = nil })
			add("raw-and-float-data", false, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.FloatData = []float32{1, 2, 3} })
			add("float-data-short", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) {
				v := rawFloats(t)
				t.RawData, t.FloatData = nil, v[:len(v)-1]
			})
			add("as-float-data", false, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.FloatData, t.RawData = rawFloats(t), nil })
			add("as-int32-data", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) {
				t.Int32Data, t.RawData = make([]int32, n), nil
			})
			add("no-name", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Name = proto.String("") })
			add("renamed", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Name = proto.String("renamed_weight") })

			// The shape.
			add("dims-negative", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims[0] = -t.Dims[0] })
			add("dims-zero", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims[0] = 0 })
			add("dims-huge", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims[0] = 1 << 40 })
			add("dims-overflow", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) {
				t.Dims = []int64{1 << 32, 1 << 32, 1 << 32}
			})
			add("dims-scalar", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims = nil })
			add("dims-double", true, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims[0] *= 2 })
			// Same element count, other shape: flat, or with a leading 1.
			add("dims-flat", false, allNodes, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims = []int64{n} })
			add("dims-leading-1", false, allNodes, func(_ *Workspace, t *onnxpb.TensorProto) { t.Dims = append([]int64{1}, t.Dims...) })
			if len(t0.Dims) > 1 {
				add("dims-swapped", false, allNodes, func(_ *Workspace, t *onnxpb.TensorProto) {
					t.Dims[0], t.Dims[1] = t.Dims[1], t.Dims[0]
				})
			}

			// The type.
			for _, dt := range []struct {
				how  string
				dt   int32
				must bool
			}{
				{"type-double", int32(onnxio.TypeDouble), true}, // the raw bytes are too few
				{"type-int32", int32(onnxio.TypeInt32), true},   // the same size, another type
				{"type-float16", int32(onnxio.TypeFloat16), true},
				{"type-undefined", 0, true},
				{"type-99", 99, true},
				{"type-string", int32(onnxio.TypeString), true},
			} {
				add(dt.how, dt.must, nil, func(_ *Workspace, t *onnxpb.TensorProto) { t.DataType = proto.Int32(dt.dt) })
			}
			add("type-double-converted", false, nil, func(_ *Workspace, t *onnxpb.TensorProto) {
				v := rawFloats(t)
				d := make([]float64, len(v))
				for k, x := range v {
					d[k] = float64(x)
				}
				t.DataType, t.RawData, t.DoubleData = proto.Int32(int32(onnxio.TypeDouble)), nil, d
			})

			// External data: written beside the model as w.bin.
			ext := func(w *Workspace, t *onnxpb.TensorProto, location string, offset, length int64) {
				w.Files["w.bin"] = t.RawData
				t.RawData = nil
				t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
				t.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(location)}}
				if offset >= 0 {
					t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(offset, 10))})
				}
				if length >= 0 {
					t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(length, 10))})
				}
			}
			size := int64(len(t0.RawData))
			if fullChain(fx, i) {
				g.add(&Case{Name: fmt.Sprintf("i%d/ext-ok", i), Kind: KindInitializer, Fixture: f, Unchanged: true, Mentions: mentions,
					edit: func(w *Workspace) error { ext(w, w.Model.Graph.Initializer[i], "w.bin", 0, size); return nil }})
			}
			add("ext-missing", true, []string{"missing.bin"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "missing.bin", -1, -1)
				delete(w.Files, "w.bin")
			})
			add("ext-past-end", true, []string{"w.bin"}, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, "w.bin", size, size) })
			add("ext-offset-huge", true, []string{"w.bin"}, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, "w.bin", math.MaxInt64-2, 4) })
			add("ext-length-short", true, []string{"w.bin"}, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, "w.bin", 0, size/2) })
			add("ext-file-short", true, []string{"w.bin"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "w.bin", -1, -1)
				w.Files["w.bin"] = w.Files["w.bin"][:size/2]
			})
			add("ext-offset-text", true, []string{"w.bin", "offset"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "w.bin", -1, -1)
				t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String("offset"), Value: proto.String("four")})
			})
			add("ext-offset-negative", true, []string{"w.bin", "offset"}, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, "w.bin", -1, -1); setExt(t, "offset", "-4") })
			add("ext-no-location", true, nil, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "w.bin", -1, -1)
				t.ExternalData = nil
			})
			add("ext-outside-folder", true, []string{"../w.bin"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "../w.bin", -1, -1)
				w.ModelFile = "m/model.onnx"
				w.Config.Model = "m/model.onnx"
			})
			add("ext-absolute", true, []string{"/etc/passwd"}, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, "/etc/passwd", -1, -1) })
			add("ext-symlink-outside", true, []string{"link.bin"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "link.bin", -1, -1)
				w.ModelFile = "m/model.onnx"
				w.Config.Model = "m/model.onnx"
				w.Links["m/link.bin"] = "../w.bin"
			})
			add("ext-fifo", true, []string{"w.fifo"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "w.fifo", -1, -1)
				w.FIFOs = append(w.FIFOs, "w.fifo")
			})
			add("ext-folder", true, []string{"sub"}, func(w *Workspace, t *onnxpb.TensorProto) {
				ext(w, t, "sub", -1, -1)
				w.Dirs = append(w.Dirs, "sub")
			})
			add("ext-model-itself", true, []string{"model.onnx"}, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, "model.onnx", -1, -1) })
			add("ext-location-empty-dir", true, nil, func(w *Workspace, t *onnxpb.TensorProto) { ext(w, t, ".", -1, -1) })

			// The values: a correct result or a clear error (verify judges it against
			// the model itself, whose outputs may be NaN too).
			values := []struct {
				how string
				f   func(k int, x float32) float32
			}{
				{"nan-one", func(k int, x float32) float32 { return pick(k == 0, float32(math.NaN()), x) }},
				{"nan-all", func(int, float32) float32 { return float32(math.NaN()) }},
				{"inf-one", func(k int, x float32) float32 { return pick(k == 0, float32(math.Inf(1)), x) }},
				{"neg-inf-all", func(int, float32) float32 { return float32(math.Inf(-1)) }},
				{"denormal-all", func(int, float32) float32 { return 1e-40 }},
				{"denormal-scaled", func(_ int, x float32) float32 { return x * 1e-39 }},
				{"zeros", func(int, float32) float32 { return 0 }},
				{"huge", func(_ int, x float32) float32 { return x * 1e36 }},
				{"max-float", func(k int, x float32) float32 { return pick(k%2 == 0, math.MaxFloat32, -math.MaxFloat32) }},
				{"negative", func(_ int, x float32) float32 { return -float32(math.Abs(float64(x))) - 1 }},
			}
			for _, v := range values {
				add(v.how, false, []string{fx.OutputName}, func(_ *Workspace, t *onnxpb.TensorProto) {
					d := rawFloats(t)
					for k := range d {
						d[k] = v.f(k, d[k])
					}
					t.RawData = float32Bytes(d)
				})
			}
		}
	}
}

func setExt(t *onnxpb.TensorProto, key, value string) {
	t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(key), Value: proto.String(value)})
}

func pick(c bool, a, b float32) float32 {
	if c {
		return a
	}
	return b
}

// rawFloats decodes a float tensor's raw_data.
func rawFloats(t *onnxpb.TensorProto) []float32 {
	v, err := onnxio.TensorFloat32s(t)
	if err != nil {
		panic(err)
	}
	return v
}

package quantize

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// opsetCase is a one-op model at an old opset; UpgradeOpset must keep its function.
type opsetCase struct {
	name  string
	opset int64
	shape []int64 // of input x
	build func(b *onnxio.Builder, x string) string
}

func opsetCases() []opsetCase {
	x4 := []int64{2, 3, 4, 5}
	return []opsetCase{
		{"Slice attributes", 9, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Slice", []string{x}, onnxio.AttrInts("starts", 0, 1), onnxio.AttrInts("ends", 2, 4), onnxio.AttrInts("axes", 2, 3))
		}},
		{"Slice without axes", 9, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Slice", []string{x}, onnxio.AttrInts("starts", 1), onnxio.AttrInts("ends", 2))
		}},
		{"TopK k", 9, x4, func(b *onnxio.Builder, x string) string {
			return b.Node("TopK", []string{x}, 2, onnxio.AttrInt("k", 2))[0]
		}},
		{"Clip min max", 10, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Clip", []string{x}, onnxio.AttrFloat("min", -0.5), onnxio.AttrFloat("max", 0.25))
		}},
		{"Clip unbounded", 10, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Clip", []string{x})
		}},
		{"Pad constant", 10, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Pad", []string{x}, onnxio.AttrInts("pads", 0, 0, 1, 2, 0, 0, 2, 1), onnxio.AttrFloat("value", 1.5))
		}},
		{"Dropout ratio", 10, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Dropout", []string{x}, onnxio.AttrFloat("ratio", 0.3))
		}},
		{"Squeeze axes", 12, []int64{2, 1, 4, 1}, func(b *onnxio.Builder, x string) string {
			return b.Op("Squeeze", []string{x}, onnxio.AttrInts("axes", 1, 3))
		}},
		{"Unsqueeze axes", 12, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Unsqueeze", []string{x}, onnxio.AttrInts("axes", 0))
		}},
		{"ReduceSum axes", 12, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("ReduceSum", []string{x}, onnxio.AttrInts("axes", 1, 2), onnxio.AttrInt("keepdims", 0))
		}},
		{"Split sizes", 12, x4, func(b *onnxio.Builder, x string) string {
			return b.Node("Split", []string{x}, 2, onnxio.AttrInt("axis", 3), onnxio.AttrInts("split", 2, 3))[1]
		}},
		{"Softmax last axis", 12, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Softmax", []string{x}, onnxio.AttrInt("axis", 3))
		}},
		{"BatchNormalization legacy attributes", 8, x4, func(b *onnxio.Builder, x string) string {
			p := func(name string, v float32) string {
				return b.Initializer(name, onnxio.NewTensor([]int64{3}, []float32{v, v + 0.5, v + 1}))
			}
			return b.Op("BatchNormalization", []string{x, p("s", 1), p("b", 0), p("m", 0.1), p("v", 1)}, onnxio.AttrInt("spatial", 1))
		}},
	}
}

// Every rewrite UpgradeOpset does computes what the old op computed: onnxruntime runs the
// model at its own opset and at 17 on the same input.
func TestUpgradeOpsetKeepsFunction(t *testing.T) {
	for _, c := range opsetCases() {
		t.Run(c.name, func(t *testing.T) {
			b := onnxio.NewBuilder(c.opset)
			x := b.Input("x", onnxio.TypeFloat, c.shape)
			b.Output(c.build(b, x), onnxio.TypeFloat, nil)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			feed := randomFeed(rand.New(rand.NewPCG(5, 6)), "x", c.shape)
			want := runAll(t, m, feed)
			if err := UpgradeOpset(m, 17); err != nil {
				t.Fatalf("UpgradeOpset: %v", err)
			}
			if m.Opset("") != 17 {
				t.Fatalf("opset %d after the upgrade", m.Opset(""))
			}
			if err := onnxio.Check(m); err != nil {
				t.Fatalf("the upgraded model does not check: %v", err)
			}
			got := runAll(t, m, feed)
			for name, w := range want {
				g := got[name]
				if len(g) != len(w) {
					t.Fatalf("output %s: %d values after the upgrade, %d before", name, len(g), len(w))
				}
				for i := range w {
					if g[i] != w[i] {
						t.Fatalf("output %s[%d] = %g after the upgrade, %g before", name, i, g[i], w[i])
					}
				}
			}
		})
	}
}

// Malformed nodes and a missing opset import are errors that name the problem, never a
// panic.
func TestUpgradeOpsetMalformed(t *testing.T) {
	cases := map[string]struct {
		opset int64
		edit  func(b *onnxio.Builder, g *onnxpb.GraphProto)
		want  string
	}{
		"Slice without outputs": {9, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			b.Node("Slice", []string{"x"}, 0, onnxio.AttrInts("starts", 0), onnxio.AttrInts("ends", 1))
		}, "no output"},
		"Clip without outputs": {10, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			b.Node("Clip", []string{"x"}, 0, onnxio.AttrFloat("min", 0))
		}, "no output"},
		"Softmax without inputs": {12, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			b.Op("Softmax", nil)
		}, "no data input"},
		"TopK with an empty input": {9, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			b.Node("TopK", []string{""}, 2, onnxio.AttrInt("k", 1))
		}, "no data input"},
		"TopK without k": {9, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			b.Node("TopK", []string{"x"}, 2)
		}, "TopK without k"},
		"Upsample": {9, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			b.Op("Upsample", []string{"x", "x"})
		}, "re-export the model with Resize"},
		"no opset import": {9, func(b *onnxio.Builder, g *onnxpb.GraphProto) {}, "imports no opset of the default domain"},
		"opset 6":         {6, func(b *onnxio.Builder, g *onnxpb.GraphProto) {}, "too old"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := onnxio.NewBuilder(c.opset)
			b.Input("x", onnxio.TypeFloat, []int64{2, 3})
			c.edit(b, b.Graph())
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			if name == "no opset import" {
				m.Proto.OpsetImport = nil
			}
			err = UpgradeOpset(m, 17)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("UpgradeOpset: %v; want an error containing %q", err, c.want)
			}
		})
	}
}

package quantize

import (
	"fmt"
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
	cases := []opsetCase{
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
		{"Softmax coerced to 2-D at axis 1", 12, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Softmax", []string{x}, onnxio.AttrInt("axis", 1))
		}},
		{"LogSoftmax default axis, input rank unknown", 9, []int64{2, 5, 7}, func(b *onnxio.Builder, x string) string {
			return b.Op("LogSoftmax", []string{b.Op("Abs", []string{x})})
		}},
		{"Hardmax coerced at axis 2", 10, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Hardmax", []string{x}, onnxio.AttrInt("axis", 2))
		}},
		{"Softmax at a negative axis, not the last", 11, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("Softmax", []string{x}, onnxio.AttrInt("axis", -2))
		}},
		{"BatchNormalization legacy attributes", 8, x4, func(b *onnxio.Builder, x string) string {
			p := func(name string, v float32) string {
				return b.Initializer(name, onnxio.NewTensor([]int64{3}, []float32{v, v + 0.5, v + 1}))
			}
			return b.Op("BatchNormalization", []string{x, p("s", 1), p("b", 0), p("m", 0.1), p("v", 1)}, onnxio.AttrInt("spatial", 1))
		}},
		{"BatchNormalization in training mode", 9, x4, func(b *onnxio.Builder, x string) string {
			p := func(name string, v float32) string {
				return b.Initializer(name, onnxio.NewTensor([]int64{3}, []float32{v, v + 0.5, v + 1}))
			}
			return b.Node("BatchNormalization", []string{x, p("s", 1), p("b", 0), p("m", 0.1), p("v", 1)}, 5)[0]
		}},
		{"RoiAlign default coordinates", 10, []int64{1, 2, 6, 6}, func(b *onnxio.Builder, x string) string {
			rois := b.Initializer("rois", onnxio.NewTensor([]int64{2, 4}, []float32{0, 0, 3.5, 4, 1, 0.5, 5, 5.5}))
			idx := b.Initializer("idx", onnxio.NewTensor([]int64{2}, []int64{0, 0}))
			return b.Op("RoiAlign", []string{x, rois, idx}, onnxio.AttrInt("output_height", 2), onnxio.AttrInt("output_width", 3), onnxio.AttrInt("sampling_ratio", 2))
		}},
		{"ReduceMean axes at 12", 12, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("ReduceMean", []string{x}, onnxio.AttrInts("axes", 1, 3), onnxio.AttrInt("keepdims", 0))
		}},
		{"ReduceMean without axes", 17, x4, func(b *onnxio.Builder, x string) string {
			return b.Op("ReduceMean", []string{x})
		}},
		{"Split equal parts", 12, []int64{2, 3, 4, 6}, func(b *onnxio.Builder, x string) string {
			return b.Node("Split", []string{x}, 3, onnxio.AttrInt("axis", 3))[2]
		}},
		{"Split equal parts at 17", 17, []int64{2, 3, 4, 6}, func(b *onnxio.Builder, x string) string {
			return b.Node("Split", []string{x}, 2, onnxio.AttrInt("axis", -1))[1]
		}},
		{"Split sizes at 17", 17, x4, func(b *onnxio.Builder, x string) string {
			split := b.Initializer("split", onnxio.NewTensor([]int64{2}, []int64{1, 3}))
			return b.Node("Split", []string{x, split}, 2, onnxio.AttrInt("axis", 2))[1]
		}},
		{"DFT axis", 17, []int64{2, 8, 3, 1}, func(b *onnxio.Builder, x string) string {
			return b.Op("DFT", []string{x}, onnxio.AttrInt("axis", 2))
		}},
		{"DFT default axis", 17, []int64{2, 8, 3, 1}, func(b *onnxio.Builder, x string) string {
			return b.Op("DFT", []string{x}, onnxio.AttrInt("onesided", 1))
		}},
		{"GridSample bilinear", 16, []int64{1, 2, 4, 5}, func(b *onnxio.Builder, x string) string {
			return b.Op("GridSample", []string{x, grid(b)}, onnxio.AttrString("mode", "bilinear"), onnxio.AttrInt("align_corners", 1))
		}},
		{"GridSample bicubic", 16, []int64{1, 2, 4, 5}, func(b *onnxio.Builder, x string) string {
			return b.Op("GridSample", []string{x, grid(b)}, onnxio.AttrString("mode", "bicubic"), onnxio.AttrString("padding_mode", "border"))
		}},
		{"GridSample default mode", 16, []int64{1, 2, 4, 5}, func(b *onnxio.Builder, x string) string {
			return b.Op("GridSample", []string{x, grid(b)})
		}},
		{"GroupNormalization per group", 18, []int64{2, 6, 3, 4}, func(b *onnxio.Builder, x string) string {
			scale := b.Initializer("scale", onnxio.NewTensor([]int64{3}, []float32{1, 0.5, 2}))
			bias := b.Initializer("bias", onnxio.NewTensor([]int64{3}, []float32{0, -1, 0.25}))
			return b.Op("GroupNormalization", []string{x, scale, bias}, onnxio.AttrInt("num_groups", 3))
		}},
		{"GroupNormalization a channel a group", 18, []int64{2, 3, 4, 5}, func(b *onnxio.Builder, x string) string {
			scale := b.Initializer("scale", onnxio.NewTensor([]int64{3}, []float32{1, 0.5, 2}))
			bias := b.Initializer("bias", onnxio.NewTensor([]int64{3}, []float32{0, -1, 0.25}))
			return b.Op("GroupNormalization", []string{x, scale, bias}, onnxio.AttrInt("num_groups", 3))
		}},
	}
	// Each op that took axes as an attribute up to 17, at 17 (and ReduceLogSum on
	// positive values).
	for _, op := range []string{"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"} {
		cases = append(cases, opsetCase{op + " axes", 17, x4, func(b *onnxio.Builder, x string) string {
			return b.Op(op, []string{b.Op("Abs", []string{x})}, onnxio.AttrInts("axes", 0, 2), onnxio.AttrInt("keepdims", 1))
		}})
	}
	return cases
}

// grid is a GridSample grid [1, 3, 2, 2] of points inside and outside [-1, 1].
func grid(b *onnxio.Builder) string {
	return b.Initializer("grid", onnxio.NewTensor([]int64{1, 3, 2, 2}, []float32{
		-1, -1, 0.3, -0.7, 1.2, 0.1, -0.25, 0.5, 0.9, 0.9, 0, -1.1}))
}

// upgradeTargets are the opsets TestUpgradeOpsetKeepsFunction upgrades each case to
// (those above the case's own): the last version before 18's Reduce* change, 18, and the
// highest UpgradeOpset supports.
var upgradeTargets = []int64{17, 18, 20, 21}

// Every rewrite UpgradeOpset does computes what the old op computed: onnxruntime runs the
// model at its own opset and at each of upgradeTargets above it on the same input.
func TestUpgradeOpsetKeepsFunction(t *testing.T) {
	for _, c := range opsetCases() {
		for _, to := range upgradeTargets {
			if to <= c.opset {
				continue
			}
			t.Run(fmt.Sprintf("%s/%d to %d", c.name, c.opset, to), func(t *testing.T) {
				upgradeKeepsFunction(t, c, to)
			})
		}
	}
}

// upgradeKeepsFunction builds c, runs it, upgrades it to opset to and runs it again.
func upgradeKeepsFunction(t *testing.T, c opsetCase, to int64) {
	b := onnxio.NewBuilder(c.opset)
	x := b.Input("x", onnxio.TypeFloat, c.shape)
	b.Output(c.build(b, x), onnxio.TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	feed := randomFeed(rand.New(rand.NewPCG(5, 6)), "x", c.shape)
	want := runAll(t, m, feed)
	if err := UpgradeOpset(m, to); err != nil {
		t.Fatalf("UpgradeOpset: %v", err)
	}
	if m.Opset("") != to {
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
		"BatchNormalization whose saved_mean is read": {9, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			p := b.Initializer("p", onnxio.NewTensor([]int64{3}, []float32{1, 2, 3}))
			outs := b.Node("BatchNormalization", []string{"x", p, p, p, p}, 5)
			b.Output(outs[3], onnxio.TypeFloat, nil)
		}, `output "BatchNormalization_out3" of the BatchNormalization is saved_mean or saved_var`},
		"GroupNormalization with a computed scale": {18, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			p := b.Initializer("p", onnxio.NewTensor([]int64{1}, []float32{1}))
			b.Op("GroupNormalization", []string{"x", b.Op("Abs", []string{p}), p}, onnxio.AttrInt("num_groups", 1))
		}, `upgrading it needs scale "Abs_out0" to be a constant`},
		"GroupNormalization with unknown channels": {18, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			p := b.Initializer("p", onnxio.NewTensor([]int64{1}, []float32{1}))
			b.Op("GroupNormalization", []string{b.Op("Abs", []string{"x"}), p, p}, onnxio.AttrInt("num_groups", 1))
		}, `needs the channel count (dimension 1 of input "Abs_out0")`},
		"GroupNormalization with a scale of the wrong length": {18, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			p := b.Initializer("p", onnxio.NewTensor([]int64{3}, []float32{1, 2, 3}))
			b.Op("GroupNormalization", []string{"x", p, p}, onnxio.AttrInt("num_groups", 1))
		}, `has shape [3], not [num_groups] = [1]`},
		"GroupNormalization without num_groups": {18, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			p := b.Initializer("p", onnxio.NewTensor([]int64{1}, []float32{1}))
			b.Op("GroupNormalization", []string{"x", p, p})
		}, "without a positive num_groups"},
		"GroupNormalization without bias": {18, func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			p := b.Initializer("p", onnxio.NewTensor([]int64{1}, []float32{1}))
			b.Op("GroupNormalization", []string{"x", p}, onnxio.AttrInt("num_groups", 1))
		}, "needs scale and bias"},
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
			to := int64(17)
			if c.opset >= 17 {
				to = 21 // the cases of ops that changed after 17
			}
			err = UpgradeOpset(m, to)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("UpgradeOpset: %v; want an error containing %q", err, c.want)
			}
		})
	}
}

package fp16

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// TestFoldShapesFixtures folds each fixture's shape arithmetic and checks onnxruntime
// gives the same outputs (bit for bit: only int64 shape values change) at several batch
// sizes, so the -1 put in Reshape targets really follows the dynamic axis.
func TestFoldShapesFixtures(t *testing.T) {
	initORT(t)
	for _, f := range fixtures {
		orig := f.load(t)
		m := orig.Clone()
		rep, err := FoldShapes(m)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		mustCheck(t, m)
		t.Logf("%-16s %s; nodes %d -> %d", f.name, rep, len(orig.Graph().GetNode()), len(m.Graph().GetNode()))
		for _, batch := range []int64{1, 3, 7} {
			ff := f
			ff.shape = append([]int64{batch}, f.shape[1:]...)
			feeds := map[string]*onnxio.Tensor{"input": ff.input(uint64(batch))}
			want, err := runModel(orig, feeds, ort.Options{Optimization: "none"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := runModel(m, feeds, ort.Options{Optimization: "none"})
			if err != nil {
				t.Fatalf("%s batch %d: folded model: %v", f.name, batch, err)
			}
			if s, err := compareOutputs(want, got); err != nil || !math.IsInf(s, 1) {
				t.Errorf("%s batch %d: folded model differs: SQNR %.1f dB, %v", f.name, batch, s, err)
			}
		}
		if f.name == "tiny_transformer" {
			ops := map[string]int{}
			for _, n := range m.Graph().GetNode() {
				ops[n.GetOpType()]++
				if tp, ok := onnxio.ConstantNodeTensor(n); ok && onnxio.DataType(tp.GetDataType()) == onnxio.TypeInt64 {
					ops["int64 Constant"]++
				}
			}
			for _, op := range []string{"Shape", "Gather", "Unsqueeze", "Concat"} {
				if ops[op] != 0 {
					t.Errorf("tiny_transformer: %d %s nodes left after folding", ops[op], op)
				}
			}
			if ops["int64 Constant"] > 4 { // Slice starts and axes
				t.Errorf("tiny_transformer: %d int64 Constant nodes left after folding", ops["int64 Constant"])
			}
			if rep.ReshapesFolded != 10 || rep.BytesAfter >= rep.BytesBefore {
				t.Errorf("tiny_transformer: %s", rep)
			}
		}
	}
}

// TestFoldShapesThenConvert is the float16 stage's default path (fold_shapes, then
// Convert with float32 inputs and outputs) on the fixtures: the size ratio against the
// original file and the SQNR against the float32 model.
func TestFoldShapesThenConvert(t *testing.T) {
	initORT(t)
	bounds := map[string]float64{"mnist_cnn": 0.51, "resnet_small": 0.515, "tiny_transformer": 0.51}
	for _, f := range fixtures {
		orig := f.load(t)
		before, _ := orig.Bytes()
		m := orig.Clone()
		if _, err := FoldShapes(m); err != nil {
			t.Fatal(err)
		}
		rep, err := Convert(m, Options{KeepIOTypes: true})
		if err != nil {
			t.Fatal(err)
		}
		mustCheck(t, m)
		after, _ := m.Bytes()
		ratio := float64(len(after)) / float64(len(before))
		feeds := map[string]*onnxio.Tensor{"input": f.input(5)}
		want, err := runModel(orig, feeds, ort.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := runModel(m, feeds, ort.Options{})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		s, err := compareOutputs(want, got)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-16s %d -> %d bytes (%.3fx), SQNR %.1f dB, %d nodes kept float32", f.name, len(before), len(after), ratio, s, len(rep.Kept))
		if ratio > bounds[f.name] {
			t.Errorf("%s: size ratio %.4f > %.3f", f.name, ratio, bounds[f.name])
		}
		if s < 40 {
			t.Errorf("%s: SQNR %.1f dB < 40", f.name, s)
		}
	}
}

// reshapeModel is x [dims...] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), rest))
// followed by Relu: the PyTorch pattern for a target that follows the first dimension.
func reshapeModel(t *testing.T, dims []int64, names []string, rest []int64, allowzero int64) *onnxio.Model {
	t.Helper()
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, dims, names...)
	sh := b.Op("Shape", []string{x})
	idx := b.Initializer("zero", onnxio.NewTensor([]int64{}, []int64{0}))
	d0 := b.Op("Gather", []string{sh, idx}, onnxio.AttrInt("axis", 0))
	axes := b.Initializer("axes", onnxio.NewTensor([]int64{1}, []int64{0}))
	u := b.Op("Unsqueeze", []string{d0, axes})
	r := b.Initializer("rest", onnxio.NewTensor([]int64{int64(len(rest))}, rest))
	target := b.Op("Concat", []string{u, r}, onnxio.AttrInt("axis", 0))
	y := b.Op("Reshape", []string{x, target}, onnxio.AttrInt("allowzero", allowzero))
	b.Node("Relu", []string{y}, 1)
	g := b.Graph()
	g.Node[len(g.Node)-1].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFoldShapesReshape(t *testing.T) {
	initORT(t)
	cases := []struct {
		name      string
		dims      []int64
		dimNames  []string
		rest      []int64
		allowzero int64
		folded    int // Reshape targets folded
	}{
		{"dynamic batch", []int64{-1, 6}, []string{"n", ""}, []int64{2, 3}, 0, 1},
		{"static", []int64{4, 6}, nil, []int64{2, 3}, 0, 0}, // the whole target is a value
		{"known -1 in target", []int64{-1, 6}, []string{"n", ""}, []int64{-1, 3}, 0, 0},
		{"allowzero", []int64{-1, 6}, []string{"n", ""}, []int64{2, 3}, 1, 0},
		{"unknown rank", nil, nil, []int64{2, 3}, 0, 0},
	}
	for _, c := range cases {
		m := reshapeModel(t, c.dims, c.dimNames, c.rest, c.allowzero)
		orig := m.Clone()
		rep, err := FoldShapes(m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		mustCheck(t, m)
		if rep.ReshapesFolded != c.folded {
			t.Errorf("%s: %d Reshape targets folded, want %d (%s)", c.name, rep.ReshapesFolded, c.folded, rep)
		}
		static := c.dims != nil && c.dims[0] > 0
		if static && rep.ValuesFolded == 0 {
			t.Errorf("%s: a static shape was not folded (%s)", c.name, rep)
		}
		for _, n := range []int64{1, 4} {
			if static && n != c.dims[0] {
				continue
			}
			feeds := map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{n, 6}, normalData(rand.New(rand.NewPCG(uint64(n), 2)), int(n)*6))}
			want, err1 := runModel(orig, feeds, ort.Options{Optimization: "none"})
			got, err2 := runModel(m, feeds, ort.Options{Optimization: "none"})
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v / %v", c.name, err1, err2)
			}
			if !reflect.DeepEqual(want["y"], got["y"]) {
				t.Errorf("%s, %d rows: folded model gives %v, want %v", c.name, n, got["y"].Shape, want["y"].Shape)
			}
		}
	}
}

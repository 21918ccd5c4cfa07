package quantize

import (
	"math/rand/v2"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

func evalNoInputs(m *onnxio.Model) (map[string]*onnxio.Tensor, error) {
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(data, ort.Options{Optimization: "none"})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(map[string]*onnxio.Tensor{})
}

func prepared(t *testing.T, path string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(m, PrepareOptions{FoldBatchNorm: true, FoldConstants: true, ConstantsToInitializers: true, MinOpset: 13, Eval: evalNoInputs}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStaticFixtures(t *testing.T) {
	for _, tc := range []struct {
		path  string
		shape []int64
		min   float64 // dB
	}{
		{"../testdata/models/mnist_cnn.onnx", []int64{8, 1, 28, 28}, 25},
		{"../testdata/models/resnet_small.onnx", []int64{8, 3, 32, 32}, 20},
		{"../testdata/models/tiny_transformer.onnx", []int64{8, 16, 32}, 20},
	} {
		t.Run(tc.path, func(t *testing.T) {
			m := prepared(t, tc.path)
			feeds := randomFeeds(rand.New(rand.NewPCG(1, 2)), 4, tc.shape)
			table := minmaxTable(t, m, feeds)
			fm := m.Clone()
			res, err := Static(m, table, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			ref := session(t, fm, "all")
			cand := session(t, m, "all")
			for _, feed := range feeds {
				a, err := ref.Run(feed)
				if err != nil {
					t.Fatal(err)
				}
				b, err := cand.Run(feed)
				if err != nil {
					t.Fatal(err)
				}
				got := sqnr(a["logits"].Data.([]float32), b["logits"].Data.([]float32))
				if got < tc.min {
					t.Errorf("SQNR %.1f dB < %.1f", got, tc.min)
				}
				t.Logf("SQNR %.1f dB", got)
			}
		})
	}
}

// optimized returns onnxruntime's optimized graph of m.
func optimized(t *testing.T, m *onnxio.Model) *onnxio.Model {
	t.Helper()
	out := t.TempDir() + "/opt.onnx"
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Optimization: "all", OptimizedModelPath: out})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	om, err := onnxio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	return om
}

// TestFusion checks the point of the QDQ placement: onnxruntime runs every quantized
// Conv, Gemm and MatMul of the fixtures as an int8 kernel.
func TestFusion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []int64
	}{
		{"mnist_cnn", []int64{2, 1, 28, 28}},
		{"resnet_small", []int64{2, 3, 32, 32}},
		{"tiny_transformer", []int64{2, 16, 32}},
	} {
		m := prepared(t, "../testdata/models/"+tc.name+".onnx")
		table := minmaxTable(t, m, []map[string]*onnxio.Tensor{randomFeed(rand.New(rand.NewPCG(3, 4)), "input", tc.shape)})
		res, err := Static(m, table, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		f := FusionReport(res, m, optimized(t, m))
		if f.Ratio != 1 || len(f.Float) != 0 {
			t.Errorf("%s: fusion %+v", tc.name, f)
		}
	}
}

func TestDynamicFixtures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []int64
		ops   string
	}{
		{"mnist_cnn", []int64{4, 1, 28, 28}, "Gemm"},
		{"tiny_transformer", []int64{4, 16, 32}, "MatMul"},
	} {
		m := prepared(t, "../testdata/models/"+tc.name+".onnx")
		ref := session(t, m.Clone(), "all")
		opts := DefaultOptions()
		res, err := Dynamic(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Quantized[tc.ops] == 0 {
			t.Fatalf("%s: nothing quantized: %+v", tc.name, res)
		}
		f := FusionReport(res, m, optimized(t, m))
		if f.Ratio != 1 {
			t.Errorf("%s: dynamic fusion %+v", tc.name, f)
		}
		cand := session(t, m, "all")
		feed := randomFeed(rand.New(rand.NewPCG(5, 6)), "input", tc.shape)
		a, _ := ref.Run(feed)
		b, err := cand.Run(feed)
		if err != nil {
			t.Fatal(err)
		}
		if got := sqnr(a["logits"].Data.([]float32), b["logits"].Data.([]float32)); got < 30 {
			t.Errorf("%s: dynamic SQNR %.1f dB", tc.name, got)
		}
	}
}

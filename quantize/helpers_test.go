package quantize

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/calibrate/collect"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

func session(t testing.TB, m *onnxio.Model, opt string) *ort.Session {
	t.Helper()
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Optimization: opt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// minmaxTable calibrates m with calibrate.Collect (minmax) on the feeds, written as an
// npy dataset whose batches are the feeds.
func minmaxTable(tb testing.TB, m *onnxio.Model, feeds []map[string]*onnxio.Tensor) *calibrate.Table {
	tb.Helper()
	spec, err := testutil.NPYDataset(tb.TempDir(), feeds)
	if err != nil {
		tb.Fatal(err)
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(m))
	if err != nil {
		tb.Fatal(err)
	}
	defer ds.Close()
	st, err := collect.Run(context.Background(), m, ds, collect.Options{Method: calibrate.MinMax, Optimization: "none"})
	if err != nil {
		tb.Fatal(err)
	}
	return st.Table
}

func randomFeed(rng *rand.Rand, name string, shape []int64) map[string]*onnxio.Tensor {
	return testutil.RandomFeed(rng, name, shape)
}

// sqnr is 10 log10(Σref² / Σ(ref-cand)²) in dB.
func sqnr(ref, cand []float32) float64 {
	var s, e float64
	for i := range ref {
		d := float64(ref[i] - cand[i])
		s += float64(ref[i]) * float64(ref[i])
		e += d * d
	}
	if e == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s/e)
}

// randomFeeds is n random feeds of the input "input" of this shape.
func randomFeeds(rng *rand.Rand, n int, shape []int64) []map[string]*onnxio.Tensor {
	var feeds []map[string]*onnxio.Tensor
	for range n {
		feeds = append(feeds, randomFeed(rng, "input", shape))
	}
	return feeds
}

package calibrate_test

import (
	"context"
	"math"
	"testing"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// TestCollectSplitPasses: one pass (its probe batch reused) and a pass per tensor (the
// extra outputs bounded to a few bytes) give the same table; progress counts every
// sample of every pass; the input's minmax range is the data's.
func TestCollectSplitPasses(t *testing.T) {
	m, err := onnxio.Load("../testdata/models/resnet_small.onnx")
	if err != nil {
		t.Fatal(err)
	}
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{"input": "../testdata/models/resnet_small.input.npy"}, Batch: 3}
	for _, method := range []calibrate.Method{calibrate.MinMax, calibrate.Percentile} {
		var tables []*calibrate.Table
		for _, maxBytes := range []int64{0, 1} {
			ds, err := dataset.Open(spec, dataset.InputsOf(m))
			if err != nil {
				t.Fatal(err)
			}
			var done, total int
			st, err := calibrate.Collect(context.Background(), m, ds, calibrate.CollectOptions{Method: method, MaxPassBytes: maxBytes,
				Progress: func(d, n int) { done, total = d, n }})
			ds.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantPasses := 1
			if maxBytes == 1 {
				wantPasses = len(st.Table.Tensors)
			}
			if st.Passes != wantPasses || done != 4*wantPasses || total != done || st.Table.Samples != 4 {
				t.Errorf("%s max %d: %d passes (want %d), progress %d/%d, %d samples", method, maxBytes, st.Passes, wantPasses, done, total, st.Table.Samples)
			}
			tables = append(tables, st.Table)
		}
		// Equal but for float rounding: onnxruntime fuses differently when other values
		// are exposed (a Conv with its BatchNormalization, say), which moves the last bits.
		if len(tables[0].Tensors) != len(tables[1].Tensors) {
			t.Fatalf("%s: %d tensors, split %d", method, len(tables[0].Tensors), len(tables[1].Tensors))
		}
		for name, a := range tables[0].Tensors {
			b := tables[1].Tensors[name]
			if b == nil || a.Count != b.Count || a.NonFinite != b.NonFinite || !near(a.Min, b.Min) || !near(a.Max, b.Max) ||
				!near(float32(a.Mean), float32(b.Mean)) || !near(float32(a.Std), float32(b.Std)) {
				t.Errorf("%s: %s is %+v, split %+v", method, name, a, b)
			}
		}
		if method == calibrate.MinMax {
			ds, _ := dataset.Open(&dataset.Spec{Format: "npy", Inputs: spec.Inputs, Batch: 4}, dataset.InputsOf(m))
			lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
			for b, err := range ds.Batches() {
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range b.Inputs["input"].Data.([]float32) {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
			ds.Close()
			if r := tables[0].Tensors["input"]; r.Min != lo || r.Max != hi || r.Count != 4*3*32*32 {
				t.Errorf("input range %+v, data [%g, %g]", r, lo, hi)
			}
		}
	}
}

// near compares to a relative 1e-5 (float32 rounding of differently fused kernels).
func near(a, b float32) bool {
	return math.Abs(float64(a-b)) <= 1e-5*math.Max(1, math.Max(math.Abs(float64(a)), math.Abs(float64(b))))
}

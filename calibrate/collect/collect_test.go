package collect_test

import (
	"context"
	"math"
	"testing"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/calibrate/collect"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// TestCollectSplitPasses: one pass (its probe batch reused) and a pass per tensor (the
// extra outputs bounded to a few bytes) give the same table; progress counts every
// sample of every pass; the input's minmax range is the data's.
func TestCollectSplitPasses(t *testing.T) {
	m, err := onnxio.Load("../../testdata/models/resnet_small.onnx")
	if err != nil {
		t.Fatal(err)
	}
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{"input": "../../testdata/models/resnet_small.input.npy"}, Batch: 3}
	for _, method := range []calibrate.Method{calibrate.MinMax, calibrate.Percentile} {
		var tables []*calibrate.Table
		for _, maxBytes := range []int64{0, 1} {
			ds, err := dataset.Open(spec, dataset.InputsOf(m))
			if err != nil {
				t.Fatal(err)
			}
			var done, total int
			st, err := collect.Run(context.Background(), m, ds, collect.Options{Method: method, MaxPassBytes: maxBytes,
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

// TestCollectAliases: an alias is not exposed, and its entry is its source's range with
// alias_of set; aliases that are not activations, or whose source is not measured, are
// refused.
func TestCollectAliases(t *testing.T) {
	m, err := onnxio.Load("../../testdata/models/resnet_small.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	var src, alias string
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Flatten" {
			src, alias = n.GetInput()[0], n.GetOutput()[0]
		}
	}
	if alias == "" {
		t.Fatal("resnet_small has no Flatten")
	}
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{"input": "../../testdata/models/resnet_small.input.npy"}, Batch: 2}
	run := func(o collect.Options) (*collect.Stats, error) {
		ds, err := dataset.Open(spec, dataset.InputsOf(m))
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		return collect.Run(context.Background(), m, ds, o)
	}
	full, err := run(collect.Options{Method: calibrate.MinMax})
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, n := range g.GetNode() {
		if o := n.GetOutput()[0]; o != alias {
			others = append(others, o)
		}
	}
	others = append(others, "input")
	st, err := run(collect.Options{Method: calibrate.MinMax, Tensors: others, Aliases: map[string]string{alias: src}})
	if err != nil {
		t.Fatal(err)
	}
	a, want := st.Table.Tensors[alias], full.Table.Tensors[alias]
	if a == nil || a.AliasOf != src || a.Min != want.Min || a.Max != want.Max || a.Count != want.Count {
		t.Errorf("alias %s: %+v, measured %+v", alias, a, want)
	}
	if s := st.Table.Tensors[src]; s == nil || s.AliasOf != "" || s.Min != a.Min || s.Max != a.Max {
		t.Errorf("source %s: %+v", src, s)
	}
	for what, aliases := range map[string]map[string]string{
		"not an activation":   {"nope": src},
		"source not measured": {alias: "nope"},
		"alias also measured": {src: "input"},
	} {
		if _, err := run(collect.Options{Method: calibrate.MinMax, Tensors: others, Aliases: aliases}); err == nil {
			t.Errorf("%s: no error", what)
		}
	}
}

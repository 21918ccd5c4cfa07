package dataset

import (
	"path/filepath"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// TestSkipSplitsDisjoint: with one shuffle seed, limit N and skip N give disjoint parts of
// one order, and skip+limit is exactly a slice of the full order.
func TestSkipSplitsDisjoint(t *testing.T) {
	dir, err := mnist.Dir()
	if err != nil {
		t.Skip(err)
	}
	in := []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 1, 28, 28}}}
	rows := func(skip, limit int) []int {
		spec := &Spec{Format: "idx", Inputs: map[string]string{"x": filepath.Join(dir, mnist.TestImages)}, Shuffle: 3, Skip: skip, Limit: limit, Batch: 64}
		ds, err := Open(spec, in)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		var out []int
		for b, err := range ds.Batches() {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b.Rows...)
		}
		return out
	}
	all, train, val := rows(0, 300), rows(0, 200), rows(200, 100)
	if len(train) != 200 || len(val) != 100 {
		t.Fatalf("got %d and %d samples", len(train), len(val))
	}
	seen := map[int]bool{}
	for _, r := range train {
		seen[r] = true
	}
	for i, r := range val {
		if seen[r] {
			t.Fatalf("sample %d is in both splits", r)
		}
		if all[200+i] != r {
			t.Fatalf("skip 200: sample %d is row %d, the full order has %d", i, r, all[200+i])
		}
	}
	spec := &Spec{Format: "idx", Inputs: map[string]string{"x": filepath.Join(dir, mnist.TestImages)}, Skip: 10000}
	if _, err := Open(spec, in); err == nil {
		t.Fatal("skip past the end: no error")
	}
}

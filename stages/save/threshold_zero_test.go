package save_test

import (
	"path/filepath"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
)

// TestThresholdZeroMovesEverything: threshold is the smallest tensor moved, so
// `threshold: 0` with external: always moves every initializer (it used to reach
// onnxio as its zero value, the default 1024, and kept the small ones inside).
func TestThresholdZeroMovesEverything(t *testing.T) {
	dir := t.TempDir()
	o := runOne(t, writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), "", "  - save: {path: m.onnx, external: always, threshold: 0}\n"))
	mustOK(t, o)
	mp := rawModel(t, filepath.Join(dir, "m.onnx"))
	names, _ := external(mp)
	if len(names) != len(mp.GetGraph().GetInitializer()) {
		t.Errorf("threshold 0: %d of %d initializers moved, want all", len(names), len(mp.GetGraph().GetInitializer()))
	}
}

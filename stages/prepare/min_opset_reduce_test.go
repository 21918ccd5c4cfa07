package prepare_test

import (
	"fmt"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// TestMinOpsetReduceMean: tiny_transformer's ReduceMeans take axes as an attribute; at
// opset 18 and later axes is an input, and prepare rewrites them (onnxruntime refused the
// result with "Unrecognized attribute: axes for operator ReduceMean" when it did not).
// The prepared model computes what the input does.
func TestMinOpsetReduceMean(t *testing.T) {
	for _, opset := range []int64{18, 21} {
		t.Run(fmt.Sprint(opset), func(t *testing.T) {
			rec, m := mustRun(t, testutil.Fixture("tiny_transformer.onnx"), fmt.Sprintf("  - prepare: {min_opset: %d}\n", opset))
			if m.Opset("") != opset || rec.Status != pipeline.StatusOK {
				t.Errorf("opset %d, stage %s", m.Opset(""), rec.Status)
			}
			sameOutputs(t, fixtureModel(t, "tiny_transformer"), m, fixtureFeeds(t, "tiny_transformer"), 1e-5)
		})
	}
}

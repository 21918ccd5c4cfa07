package qat_test

import (
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

func config(t *testing.T, stages string) string {
	return testutil.MNISTConfig(t, "qat.onnx", 300, 0, stages)
}

// TestConfigErrors: option mistakes are config errors with the file and line.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ stage, want string }{
		{"  - qat: {}", "dataset: is required"},
		{"  - qat: {dataset: train, teacher: none}", "soft_weight: 0 and hard_weight > 0"},
		{"  - qat: {dataset: train, teacher: float}", `c.yaml:10:36: qat: teacher: "float" is not one of input, none`},
		{"  - qat: {dataset: train, weights: {type: int3}}", `c.yaml:10:43: qat: type: "int3" is not one of int4, uint4, int8, uint8`},
		{"  - qat: {dataset: train, soft_weight: 0}", "nothing to learn from"},
		{"  - qat: {dataset: train, early_stopping: {patience: 1}}", "needs validation"},
		{"  - qat: {dataset: train, epoch: 1}", "epoch"},
		{"  - qat: {dataset: train, keep: worst}", `qat: keep: "worst" is not one of best, last`},
	} {
		_, err := pipeline.Load(config(t, tc.stage), pipeline.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml:") {
			t.Errorf("%s\n  error %v\n  want %q with file:line", tc.stage, err, tc.want)
		}
	}
}

// TestRunErrors: a float model without weights: and a quantized one with weights: fail the
// job with a message saying what to do.
func TestRunErrors(t *testing.T) {
	for _, tc := range []struct{ stages, want string }{
		{"  - qat: {dataset: train, epochs: 0}\n", "put a quantize stage before it"},
		{"  - prepare\n  - qat: {dataset: train, weights: {type: int4}, epochs: 0}\n  - qat: {dataset: train, weights: {type: int4}, epochs: 0}\n", "already quantized"},
	} {
		res := testutil.RunConfig(t, config(t, tc.stages))
		if res.Failed() != 1 || !strings.Contains(res.Outcomes[0].Err.Error(), tc.want) {
			t.Errorf("%q: %v", tc.stages, res.Outcomes[0].Err)
		}
	}
}

package pipeline_test

import (
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// The check before the first stage opens the datasets the stages then use: a dataset's
// warnings are still reported, once, by the first stage that reads it.
func TestDataCheckKeepsDatasetWarnings(t *testing.T) {
	dir := batchDir(t, false)
	cfg := "model: models/mnist_cnn.onnx\noutput: out/{name}.int8.onnx\n" +
		"datasets:\n  r: {format: random, samples: 8, batch: 4}\n" +
		"stages:\n  - calibrate: {dataset: r}\n  - quantize\n  - verify: {dataset: r, latency: {runs: 0}}\n"
	c, jobs := load(t, dir, cfg)
	if uses := jobs[0].DataUses(); len(uses) != 1 || uses[0].Name != "r" || strings.Join(uses[0].By, "; ") != "calibrate, stage 2; verify, stage 4" {
		t.Errorf("data uses: %+v", uses)
	}
	res, err := pipeline.Run(t.Context(), c, jobs, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Outcomes[0]
	if o.Status != pipeline.StatusOK {
		t.Fatalf("%s: %v", o.Status, o.Err)
	}
	n := 0
	for _, s := range o.Report.Stages {
		for _, w := range s.Warnings {
			if strings.Contains(w, "random data") {
				n++
				if s.Stage != "calibrate" {
					t.Errorf("the warning is reported by %s", s.Stage)
				}
			}
		}
	}
	if n != 1 {
		t.Errorf("the random-data warning is reported %d times", n)
	}
}

package all_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

// chainConfig writes a config for the MNIST CNN fixture with a small labelled MNIST
// dataset "data" and the given stages, and returns its path and the output path.
func chainConfig(t *testing.T, stages string) (config, output string) {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Skip(err)
	}
	out := t.TempDir()
	output = filepath.Join(out, "model.out.onnx")
	text := fmt.Sprintf(`model: %s
output: %s
datasets:
  data:
    format: idx
    inputs: {input: %s}
    labels: %s
    limit: 64
stages:
%s`, testutil.Fixture("mnist_cnn.onnx"), output, filepath.Join(dir, mnist.TrainImages), filepath.Join(dir, mnist.TrainLabels), stages)
	config = filepath.Join(out, "c.yaml")
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return config, output
}

// runChain runs the chain and returns the artifact it wrote.
func runChain(t *testing.T, stages string) *onnxio.Model {
	t.Helper()
	config, output := chainConfig(t, stages)
	res := testutil.RunConfig(t, config)
	if len(res.Outcomes) != 1 || res.Outcomes[0].Status != pipeline.StatusOK {
		o := res.Outcomes[0]
		var msg []string
		for _, s := range o.Report.Stages {
			msg = append(msg, s.Stage+": "+s.Status+" "+s.Error)
		}
		t.Fatalf("job %s: %v\n%s", o.Status, o.Err, strings.Join(msg, "\n"))
	}
	m, err := onnxio.Load(output)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChainKeepsEveryStagesWork runs chains where a stage that changes the model is
// followed by another one and checks that the artifact holds the work of both: the
// later stage edits the model the earlier one made, never the input.
func TestChainKeepsEveryStagesWork(t *testing.T) {
	const distill = `  - distill:
      dataset: data
      epochs: 1
      batch: 32
      student: {architecture: {mlp: {hidden: [16]}}}
`
	for _, tc := range []struct {
		name   string
		stages string
		check  func(t *testing.T, s *onnxio.Summary)
	}{
		{"float16 then prepare", "  - float16\n  - prepare\n", func(t *testing.T, s *onnxio.Summary) {
			if !s.Float16 {
				t.Errorf("the artifact is not float16 (%d params, quantization %s): prepare discarded float16's work", s.Params.Count, s.Quantization)
			}
		}},
		{"distill then calibrate and quantize", distill + "  - calibrate: {dataset: data}\n  - quantize\n", func(t *testing.T, s *onnxio.Summary) {
			if s.Quantization == "none" {
				t.Errorf("the artifact is not quantized")
			}
			if s.Ops["Conv"] > 0 {
				t.Errorf("the artifact has %d Conv nodes: it is the teacher, not the MLP student", s.Ops["Conv"])
			}
		}},
		{"distill then prepare", distill + "  - prepare\n", func(t *testing.T, s *onnxio.Summary) {
			if s.Ops["Conv"] > 0 {
				t.Errorf("the artifact has %d Conv nodes: it is the teacher, not the MLP student", s.Ops["Conv"])
			}
		}},
		{"quantize dynamic then prepare", "  - quantize: {mode: dynamic}\n  - prepare\n", func(t *testing.T, s *onnxio.Summary) {
			if s.Quantization == "none" {
				t.Errorf("the artifact is not quantized: prepare discarded quantize's work")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, onnxio.Summarize(runChain(t, tc.stages)))
		})
	}
}

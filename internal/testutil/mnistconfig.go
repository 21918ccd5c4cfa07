package testutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
)

// Fixture is the absolute path of a committed model fixture (testdata/models/name).
func Fixture(name string) string {
	_, file, _, _ := runtime.Caller(0) // internal/testutil/mnistconfig.go
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "models", name)
}

// MNISTConfig writes a pipeline config for the MNIST CNN fixture into a new temporary
// folder and returns its path: the output model is {name}.<suffix> there; the datasets are
// "train" (the first train labelled training images) and, when plain > 0, "plain" (the
// first plain test images, unlabelled); then the stages, as YAML list entries. It skips
// the test when the MNIST files are not at hand.
func MNISTConfig(t testing.TB, suffix string, train, plain int, stages string) string {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Skip(err)
	}
	out := t.TempDir()
	text := fmt.Sprintf(`model: %s
output: %s
datasets:
  train:
    format: idx
    inputs: {input: %s}
    labels: %s
    limit: %d
`, Fixture("mnist_cnn.onnx"), filepath.Join(out, "{name}."+suffix), filepath.Join(dir, mnist.TrainImages), filepath.Join(dir, mnist.TrainLabels), train)
	if plain > 0 {
		text += fmt.Sprintf(`  plain:
    format: idx
    inputs: {input: %s}
    limit: %d
`, filepath.Join(dir, mnist.TestImages), plain)
	}
	text += "stages:\n" + stages
	path := filepath.Join(out, "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// RunConfig loads the config at path with --set overrides and runs every job, forced;
// it fails the test when the config does not load or the run cannot start (a failing
// job is in the result).
func RunConfig(t testing.TB, path string, sets ...string) *pipeline.RunResult {
	t.Helper()
	cfg, err := pipeline.Load(path, pipeline.LoadOptions{Sets: sets})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Run(context.Background(), cfg, jobs, pipeline.RunOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// StageRecord is the report record of the first stage named name in o's job; it fails
// the test when there is none.
func StageRecord(t testing.TB, o *pipeline.Outcome, name string) *report.Stage {
	t.Helper()
	for _, s := range o.Report.Stages {
		if s.Stage == name {
			return s
		}
	}
	t.Fatalf("no %s stage in the report", name)
	return nil
}

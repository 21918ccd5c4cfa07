package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
)

// badDataDir holds mnist_cnn (input "input": float [batch, 1, 28, 28]), its 4 samples,
// and real .npy files that are wrong for it: 3 labels for 4 samples, float64 samples,
// samples of the wrong shape.
func badDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"mnist_cnn.onnx", "mnist_cnn.input.npy"} {
		data, err := os.ReadFile("../../testdata/models/" + f)
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir, f, string(data))
	}
	write(t, dir, "labels3.npy", string(testutil.NPYRaw("<i8", false, testutil.NPYShape([]int64{3}), make([]byte, 3*8))))
	write(t, dir, "labels4.npy", string(testutil.NPYRaw("<i8", false, testutil.NPYShape([]int64{4}), make([]byte, 4*8))))
	write(t, dir, "f64.npy", string(testutil.NPYRaw("<f8", false, testutil.NPYShape([]int64{4, 1, 28, 28}), make([]byte, 4*784*8))))
	write(t, dir, "small.npy", string(testutil.NPYRaw("<f4", false, testutil.NPYShape([]int64{4, 1, 14, 14}), make([]byte, 4*196*4))))
	return dir
}

const badDataConfig = `model: mnist_cnn.onnx
output: out/{name}.int8.onnx
datasets:
  good: {format: npy, inputs: {input: mnist_cnn.input.npy}, labels: labels4.npy}
  short_labels: {format: npy, inputs: {input: mnist_cnn.input.npy}, labels: labels3.npy}
  wrong_name: {format: npy, inputs: {image: mnist_cnn.input.npy}}
  wrong_type: {format: npy, inputs: {input: f64.npy}}
  wrong_shape: {format: npy, inputs: {input: small.npy}}
stages:
  - calibrate: {dataset: good, cache: "out/{name}.calib.json"}
  - quantize
  - verify: {dataset: short_labels, latency: {runs: 0}}
  - verify: {dataset: wrong_name, latency: {runs: 0}}
  - verify: {dataset: wrong_type, latency: {runs: 0}}
  - verify: {dataset: wrong_shape, latency: {runs: 0}}
`

// TestValidateDeep: `validate --deep` opens the model and every dataset the plan reads
// and prints one line per problem, naming the model, the dataset, its file or input;
// exit status 1. The plain validate checks the config only: exit 0.
func TestValidateDeep(t *testing.T) {
	dir := badDataDir(t)
	cfg := write(t, dir, "c.yaml", badDataConfig)
	if code, stdout, stderr := runCLI("validate", cfg); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := runCLI("validate", "--deep", cfg)
	if code != ExitFailed {
		t.Errorf("validate --deep: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	model := filepath.Join(dir, "mnist_cnn.onnx")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	want := [][]string{
		{`dataset "short_labels" (read by verify, stage 4)`, "labels: 3", "labels3.npy", `input "input": 4`},
		{`dataset "wrong_name" (read by verify, stage 5)`, `dataset input "image" is not a model input`, "the model's inputs: input"},
		{`dataset "wrong_type" (read by verify, stage 6)`, `input "input"`, "f64.npy", "double", "float"},
		{`dataset "wrong_shape" (read by verify, stage 7)`, `input "input"`, "small.npy", "28"},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("want %d problem lines and the count:\n%s", len(want), stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], model+": ") {
			t.Errorf("line %d does not name the model: %s", i, lines[i])
		}
		for _, s := range w {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d lacks %q: %s", i, s, lines[i])
			}
		}
	}
	if !strings.Contains(lines[len(lines)-1], "data check: 4 problem(s)") {
		t.Errorf("last line: %s", lines[len(lines)-1])
	}
	// The good datasets pass.
	good := strings.Join(strings.Split(badDataConfig, "  - verify: {dataset: wrong_name")[:1], "")
	good = strings.Replace(good, "dataset: short_labels", "dataset: good", 1)
	cfg = write(t, dir, "good.yaml", good)
	if code, stdout, stderr := runCLI("validate", "--deep", cfg); code != 0 || !strings.Contains(stdout, "data: ok") {
		t.Errorf("good config: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestRunChecksDataBeforeTheFirstStage: a labels file of the wrong length that only
// verify reads fails the job before calibrate runs (no calibration cache, no stage run).
func TestRunChecksDataBeforeTheFirstStage(t *testing.T) {
	dir := badDataDir(t)
	cfg := write(t, dir, "c.yaml", strings.Split(badDataConfig, "  - verify: {dataset: wrong_name")[0])
	code, stdout, stderr := runCLI("run", "--quiet", cfg)
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, `bad data, found before the first stage: dataset "short_labels"`) {
		t.Errorf("summary:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "mnist_cnn.calib.json")); err == nil {
		t.Errorf("calibrate ran before the data check")
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "mnist_cnn.int8.report.json"))
	if err != nil || !strings.Contains(string(data), "labels3.npy") || strings.Contains(string(data), `"status": "ok"`) {
		t.Errorf("report: %v\n%s", err, data)
	}
}

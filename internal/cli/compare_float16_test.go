package cli

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareFloat16IO compares the MNIST CNN with a float16 copy whose input and output
// are float16 (keep_io_types: false), both ways round, on float32 samples: each model is
// fed its own type, and the conversions are printed and in the JSON.
func TestCompareFloat16IO(t *testing.T) {
	dir := t.TempDir()
	ref, _ := filepath.Abs("../../testdata/models/mnist_cnn.onnx")
	data, _ := filepath.Abs("../../testdata/models/mnist_cnn.input.npy")
	cfg := write(t, dir, "h.yaml", "model: "+ref+"\noutput: out/{name}.fp16io.onnx\nstages:\n  - float16: {keep_io_types: false}\n")
	if code, _, stderr := runCLI("run", cfg); code != 0 {
		t.Fatalf("making the float16 model: exit %d\n%s", code, stderr)
	}
	cand := filepath.Join(dir, "out", "mnist_cnn.fp16io.onnx")

	code, stdout, stderr := runCLI("compare", ref, cand, "--data", data, "--latency-runs", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	c := parseCompare(t, stdout)
	m := c.Providers[0].Outputs[0]
	t.Logf("float32 vs float16 inputs/outputs: SQNR %.1f dB, size %.3fx", float64(*m.SQNRdB), c.SizeRatio)
	if v := float64(*m.SQNRdB); math.IsInf(v, 0) || v < 40 || v > 120 || *m.Top1Agreement != 1 || m.Samples != 4 {
		t.Errorf("float16 copy: SQNR %v, top-1 %v over %d samples", v, *m.Top1Agreement, m.Samples)
	}
	if len(c.Providers[0].Latency) != 2 {
		t.Errorf("latency rows: %+v", c.Providers[0].Latency)
	}
	var conv struct {
		Conversions []struct{ Model, Kind, Name, From, To string } `json:"conversions"`
	}
	if err := json.Unmarshal([]byte(stdout), &conv); err != nil {
		t.Fatal(err)
	}
	if len(conv.Conversions) != 2 || conv.Conversions[0].Model != "candidate" || conv.Conversions[0].Kind != "input" ||
		conv.Conversions[0].From != "float" || conv.Conversions[0].To != "float16" || conv.Conversions[1].Kind != "output" {
		t.Errorf("conversions %+v", conv.Conversions)
	}

	// The float16 model as the reference: the float32 samples are converted for it.
	code, stdout, stderr = runCLI("compare", cand, ref, "--data", data)
	if code != 0 {
		t.Fatalf("float16 reference: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, `reference input "input": float -> float16`) || !strings.Contains(stdout, "sqnr") {
		t.Errorf("float16 reference: no conversion line\n%s", stdout)
	}
}

package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"

	"github.com/onnxpipe/onnxpipe/report"
)

// compareJSON is the part of `compare --json` the tests read (docs/formats.md).
type compareJSON struct {
	SchemaVersion *int `json:"schema_version"`
	Providers     []struct {
		Provider  string `json:"provider"`
		Available bool   `json:"available"`
		Reason    string `json:"reason"`
		Outputs   []struct {
			Output        string        `json:"output"`
			Samples       int           `json:"samples"`
			Elements      int64         `json:"elements"`
			MaxAbs        *float64      `json:"max_abs"`
			MeanAbs       *float64      `json:"mean_abs"`
			RMSE          *float64      `json:"rmse"`
			Cosine        *float64      `json:"cosine"`
			SQNRdB        *report.Float `json:"sqnr_db"`
			Top1Agreement *float64      `json:"top1_agreement"`
			Top5Agreement *float64      `json:"top5_agreement"`
			RefAccuracy   *float64      `json:"reference_accuracy"`
			Accuracy      *float64      `json:"accuracy"`
		} `json:"outputs"`
		Latency []struct {
			Model string  `json:"model"`
			Batch int     `json:"batch"`
			P50   float64 `json:"p50_ms"`
		} `json:"latency"`
	} `json:"providers"`
	ReferenceBytes int64   `json:"reference_bytes"`
	CandidateBytes int64   `json:"candidate_bytes"`
	SizeRatio      float64 `json:"size_ratio"`
	Passed         bool    `json:"passed"`
}

// compareFixture makes an int8 (dynamic) copy of the MNIST CNN with `onnxpipe run`, and
// labels for the fixture's four input samples: the reference's own argmax, so that the
// reference accuracy is exactly 1.
func compareFixture(t *testing.T) (ref, cand, data, labels string) {
	t.Helper()
	dir := t.TempDir()
	ref, _ = filepath.Abs("../../testdata/models/mnist_cnn.onnx")
	data, _ = filepath.Abs("../../testdata/models/mnist_cnn.input.npy")
	cfg := write(t, dir, "q.yaml", "model: "+ref+"\noutput: out/{name}.dyn.onnx\nstages:\n  - quantize: {mode: dynamic}\n")
	if code, _, stderr := runCLI("run", cfg); code != 0 {
		t.Fatalf("making the candidate: exit %d\n%s", code, stderr)
	}
	cand = filepath.Join(dir, "out", "mnist_cnn.dyn.onnx")

	f, err := os.Open("../../testdata/models/mnist_cnn.output.npy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var logits []float32
	if err := npyio.Read(f, &logits); err != nil {
		t.Fatal(err)
	}
	if len(logits) != 40 {
		t.Fatalf("mnist_cnn.output.npy: %d values, want 4x10", len(logits))
	}
	ids := make([]int64, 4)
	for i := range ids {
		best := 0
		for c := 1; c < 10; c++ {
			if logits[i*10+c] > logits[i*10+best] {
				best = c
			}
		}
		ids[i] = int64(best)
	}
	var b bytes.Buffer
	if err := npyio.Write(&b, ids); err != nil {
		t.Fatal(err)
	}
	labels = filepath.Join(dir, "labels.npy")
	if err := os.WriteFile(labels, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return ref, cand, data, labels
}

func parseCompare(t *testing.T, stdout string) compareJSON {
	t.Helper()
	var c compareJSON
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("compare --json is not JSON: %v\n%s", err, stdout)
	}
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		t.Fatalf("compare --json: %v\n%s", err, stdout)
	}
	if c.SchemaVersion == nil || *c.SchemaVersion != 1 {
		t.Errorf("schema_version: %v, want 1", c.SchemaVersion)
	}
	return c
}

func TestCompareJSON(t *testing.T) {
	ref, cand, data, labels := compareFixture(t)
	code, stdout, stderr := runCLI("compare", ref, cand, "--data", data, "--labels", labels, "--providers", "cpu,cuda", "--latency-runs", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	c := parseCompare(t, stdout)
	if len(c.Providers) != 2 || c.Providers[0].Provider != "cpu" || c.Providers[1].Provider != "cuda" {
		t.Fatalf("providers: %+v", c.Providers)
	}
	cpu := c.Providers[0]
	if !cpu.Available || len(cpu.Outputs) != 1 {
		t.Fatalf("cpu: %+v", cpu)
	}
	m := cpu.Outputs[0]
	if m.Output != "logits" || m.Samples != 4 || m.Elements != 40 {
		t.Errorf("output %q, %d samples, %d elements; want logits, 4, 40", m.Output, m.Samples, m.Elements)
	}
	for name, v := range map[string]*float64{"max_abs": m.MaxAbs, "mean_abs": m.MeanAbs, "rmse": m.RMSE, "cosine": m.Cosine,
		"top1_agreement": m.Top1Agreement, "top5_agreement": m.Top5Agreement, "reference_accuracy": m.RefAccuracy, "accuracy": m.Accuracy} {
		if v == nil {
			t.Errorf("%s missing", name)
		}
	}
	if m.SQNRdB == nil || math.IsInf(float64(*m.SQNRdB), 0) || *m.SQNRdB < 15 || *m.SQNRdB > 80 {
		t.Errorf("sqnr_db of an int8 model: %v, want a finite value in [15, 80]", m.SQNRdB)
	}
	if m.Cosine != nil && (*m.Cosine < 0.99 || *m.Cosine > 1) {
		t.Errorf("cosine %v", *m.Cosine)
	}
	if m.MaxAbs != nil && (*m.MaxAbs <= 0 || *m.MeanAbs > *m.MaxAbs || *m.RMSE > *m.MaxAbs) {
		t.Errorf("errors inconsistent: max %v mean %v rmse %v", *m.MaxAbs, *m.MeanAbs, *m.RMSE)
	}
	if m.RefAccuracy != nil && *m.RefAccuracy != 1 {
		t.Errorf("reference accuracy %v, want 1 (labels are its own argmax)", *m.RefAccuracy)
	}
	if m.Accuracy != nil && m.Top1Agreement != nil && *m.Accuracy != *m.Top1Agreement {
		t.Errorf("accuracy %v should equal top-1 agreement %v here", *m.Accuracy, *m.Top1Agreement)
	}
	if len(cpu.Latency) != 2 || cpu.Latency[0].Model != "reference" || cpu.Latency[1].Model != "candidate" || cpu.Latency[0].P50 <= 0 {
		t.Errorf("latency: %+v", cpu.Latency)
	}
	if c.ReferenceBytes <= 0 || c.CandidateBytes <= 0 || c.SizeRatio <= 0 || c.SizeRatio > 0.5 {
		t.Errorf("sizes %d -> %d, ratio %v: an int8 copy should be under half", c.ReferenceBytes, c.CandidateBytes, c.SizeRatio)
	}
	if cu := c.Providers[1]; !cu.Available && cu.Reason == "" {
		t.Errorf("cuda unavailable without a reason")
	}
	if !c.Passed {
		t.Errorf("no thresholds: passed should be true")
	}
}

func TestCompareJSONIdenticalModels(t *testing.T) {
	ref, _ := filepath.Abs("../../testdata/models/mnist_cnn.onnx")
	data, _ := filepath.Abs("../../testdata/models/mnist_cnn.input.npy")
	code, stdout, stderr := runCLI("compare", ref, ref, "--data", data, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, `"sqnr_db": "Infinity"`) {
		t.Errorf("identical outputs should have sqnr_db \"Infinity\":\n%s", stdout)
	}
	c := parseCompare(t, stdout)
	m := c.Providers[0].Outputs[0]
	if !math.IsInf(float64(*m.SQNRdB), 1) || *m.MaxAbs != 0 || *m.Top1Agreement != 1 || c.SizeRatio != 1 {
		t.Errorf("identical models: %+v", m)
	}
	if m.Accuracy != nil {
		t.Errorf("accuracy without --labels")
	}
}

func TestCompareBadInput(t *testing.T) {
	ref, _ := filepath.Abs("../../testdata/models/mnist_cnn.onnx")
	data, _ := filepath.Abs("../../testdata/models/resnet_small.input.npy") // another shape
	if code, _, stderr := runCLI("compare", ref, ref, "--data", data, "--json"); code != 1 || stderr == "" {
		t.Errorf("data that does not fit: exit %d, want 1\n%s", code, stderr)
	}
	if code, _, _ := runCLI("compare", ref, filepath.Join(t.TempDir(), "none.onnx"), "--data", data, "--json"); code != 1 {
		t.Errorf("missing candidate: exit %d, want 1", code)
	}
	cut := filepath.Join(t.TempDir(), "cut.npy") // ends inside its header
	if err := os.WriteFile(cut, []byte("\x93NUMPY\x01\x00\xff\xff{'descr'"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("compare", ref, ref, "--data", cut); code != 1 || !strings.Contains(stderr, cut) || strings.Contains(stderr, "internal error") {
		t.Errorf("an .npy cut inside its header: exit %d, want 1 naming the file\n%s", code, stderr)
	}
	good, _ := filepath.Abs("../../testdata/models/mnist_cnn.input.npy")
	if code, _, stderr := runCLI("compare", ref, ref, "--data", good, "--providers", "gpu"); code != 2 || !strings.Contains(stderr, "cuda") {
		t.Errorf("unknown provider: exit %d, want 2 naming the valid ones\n%s", code, stderr)
	}
}

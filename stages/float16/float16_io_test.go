package float16_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// TestFloat16IOVerify converts the MNIST CNN with keep_io_types: false (float16 inputs
// and outputs) and verifies it against the float32 model on MNIST test images: verify
// feeds each model its own input type, compares the float16 logits as float32, and says
// so in one note. The report names the stage's type, not its enum number.
func TestFloat16IOVerify(t *testing.T) {
	initORT(t)
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cfg := writeConfig(t, `
model: `+fixture(t, "mnist_cnn")+`
output: `+filepath.Join(out, "{name}.fp16io.onnx")+`
datasets:
  test:
    format: idx
    inputs: {input: `+filepath.Join(dir, mnist.TestImages)+`}
    labels: `+filepath.Join(dir, mnist.TestLabels)+`
    limit: 2000
    batch: 250
stages:
  - prepare
  - float16: {keep_io_types: false}
  - verify:
      dataset: test
      thresholds: {sqnr_db: 40, top1_agreement: 0.999, accuracy_drop: 0.1}
      latency: {warmup: 1, runs: 3, batch: [1, 8]}
`)
	o := onlyOutcome(t, testutil.RunConfig(t, cfg), pipeline.StatusOK)
	fs := testutil.StageRecord(t, o, "float16")
	if len(fs.Warnings) != 0 {
		t.Errorf("float16 warnings: %q", fs.Warnings)
	}
	vs := testutil.StageRecord(t, o, "verify")
	sqnr, _ := metric(vs, "sqnr_db")
	acc, _ := metric(vs, "accuracy")
	ref, _ := metric(vs, "reference_accuracy")
	t.Logf("mnist_cnn float16 inputs and outputs: SQNR %.1f dB, accuracy %.4f (float32 %.4f)", sqnr, acc, ref)
	if sqnr < 40 || sqnr > 120 {
		t.Errorf("SQNR %.1f dB, want float16's 40..120", sqnr)
	}
	var notes []string
	for _, n := range vs.Notes {
		if strings.Contains(n, "converted") {
			notes = append(notes, n)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `candidate input "input": float -> float16`) ||
		!strings.Contains(notes[0], "float16 -> float") {
		t.Errorf("want one note of the conversions, got %q", notes)
	}

	m, err := onnxio.Load(filepath.Join(out, "mnist_cnn.fp16io.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range append(m.Graph().GetInput(), m.Graph().GetOutput()...) {
		if dt := onnxio.DataType(vi.GetType().GetTensorType().GetElemType()); dt != onnxio.TypeFloat16 {
			t.Errorf("%s is %s, want float16 (keep_io_types: false)", vi.GetName(), dt)
		}
	}

	// The report: the stage's data names the type; the verify data lists the conversions.
	b, err := os.ReadFile(filepath.Join(out, "mnist_cnn.fp16io.report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Stages []struct {
			Stage string          `json:"stage"`
			Data  json.RawMessage `json:"data"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, s := range rep.Stages {
		switch s.Stage {
		case "float16":
			seen++
			var d struct {
				Type any `json:"type"`
			}
			if err := json.Unmarshal(s.Data, &d); err != nil || d.Type != "float16" {
				t.Errorf("float16 data type = %#v (%v), want \"float16\"", d.Type, err)
			}
		case "verify":
			seen++
			var d struct {
				Conversions []struct{ Model, Kind, Name, From, To string } `json:"conversions"`
			}
			if err := json.Unmarshal(s.Data, &d); err != nil || len(d.Conversions) != 2 || d.Conversions[0].To != "float16" {
				t.Errorf("verify data conversions = %+v (%v)", d.Conversions, err)
			}
		}
	}
	if seen != 2 {
		t.Errorf("report has %d of the float16 and verify stages", seen)
	}
	md, err := os.ReadFile(filepath.Join(out, "mnist_cnn.fp16io.report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), `candidate input "input": float -> float16`) {
		t.Errorf("the Markdown report does not show the conversion")
	}
}

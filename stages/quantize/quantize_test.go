package quantize_test

import (
	"os"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

// TestOptionErrorsAtTheirLines: every bad option of an entry is reported in one run, each
// at its own value or key (line:col), before any model is read.
func TestOptionErrorsAtTheirLines(t *testing.T) {
	// lines 1-9 are the config's head (testutil.MNISTConfig), stages: is line 9
	cfg := testutil.MNISTConfig(t, "q.onnx", 100, 0, `  - calibrate: {dataset: train}
  - quantize:
      mode: statc
      format: qdqq
      activation_type: int7
      check_samples: -1
`)
	_, err := pipeline.Load(cfg, pipeline.LoadOptions{})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`c.yaml:12:13: quantize: mode: "statc" is not one of static, dynamic (did you mean "static"?)`,
		`c.yaml:13:15: quantize: format: "qdqq" is not one of qdq, qoperator (did you mean "qdq"?)`,
		`c.yaml:14:24: quantize: activation_type: "int7" is not one of`,
		`c.yaml:15:7: quantize: check_samples:`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 4 {
		t.Errorf("%d problems reported, want 4 (each once):\n%s", n, msg)
	}
}

// TestStaticNeedsCalibration: static mode without a calibration of the same graph is a
// plan error that says what to add, and one after a model-changing stage says what to
// move.
func TestStaticNeedsCalibration(t *testing.T) {
	for _, tc := range []struct{ stages, want string }{
		{"  - quantize: {mode: static}\n", "needs a calibrate stage before it"},
		{"  - calibrate: {dataset: train}\n  - float16\n  - quantize: {mode: static}\n", "put calibrate after float16"},
	} {
		_, err := pipeline.Load(testutil.MNISTConfig(t, "q.onnx", 100, 0, tc.stages), pipeline.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml:") {
			t.Errorf("%q: error %v, want %q with file:line", tc.stages, err, tc.want)
		}
	}
}

// TestModes runs static and dynamic quantization of the MNIST CNN and checks what each
// writes: QDQ or dynamic integer ops, a smaller file, the stage's metrics.
func TestModes(t *testing.T) {
	for _, tc := range []struct{ stages, quant string }{
		{"  - calibrate: {dataset: train}\n  - quantize: {mode: static}\n", "qdq"},
		{"  - quantize: {mode: dynamic}\n", "dynamic"},
	} {
		res := testutil.RunConfig(t, testutil.MNISTConfig(t, "q.onnx", 100, 0, tc.stages))
		o := res.Outcomes[0]
		if o.Err != nil {
			t.Fatalf("%q: %v", tc.stages, o.Err)
		}
		m, err := onnxio.Load(o.Job.Output)
		if err != nil {
			t.Fatal(err)
		}
		s := onnxio.Summarize(m)
		if !strings.Contains(s.Quantization, tc.quant) {
			t.Errorf("%q: the artifact's quantization is %q, want %q", tc.stages, s.Quantization, tc.quant)
		}
		in, err := os.Stat(testutil.Fixture("mnist_cnn.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := os.Stat(o.Job.Output); err != nil || out.Size() >= in.Size() {
			t.Errorf("%q: artifact %v (%v), input %d bytes: not smaller", tc.stages, out, err, in.Size())
		}
	}
}

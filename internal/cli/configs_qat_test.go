package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stageMetric returns metric name of every stage called stage in a report, in order.
func stageMetrics(t *testing.T, report, stage, name string) []float64 {
	t.Helper()
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Stages []struct {
			Stage   string
			Metrics []struct {
				Name  string
				Value any
			}
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, s := range r.Stages {
		if s.Stage != stage {
			continue
		}
		for _, m := range s.Metrics {
			if v, ok := m.Value.(float64); ok && m.Name == name {
				out = append(out, v)
			}
		}
	}
	return out
}

// TestQATInt4Config runs configs/qat-mnist-int4.yaml on a subset: int4 post-training
// quantization of the MNIST CNN, then QAT of that model. Both int4 models are written,
// open in onnxruntime (verify runs them), and the fine-tuned one is at least as accurate.
func TestQATInt4Config(t *testing.T) {
	setMNIST(t)
	dir := t.TempDir()
	code, stdout, stderr := runCLI("run", "--quiet", "../../configs/qat-mnist-int4.yaml",
		"--set", "output="+filepath.Join(dir, "{name}.int4.qat.onnx"), "--set", "report="+filepath.Join(dir, "{name}"),
		"--set", "stages.3.save.path="+filepath.Join(dir, "{name}.int4.ptq.onnx"),
		"--set", "stages.4.qat.checkpoint="+filepath.Join(dir, "qat.ckpt"),
		"--set", "datasets.train.limit=6000", "--set", "datasets.val.skip=58000", "--set", "datasets.test.limit=3000",
		"--set", "stages.5.verify.thresholds.accuracy_drop=1")
	if code != 0 || !strings.Contains(stdout, "1 ok") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"mnist_cnn.int4.ptq.onnx", "mnist_cnn.int4.qat.onnx", "qat.ckpt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	code, stdout, _ = runCLI("inspect", "--json", filepath.Join(dir, "mnist_cnn.int4.qat.onnx"))
	if code != 0 || !strings.Contains(stdout, `"int4"`) {
		t.Errorf("the QAT model has no int4 weights: %s", stdout)
	}
	acc := stageMetrics(t, filepath.Join(dir, "mnist_cnn.report.json"), "verify", "accuracy")
	if len(acc) != 2 || acc[1] < acc[0] {
		t.Errorf("test accuracy PTQ then QAT: %v", acc)
	}
	t.Logf("test accuracy: int4 PTQ %.4f, int4 QAT %.4f", acc[0], acc[1])
}

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
)

func setMNIST(t *testing.T) {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MNIST_DIR", dir)
}

// TestConfigs validates every example config.
func TestConfigs(t *testing.T) {
	setMNIST(t)
	paths, _ := filepath.Glob("../../configs/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no configs")
	}
	for _, p := range paths {
		if code, _, stderr := runCLI("validate", p); code != 0 {
			t.Errorf("%s: exit %d\n%s", p, code, stderr)
		}
	}
}

// TestDemo runs configs/demo.yaml end to end (MNIST CNN: prepare, calibrate, int8 QDQ,
// verify on the 10k test set), then again with a threshold it cannot meet.
func TestDemo(t *testing.T) {
	setMNIST(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "{name}.int8.onnx")
	sets := []string{"--set", "output=" + out, "--set", "stages.1.calibrate.cache=" + filepath.Join(dir, "calib.json"),
		"--set", "stages.3.verify.latency.runs=3"}
	code, stdout, stderr := runCLI(append([]string{"run", "--quiet", "../../configs/demo.yaml"}, sets...)...)
	if code != 0 || !strings.Contains(stdout, "1 ok") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"mnist_cnn.int8.onnx", "mnist_cnn.int8.manifest.json", "mnist_cnn.int8.report.html", "calib.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	// A second run hits the calibration cache... and the manifest skips the job.
	code, stdout, _ = runCLI(append([]string{"run", "--quiet", "../../configs/demo.yaml"}, sets...)...)
	if code != 0 || !strings.Contains(stdout, "1 skipped") {
		t.Errorf("rerun: exit %d\n%s", code, stdout)
	}
	// An unreachable threshold fails the job with exit 1; the report names the reason and
	// no output is written.
	dir2 := t.TempDir()
	code, stdout, _ = runCLI("run", "--quiet", "../../configs/demo.yaml", "--set", "output="+filepath.Join(dir2, "{name}.int8.onnx"),
		"--set", "stages.1.calibrate.cache="+filepath.Join(dir, "calib.json"), "--set", "stages.3.verify.thresholds.sqnr_db=90",
		"--set", "stages.3.verify.latency.runs=0")
	if code != ExitFailed || !strings.Contains(stdout, "rejected") {
		t.Errorf("unreachable threshold: exit %d\n%s", code, stdout)
	}
	rep, err := os.ReadFile(filepath.Join(dir2, "mnist_cnn.int8.report.json"))
	if err != nil || !strings.Contains(string(rep), "sqnr_db") || !strings.Contains(string(rep), "needs >= 90") {
		t.Errorf("report: %v %s", err, rep)
	}
	if strings.Contains(string(rep), "cuda") && !strings.Contains(string(rep), "unavailable") {
		t.Errorf("cuda should show as unavailable")
	}
	if _, err := os.Stat(filepath.Join(dir2, "mnist_cnn.int8.onnx")); err == nil {
		t.Errorf("a rejected job wrote its output")
	}
}

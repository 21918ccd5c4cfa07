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

// demoSets points every file configs/demo.yaml writes into dir, and makes the run
// shorter: fewer latency runs, and the student distilled on 10,000 images for 3 epochs.
func demoSets(dir string) []string {
	return []string{"--set", "output=" + filepath.Join(dir, "{name}.student.int8.onnx"),
		"--set", "report=" + filepath.Join(dir, "{name}"),
		"--set", "stages.1.calibrate.cache=" + filepath.Join(dir, "calib.json"),
		"--set", "stages.4.save.path=" + filepath.Join(dir, "{name}.int8.onnx"),
		"--set", "stages.5.distill.checkpoint=" + filepath.Join(dir, "student.ckpt"),
		"--set", "stages.7.save.path=" + filepath.Join(dir, "{name}.student.onnx"),
		"--set", "stages.8.calibrate.cache=" + filepath.Join(dir, "student.calib.json"),
		"--set", "datasets.train.limit=10000", "--set", "stages.5.distill.epochs=3",
		"--set", "stages.6.verify.thresholds.accuracy_drop=10", "--set", "stages.6.verify.thresholds.top1_agreement=0.85",
		"--set", "stages.3.verify.latency.runs=3", "--set", "stages.6.verify.latency.runs=3", "--set", "stages.10.verify.latency.runs=3"}
}

// TestDemo runs configs/demo.yaml end to end: the MNIST CNN prepared, calibrated,
// quantized to int8 and verified on the 10k test set; a student distilled from it,
// verified, quantized and verified. Then again with a threshold it cannot meet.
func TestDemo(t *testing.T) {
	setMNIST(t)
	dir := t.TempDir()
	sets := demoSets(dir)
	code, stdout, stderr := runCLI(append([]string{"run", "--quiet", "../../configs/demo.yaml"}, sets...)...)
	if code != 0 || !strings.Contains(stdout, "1 ok") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The run ends with where everything is: the report and the three models.
	for _, want := range []string{"mnist_cnn.report.{html,md,json}", "saved   " + filepath.Join(dir, "mnist_cnn.int8.onnx"),
		"saved   " + filepath.Join(dir, "mnist_cnn.student.onnx"), "output  " + filepath.Join(dir, "mnist_cnn.student.int8.onnx")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"mnist_cnn.int8.onnx", "mnist_cnn.student.onnx", "mnist_cnn.student.int8.onnx",
		"mnist_cnn.student.int8.manifest.json", "mnist_cnn.report.html", "calib.json", "student.calib.json", "student.ckpt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	rep, err := os.ReadFile(filepath.Join(dir, "mnist_cnn.report.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"student_accuracy"`, `"teacher_accuracy"`, "loss per epoch"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("report lacks %s", want)
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
	sets2 := append(demoSets(dir2), "--set", "stages.1.calibrate.cache="+filepath.Join(dir, "calib.json"),
		"--set", "stages.3.verify.thresholds.sqnr_db=90", "--set", "stages.3.verify.latency.runs=0")
	code, stdout, _ = runCLI(append([]string{"run", "--quiet", "../../configs/demo.yaml"}, sets2...)...)
	if code != ExitFailed || !strings.Contains(stdout, "rejected") {
		t.Errorf("unreachable threshold: exit %d\n%s", code, stdout)
	}
	rep, err = os.ReadFile(filepath.Join(dir2, "mnist_cnn.report.json"))
	if err != nil || !strings.Contains(string(rep), "sqnr_db") || !strings.Contains(string(rep), "needs >= 90") {
		t.Errorf("report: %v %s", err, rep)
	}
	if strings.Contains(string(rep), "cuda") && !strings.Contains(string(rep), "unavailable") {
		t.Errorf("cuda should show as unavailable")
	}
	for _, f := range []string{"mnist_cnn.student.int8.onnx", "mnist_cnn.int8.onnx"} {
		if _, err := os.Stat(filepath.Join(dir2, f)); err == nil {
			t.Errorf("a rejected job wrote %s", f)
		}
	}
}

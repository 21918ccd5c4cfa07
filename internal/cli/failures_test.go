package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
)

// A failed job's whole reason is printed under the table, one block naming the job and
// its model, with --quiet too: the table cuts it to one line, and the hint that ends the
// message (here "convert the data ...") is past the cut.
func TestRunPrintsEveryFailureWhole(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/models/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "m.onnx", string(data))
	write(t, dir, "x.npy", string(testutil.NPYRaw("<f8", false, "(2, 1, 28, 28)", make([]byte, 2*784*8))))
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: out/{name}.onnx\n"+
		"datasets:\n  calib: {format: npy, inputs: {input: x.npy}}\n"+
		"stages:\n  - calibrate: {dataset: calib}\n  - quantize\n")
	for _, quiet := range []bool{false, true} {
		args := []string{"run", cfg}
		if quiet {
			args = []string{"run", "--quiet", cfg}
		}
		code, stdout, stderr := runCLI(args...)
		if code != ExitFailed {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
		}
		_, block, ok := strings.Cut(stdout, "\nfailed m ("+filepath.Join(dir, "m.onnx")+"):\n")
		if !ok {
			t.Fatalf("quiet=%v: no failure block naming the model:\n%s", quiet, stdout)
		}
		reason := strings.Join(strings.Fields(block), " ")
		for _, want := range []string{"(read by calibrate", "holds double data, the model wants float", "convert the data"} {
			if !strings.Contains(reason, want) {
				t.Errorf("quiet=%v: the failure block lacks %q:\n%s", quiet, want, stdout)
			}
		}
		for _, l := range strings.Split(block, "\n") {
			if len(l) > 100 {
				t.Errorf("line of %d characters, want it wrapped at 100: %s", len(l), l)
			}
		}
	}
}

func TestWrapKeepsEveryWord(t *testing.T) {
	s := "input \"input\": x.npy holds double data, the model wants float; convert the data: numpy.load(f).astype(numpy.float32)"
	lines := wrap(s, 30)
	for _, l := range lines {
		if len(l) > 30 && !strings.Contains(l, "numpy.load") {
			t.Errorf("line too long: %q", l)
		}
	}
	if got := strings.Join(lines, " "); got != s {
		t.Errorf("wrap lost text:\n%s\n%s", got, s)
	}
}

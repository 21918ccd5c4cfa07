package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/optdocs"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// pflag takes a back-quoted word of a usage text as the placeholder of the flag's value:
// `make ort` once showed as "--ort-lib make ort". Every command that loads onnxruntime
// has --ort-lib FILE, run included.
func TestOrtLibFlagHelp(t *testing.T) {
	for _, cmd := range []string{"run", "inspect", "compare", "version"} {
		code, stdout, stderr := runCLI(cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d %s", cmd, code, stderr)
		}
		if !strings.Contains(stdout, "--ort-lib FILE ") {
			t.Errorf("%s --help lacks --ort-lib FILE:\n%s", cmd, stdout)
		}
		if strings.Contains(stdout, "--ort-lib make") || strings.Contains(stdout, "`") {
			t.Errorf("%s --help shows a back-quoted placeholder:\n%s", cmd, stdout)
		}
	}
}

// run --ort-lib names the library as inspect's does, over the config's runtime.library;
// a missing file is bad usage naming the flag.
func TestRunOrtLib(t *testing.T) {
	lib, err := ort.FindLibrary("")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/models/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "m.onnx", string(data))
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: out/{name}.onnx\nruntime: {library: nowhere/libonnxruntime.so}\nstages: [prepare]\n")
	if code, stdout, stderr := runCLI("run", "--ort-lib", lib, cfg); code != 0 {
		t.Errorf("run --ort-lib %s: exit %d\n%s\n%s", lib, code, stdout, stderr)
	}
	code, _, stderr := runCLI("run", "--ort-lib", filepath.Join(dir, "missing.so"), "--force", cfg)
	if code != ExitUsage || !strings.Contains(stderr, "--ort-lib") || !strings.Contains(stderr, "missing.so does not exist") {
		t.Errorf("a missing --ort-lib: exit %d %s", code, stderr)
	}
}

// version says which library file it loaded.
func TestVersionPrintsTheLibraryPath(t *testing.T) {
	lib, err := ort.FindLibrary("")
	if err != nil {
		t.Skip(err)
	}
	code, stdout, stderr := runCLI("version")
	if code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	if !strings.Contains(stdout, "library   "+lib+"\n") {
		t.Errorf("version does not name %s:\n%s", lib, stdout)
	}
}

// validate takes several configs: each is checked and reported, a bad one does not hide
// the others, and the exit status says one was rejected.
func TestValidateSeveralConfigs(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "m.onnx", "x")
	good := write(t, dir, "good.yaml", "model: m.onnx\noutput: out/{name}.onnx\nstages: [prepare]\n")
	bad := write(t, dir, "bad.yaml", "model: m.onnx\nstages: [sav]\n")
	good2 := write(t, dir, "good2.yaml", "model: m.onnx\noutput: out/{name}.2.onnx\nstages: [prepare]\n")
	code, stdout, stderr := runCLI("validate", good, bad, good2)
	if code != ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{good + ": ok, 1 job(s)", good2 + ": ok, 1 job(s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{bad + ":2:10: unknown stage \"sav\"", bad + ": config rejected: 1 problem(s)", "1 of 3 configs rejected: " + bad} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code, _, stderr := runCLI("validate", good, good2); code != 0 {
		t.Errorf("two good configs: exit %d %s", code, stderr)
	}
}

// onnxruntime's spelling of the quantized types (QInt8, QUInt8) gets a hint toward ours:
// activation_type QInt8 once suggested uint8, the nearest by edit distance.
func TestQuantTypeHints(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "m.onnx", "x")
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: o.onnx\nstages:\n  - quantize: {mode: dynamic, weight_type: QUInt8, activation_type: QInt8}\n")
	code, _, stderr := runCLI("validate", cfg)
	if code != ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{`weight_type: "QUInt8" is not one of int8, uint8 (did you mean "uint8"?)`,
		`activation_type: "QInt8" is not one of uint8, int8, uint16, int16 (did you mean "int8"?)`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, stderr)
		}
	}
}

// The option docs of `onnxpipe stages` name options as a config does: no doc starts with
// the Go field name ("MovingAverage, when > 0"), and no option whose zero value stands
// for another reads "= 0 ... (default 3)".
func TestStageOptionDocsReadAsYAML(t *testing.T) {
	for _, st := range pipeline.Stages() {
		for _, o := range optdocs.Describe(st.NewOptions()) {
			first, _, _ := strings.Cut(o.Doc, " ")
			if strings.ToLower(first) != first {
				t.Errorf("%s %s: the doc starts with a Go name: %s", st.Name, o.Path, o.Doc)
			}
			if strings.Contains(o.Doc, "(default") || strings.Contains(o.Doc, "; default ") {
				t.Errorf("%s %s = %s: the default is in the doc, not the default column: %s", st.Name, o.Path, o.Default, o.Doc)
			}
		}
	}
	_, stdout, _ := runCLI("stages", "distill")
	for _, want := range []string{"student.architecture.cnn.kernel (integer) = 3\n", "schedule.gamma (number) = 0.1\n", "student.architecture.mlp.activation (string) = relu\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stages distill lacks %q", want)
		}
	}
}

// `onnxpipe stages` lists the stages in the order a chain uses them (stages/all's
// registration order), not sorted by name.
func TestStagesInChainOrder(t *testing.T) {
	_, stdout, _ := runCLI("stages")
	var names []string
	for _, l := range strings.Split(stdout, "\n") {
		if name, _, ok := strings.Cut(l, " — "); ok && !strings.HasPrefix(l, " ") {
			names = append(names, name)
		}
	}
	want := []string{"prepare", "distill", "calibrate", "quantize", "qat", "float16", "verify", "save"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("stages lists %v, want %v", names, want)
	}
}

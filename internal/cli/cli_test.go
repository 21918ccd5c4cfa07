package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateReportsEveryMistakeWithItsLine(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutpt: out.onnx\nstages:\n  - prepare:\n      fold_batchnrom: false\n  - sav\n")
	code, _, stderr := runCLI("validate", cfg)
	if code != ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{
		"c.yaml:2:1: unknown field \"outpt\" (did you mean \"output\"?)",
		"c.yaml:5:7: prepare: unknown field \"fold_batchnrom\" (did you mean \"fold_batchnorm\"?)",
		"c.yaml:6:5: unknown stage \"sav\" (did you mean \"save\"?)",
		"config rejected: 3 problem(s)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestValidatePrintsThePlan(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "m.onnx", "x")
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: out/{name}.onnx\nstages:\n  - prepare: {min_opset: 14}\n")
	code, stdout, stderr := runCLI("validate", cfg)
	if code != 0 || !strings.Contains(stdout, "1. prepare") || !strings.Contains(stdout, `"min_opset":14`) || !strings.Contains(stdout, "out/m.onnx") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// The config contract's full example (testdata/configs/contract.yaml, from CONFIG.md)
// decodes, every stage and key of it: users and acceptance checks write configs that way.
func TestContractExampleValidates(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/configs/contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := write(t, dir, "contract.yaml", string(data))
	code, stdout, stderr := runCLI("validate", cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"1. prepare", "2. calibrate", `"tensors":"all"`, "3. quantize", "4. verify", "5. float16", "6. distill", "7. qat", "8. save"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the plan lacks %s:\n%s", want, stdout)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/models/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	write(t, dir, "models/good.onnx", string(data))
	write(t, dir, "models/bad.onnx", "not a model")
	cfg := write(t, dir, "c.yaml", "models: [models/*.onnx]\noutput: out/{name}.onnx\nstages: [prepare]\n")
	code, stdout, stderr := runCLI("run", "--quiet", cfg)
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "2 jobs: 1 ok, 1 failed") || !strings.Contains(stdout, "bad.onnx") {
		t.Errorf("summary:\n%s", stdout)
	}
	if _, err := onnxio.Load(filepath.Join(dir, "out", "good.onnx")); err != nil {
		t.Errorf("good artifact: %v", err)
	}
	// A glob that matches nothing is a config error: exit 2.
	cfg = write(t, dir, "c2.yaml", "models: [nothing/*.onnx]\noutput: out/{name}.onnx\nstages: [prepare]\n")
	if code, _, stderr := runCLI("run", cfg); code != ExitUsage || !strings.Contains(stderr, "matches no files") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if code, _, _ := runCLI("run", filepath.Join(dir, "missing.yaml")); code != ExitUsage {
		t.Errorf("missing config: exit %d", code)
	}
	if code, _, _ := runCLI("frobnicate"); code != ExitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestInspectJSON(t *testing.T) {
	code, stdout, stderr := runCLI("inspect", "--json", "../../testdata/models/resnet_small.onnx")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s onnxio.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Ops["Conv"] != 9 || s.Ops["BatchNormalization"] != 9 || s.Runtime == nil || !s.Runtime.Opens || s.Inputs[0].Shape[0] != "batch" {
		t.Errorf("summary: %+v", s)
	}
	if code, _, stderr := runCLI("inspect", "../../testdata/models/README.md"); code != ExitFailed || !strings.Contains(stderr, "not an ONNX model") {
		t.Errorf("inspect of a non-model: exit %d %s", code, stderr)
	}
}

// TestStagesDoc keeps docs/stages.md equal to `onnxpipe stages --markdown`.
func TestStagesDoc(t *testing.T) {
	var b bytes.Buffer
	StagesMarkdown(&b, pipeline.Stages())
	have, err := os.ReadFile("../../docs/stages.md")
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Fatal("docs/stages.md is stale: run `make generate`")
	}
}

// TestEveryOptionDocumented fails when an option field has no doc comment.
func TestEveryOptionDocumented(t *testing.T) {
	code, stdout, _ := runCLI("stages")
	if code != 0 {
		t.Fatal(code)
	}
	lines := strings.Split(stdout, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "      ") && i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "" {
			t.Errorf("option without a doc comment: %s", strings.TrimSpace(l))
		}
	}
}

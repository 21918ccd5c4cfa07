package float16_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

func initORT(t *testing.T) {
	t.Helper()
	if err := ort.Init(""); err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
}

// writeConfig writes an inline config beside copies of nothing: model paths in it are
// absolute.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "models", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func metric(st *report.Stage, name string) (float64, bool) {
	for _, m := range st.Metrics {
		if m.Name == name {
			return float64(m.Value), true
		}
	}
	return 0, false
}

// onlyOutcome checks the run had one job that ended with status want.
func onlyOutcome(t *testing.T, res *pipeline.RunResult, want string) *pipeline.Outcome {
	t.Helper()
	if len(res.Outcomes) != 1 {
		t.Fatalf("%d jobs, want 1", len(res.Outcomes))
	}
	o := res.Outcomes[0]
	if o.Status != want {
		msg := ""
		for _, s := range o.Report.Stages {
			msg += "\n" + s.Stage + ": " + s.Status + " " + s.Error
		}
		t.Fatalf("job %s: %s (%v), want %s%s", o.Job.Name, o.Status, o.Err, want, msg)
	}
	return o
}

// TestConfigFloat16 runs configs/float16.yaml: the MNIST CNN to float16, verified on the
// 10,000 test images.
func TestConfigFloat16(t *testing.T) {
	initORT(t)
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MNIST_DIR", dir)
	out := t.TempDir()
	res := testutil.RunConfig(t, "../../configs/float16.yaml", "output="+filepath.Join(out, "{name}.fp16.onnx"),
		"stages.2.verify.latency.runs=3")
	o := onlyOutcome(t, res, pipeline.StatusOK)
	fs := testutil.StageRecord(t, o, "float16")
	ratio, _ := metric(fs, "size_ratio")
	if ratio <= 0 || ratio > 0.51 {
		t.Errorf("size ratio %.4f, want <= 0.51", ratio)
	}
	if n, _ := metric(fs, "nodes_kept_float32"); n != 0 {
		t.Errorf("%g nodes kept in float32; the cpu block list has none of mnist_cnn's ops", n)
	}
	vs := testutil.StageRecord(t, o, "verify")
	sqnr, _ := metric(vs, "sqnr_db")
	acc, _ := metric(vs, "accuracy")
	t.Logf("mnist_cnn float16: size %.3fx, SQNR %.1f dB, accuracy %.4f", ratio, sqnr, acc)
	if sqnr < 40 {
		t.Errorf("SQNR %.1f dB < 40", sqnr)
	}
	m, err := onnxio.Load(filepath.Join(out, "mnist_cnn.fp16.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s := onnxio.Summarize(m)
	if !s.Float16 {
		t.Errorf("the output is not a float16 model: %+v", s.Params)
	}
	in := m.Graph().GetInput()[0].GetType().GetTensorType().GetElemType()
	if onnxio.DataType(in) != onnxio.TypeFloat {
		t.Errorf("keep_io_types: the input is %s, want float", onnxio.DataType(in))
	}
}

// TestConfigFloat16Mixed runs configs/float16-mixed.yaml: fold_shapes and auto_mixed on
// the Transformer fixture, with a bound the fully converted model misses.
func TestConfigFloat16Mixed(t *testing.T) {
	initORT(t)
	out := t.TempDir()
	res := testutil.RunConfig(t, "../../configs/float16-mixed.yaml", "output="+filepath.Join(out, "{name}.mixed.onnx"),
		"stages.1.verify.latency.runs=3")
	o := onlyOutcome(t, res, pipeline.StatusOK)
	fs := testutil.StageRecord(t, o, "float16")
	kept, _ := metric(fs, "auto_mixed_kept")
	evals, _ := metric(fs, "auto_mixed_evals")
	got, _ := metric(fs, "auto_mixed_metric")
	ratio, _ := metric(fs, "size_ratio")
	removed, _ := metric(fs, "shape_nodes_removed")
	t.Logf("tiny_transformer mixed: %g nodes kept after %g evaluations, SQNR %.2f dB on the search set, size %.3fx, %g shape nodes removed",
		kept, evals, got, ratio, removed)
	if kept < 1 || evals < 3 {
		t.Errorf("auto_mixed kept %g nodes after %g evaluations; the fully converted model misses 66 dB, so some must stay float32", kept, evals)
	}
	if got < 66 {
		t.Errorf("auto_mixed returned a model at %.2f dB < 66", got)
	}
	if removed < 100 {
		t.Errorf("fold_shapes removed %g nodes, want the ~140 of the attention shape arithmetic", removed)
	}
	named := false
	for _, n := range fs.Notes {
		if strings.Contains(n, "nodes kept in float32 to meet sqnr_db >= 66") {
			named = true
		}
	}
	if !named {
		t.Errorf("no note names the kept nodes: %q", fs.Notes)
	}
	m, err := onnxio.Load(filepath.Join(out, "tiny_transformer.mixed.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// The kept nodes compute in float32: each reads a float32 value.
	types := map[string]onnxio.DataType{}
	for _, in := range m.Graph().GetInput() {
		types[in.GetName()] = onnxio.DataType(in.GetType().GetTensorType().GetElemType())
	}
	for _, init := range m.Graph().GetInitializer() {
		types[init.GetName()] = onnxio.DataType(init.GetDataType())
	}
	floatReaders := 0
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Cast" {
			types[n.GetOutput()[0]] = onnxio.DataType(onnxio.Attr(n, "to").GetI())
		}
		for _, in := range n.GetInput() {
			if types[in] == onnxio.TypeFloat && n.GetOpType() != "Cast" {
				floatReaders++
			}
		}
	}
	if floatReaders == 0 {
		t.Errorf("no node of the result reads float32 data: the kept nodes were converted")
	}
}

// TestVariants runs the stage on every fixture with other types and targets, on random
// data, and checks onnxruntime's CPU provider runs each result within the bound.
func TestVariants(t *testing.T) {
	initORT(t)
	cases := []struct {
		model, opts string
		sqnr        float64
		maxRatio    float64
	}{
		{"mnist_cnn", "{}", 40, 0.51},
		{"resnet_small", "{}", 40, 0.515},
		{"tiny_transformer", "{}", 40, 0.51},
		{"tiny_transformer", "{fold_shapes: false}", 40, 0.67},
		{"resnet_small", "{target: cuda}", 40, 0.515},
		{"tiny_transformer", "{target: cuda, block_ops: [Softmax], block_nodes: ['/encoder/layers.1/*']}", 40, 0.8},
		{"resnet_small", "{keep_io_types: false}", 40, 0.515}, // verify converts the float32 data
		{"resnet_small", "{type: bfloat16, force_initializers: true}", 30, 0.53},
		{"tiny_transformer", "{type: bfloat16, force_initializers: true}", 30, 0.54},
		{"mnist_cnn", "{type: bfloat16}", 30, 1.0},
		{"mnist_cnn", "{type: bfloat16, keep_io_types: false, force_initializers: true}", 30, 0.52}, // bfloat16 inputs fed converted data
	}
	for _, c := range cases {
		verify := `
  - verify: {dataset: probe, reference: input, thresholds: {sqnr_db: ` + ftoa(c.sqnr) + `}}`
		if c.sqnr == 0 {
			verify = ""
		}
		cfg := writeConfig(t, `
model: `+fixture(t, c.model)+`
output: `+filepath.Join(t.TempDir(), "{name}.out.onnx")+`
datasets:
  probe: {format: random, samples: 16, seed: 3}
stages:
  - float16: `+c.opts+verify+`
`)
		res := testutil.RunConfig(t, cfg)
		o := onlyOutcome(t, res, pipeline.StatusOK)
		fs := testutil.StageRecord(t, o, "float16")
		ratio, _ := metric(fs, "size_ratio")
		kept, _ := metric(fs, "nodes_kept_float32")
		line := c.model + " " + c.opts
		if c.sqnr > 0 {
			sqnr, _ := metric(testutil.StageRecord(t, o, "verify"), "sqnr_db")
			t.Logf("%-70s size %.3fx, %3g kept float32, SQNR %.1f dB", line, ratio, kept, sqnr)
		} else {
			t.Logf("%-70s size %.3fx, %3g kept float32", line, ratio, kept)
		}
		if ratio > c.maxRatio {
			t.Errorf("%s: size ratio %.4f > %.3f", line, ratio, c.maxRatio)
		}
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestOptionErrors checks that bad options are rejected before any model is read, each
// with one line naming the key.
func TestOptionErrors(t *testing.T) {
	cases := []struct{ opts, want string }{
		{"{type: float8}", `c.yaml:6:21: float16: type: "float8" is not one of float16, bfloat16 (did you mean "float16"?)`},
		{"{target: tensorrt}", `c.yaml:6:23: float16: target: "tensorrt" is not one of cpu, cuda`},
		{"{block_ops: ['Conv*']}", `block_ops: "Conv*" is not an op type`},
		{"{block_nodes: ['[']}", `block_nodes: bad pattern "["`},
		{"{auto_mixed: {dataset: probe, metric: max_abs}}", `c.yaml:6:52: float16: metric: "max_abs" is not one of sqnr_db`},
		{"{auto_mixed: {dataset: nope}}", `dataset "nope" is not defined`},
		{"{auto_mixed: {dataset: probe, samples: -1}}", `c.yaml:6:44: float16: auto_mixed.samples: -1: 0 (the whole dataset)`},
		{"{fold_shape: true}", `fold_shape`},
	}
	for _, c := range cases {
		cfg := writeConfig(t, `
model: `+fixture(t, "mnist_cnn")+`
datasets:
  probe: {format: random, samples: 4}
stages:
  - float16: `+c.opts+`
`)
		_, err := pipeline.Load(cfg, pipeline.LoadOptions{})
		if err == nil {
			t.Errorf("%s: accepted", c.opts)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to contain %q", c.opts, err, c.want)
		}
		for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
			if !strings.Contains(line, "float16") {
				t.Errorf("%s: error line %q does not name the stage", c.opts, line)
			}
		}
	}
}

// TestRunErrors checks the stage's failures at run time: a model already in float16, and
// an auto_mixed bound no choice of nodes can meet.
func TestRunErrors(t *testing.T) {
	initORT(t)
	// A float16 model (made by a first run) cannot be converted again.
	dir := t.TempDir()
	cfg := writeConfig(t, `
model: `+fixture(t, "mnist_cnn")+`
output: `+filepath.Join(dir, "{name}.fp16.onnx")+`
stages:
  - float16
`)
	onlyOutcome(t, testutil.RunConfig(t, cfg), pipeline.StatusOK)
	cfg = writeConfig(t, `
model: `+filepath.Join(dir, "mnist_cnn.fp16.onnx")+`
output: `+filepath.Join(dir, "{name}.again.onnx")+`
stages:
  - float16
`)
	o := onlyOutcome(t, testutil.RunConfig(t, cfg), pipeline.StatusFailed)
	if msg := testutil.StageRecord(t, o, "float16").Error; !strings.Contains(msg, "already float16") || strings.Contains(msg, "\n") {
		t.Errorf("float16 twice: %q", msg)
	}
	// keep_io_types: false feeds float16 inputs; the float32 graph output compared at
	// +Inf dB cannot be reached by any float16 conversion.
	cfg = writeConfig(t, `
model: `+fixture(t, "resnet_small")+`
output: `+filepath.Join(dir, "{name}.never.onnx")+`
datasets:
  probe: {format: random, samples: 4, seed: 1}
stages:
  - float16: {keep_io_types: false, auto_mixed: {dataset: probe, metric: sqnr_db, min: 200}}
`)
	o = onlyOutcome(t, testutil.RunConfig(t, cfg), pipeline.StatusFailed)
	msg := testutil.StageRecord(t, o, "float16").Error
	t.Logf("unreachable bound: %s", msg)
	if !strings.Contains(msg, "auto_mixed") || !strings.Contains(msg, "200") || strings.Contains(msg, "\n") {
		t.Errorf("unreachable bound: %q", msg)
	}
	// An unmatched block_nodes pattern is a warning.
	cfg = writeConfig(t, `
model: `+fixture(t, "mnist_cnn")+`
output: `+filepath.Join(dir, "{name}.warn.onnx")+`
stages:
  - float16: {block_nodes: [no_such_node]}
`)
	o = onlyOutcome(t, testutil.RunConfig(t, cfg), pipeline.StatusOK)
	if w := testutil.StageRecord(t, o, "float16").Warnings; len(w) != 1 || !strings.Contains(w[0], "no_such_node") {
		t.Errorf("warnings %q, want one naming no_such_node", w)
	}
}

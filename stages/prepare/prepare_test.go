package prepare_test

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize"
	"github.com/onnxpipe/onnxpipe/report"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
	"github.com/onnxpipe/onnxpipe/stages/prepare"
)

// config writes a config that runs the given stages (YAML list entries) on model and
// writes {name}.prep.onnx beside it; it returns the config's path and the output's.
func config(t *testing.T, model, stages string) (cfg, out string) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, strings.TrimSuffix(filepath.Base(model), ".onnx")+".prep.onnx")
	text := fmt.Sprintf("model: %s\noutput: %s\nstages:\n%s", model, filepath.Join(dir, "{name}.prep.onnx"), stages)
	cfg = filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, out
}

// run runs the stages on model and returns the job's outcome and, when it succeeded,
// the artifact.
func run(t *testing.T, model, stages string) (*pipeline.Outcome, *onnxio.Model) {
	t.Helper()
	cfg, out := config(t, model, stages)
	res := testutil.RunConfig(t, cfg)
	if len(res.Outcomes) != 1 {
		t.Fatalf("%d jobs, want 1", len(res.Outcomes))
	}
	o := res.Outcomes[0]
	if o.Status != pipeline.StatusOK {
		return o, nil
	}
	m, err := onnxio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	return o, m
}

// mustRun is run that fails the test unless the job succeeded.
func mustRun(t *testing.T, model, stages string) (*report.Stage, *onnxio.Model) {
	t.Helper()
	o, m := run(t, model, stages)
	if o.Status != pipeline.StatusOK {
		t.Fatalf("job %s: %v", o.Status, o.Err)
	}
	return testutil.StageRecord(t, o, "prepare"), m
}

func metric(t *testing.T, s *report.Stage, name string) float64 {
	t.Helper()
	for _, m := range s.Metrics {
		if m.Name == name {
			return float64(m.Value)
		}
	}
	t.Fatalf("stage %s has no metric %q (%v)", s.Stage, name, s.Metrics)
	return 0
}

func ops(m *onnxio.Model) map[string]int { return onnxio.Summarize(m).Ops }

func readNpy(t *testing.T, path string) *onnxio.Tensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npyio.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var data []float32
	if err := r.Read(&data); err != nil {
		t.Fatal(err)
	}
	var shape []int64
	for _, d := range r.Header.Descr.Shape {
		shape = append(shape, int64(d))
	}
	return onnxio.NewTensor(shape, data)
}

// outputs runs m in onnxruntime (CPU, graph optimizations off, so that what is compared
// is the graph itself) on the feeds.
func outputs(t *testing.T, m *onnxio.Model, feeds map[string]*onnxio.Tensor) map[string][]float32 {
	t.Helper()
	if err := ort.Init(""); err != nil {
		t.Fatal(err)
	}
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Optimization: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string][]float32{}
	for name, v := range out {
		f, err := v.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		vals[name] = f
	}
	return vals
}

// sameOutputs checks that a and b compute the same outputs on feeds, to tol relative to
// the largest magnitude.
func sameOutputs(t *testing.T, a, b *onnxio.Model, feeds map[string]*onnxio.Tensor, tol float64) {
	t.Helper()
	oa, ob := outputs(t, a, feeds), outputs(t, b, feeds)
	if len(oa) != len(ob) {
		t.Fatalf("%d outputs, then %d", len(oa), len(ob))
	}
	for name, va := range oa {
		vb, ok := ob[name]
		if !ok || len(va) != len(vb) {
			t.Fatalf("output %s: %d values, then %d (present %v)", name, len(va), len(vb), ok)
		}
		var scale, worst float64
		for i := range va {
			scale = math.Max(scale, math.Abs(float64(va[i])))
			worst = math.Max(worst, math.Abs(float64(va[i])-float64(vb[i])))
		}
		if worst > tol*math.Max(scale, 1) {
			t.Errorf("output %s: largest difference %g (scale %g), want <= %g relative", name, worst, scale, tol)
		}
	}
}

func fixtureModel(t *testing.T, name string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(testutil.Fixture(name + ".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fixtureFeeds(t *testing.T, name string) map[string]*onnxio.Tensor {
	return map[string]*onnxio.Tensor{"input": readNpy(t, testutil.Fixture(name+".input.npy"))}
}

// TestDefaults: the options' defaults are the documented ones (docs/stages.md), and a
// bare `- prepare` decodes to them.
func TestDefaults(t *testing.T) {
	want := prepare.Options{FoldBatchNorm: true, FoldConstants: true, ConstantsToInitializers: true, MinOpset: 13}
	if got := *prepare.Stage.NewOptions().(*prepare.Options); got != want {
		t.Errorf("NewOptions() = %+v, want %+v", got, want)
	}
	for _, entry := range []string{"  - prepare\n", "  - prepare:\n", "  - prepare: {}\n"} {
		cfg, _ := config(t, testutil.Fixture("mnist_cnn.onnx"), entry)
		c, err := pipeline.Load(cfg, pipeline.LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", entry, err)
		}
		if len(c.Plan.Entries) != 1 || c.Plan.Entries[0].Stage != prepare.Stage {
			t.Fatalf("%q: plan %v", entry, c.Plan)
		}
		if got := *c.Plan.Entries[0].Options.(*prepare.Options); got != want {
			t.Errorf("%q decodes to %+v, want %+v", entry, got, want)
		}
	}
	if !prepare.Stage.Mutates(prepare.Stage.NewOptions()) {
		t.Error("prepare does not declare that it changes the model")
	}
}

// TestOptionsDecode: each option takes its value from the config.
func TestOptionsDecode(t *testing.T) {
	for _, tc := range []struct {
		entry string
		want  prepare.Options
	}{
		{"{fold_batchnorm: false}", prepare.Options{FoldBatchNorm: false, FoldConstants: true, ConstantsToInitializers: true, MinOpset: 13}},
		{"{fold_constants: false}", prepare.Options{FoldBatchNorm: true, FoldConstants: false, ConstantsToInitializers: true, MinOpset: 13}},
		{"{constants_to_initializers: false}", prepare.Options{FoldBatchNorm: true, FoldConstants: true, ConstantsToInitializers: false, MinOpset: 13}},
		{"{min_opset: 0}", prepare.Options{FoldBatchNorm: true, FoldConstants: true, ConstantsToInitializers: true, MinOpset: 0}},
		{"{min_opset: 17}", prepare.Options{FoldBatchNorm: true, FoldConstants: true, ConstantsToInitializers: true, MinOpset: 17}},
		{"{fold_batchnorm: false, fold_constants: false, constants_to_initializers: false, min_opset: 0}", prepare.Options{}},
	} {
		cfg, _ := config(t, testutil.Fixture("mnist_cnn.onnx"), "  - prepare: "+tc.entry+"\n")
		c, err := pipeline.Load(cfg, pipeline.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.entry, err)
		}
		if got := *c.Plan.Entries[0].Options.(*prepare.Options); got != tc.want {
			t.Errorf("%s decodes to %+v, want %+v", tc.entry, got, tc.want)
		}
	}
}

// TestOptionErrors: a bad option is a config error at its line:col, before any model is
// read (the model path does not exist); an unknown key is named, with a suggestion.
func TestOptionErrors(t *testing.T) {
	// the config's head is 3 lines (model, output, stages:); the entry is line 4, its
	// options mapping starts at column 14
	for _, tc := range []struct {
		entry string
		want  string
	}{
		{"{fold_batchnorms: false}", `c.yaml:4:15: prepare: unknown field "fold_batchnorms" (did you mean "fold_batchnorm"?)`},
		{"{fold_batchnorm: maybe}", "c.yaml:4:31: prepare: cannot unmarshal !!str `maybe` into bool"},
		{"{min_opset: thirteen}", "c.yaml:4:26: prepare: cannot unmarshal !!str `thirteen` into int64"},
		{"{min_opset: 99999999999999999999}", "c.yaml:4:26: prepare: cannot unmarshal"},
		{"{fold_constants: [true]}", "c.yaml:4:31: prepare: expected a boolean, got a list"},
		{"true", "c.yaml:4:14: prepare: expected a mapping, got a boolean (true)"},
		{"[1]", "c.yaml:4:14: prepare: expected a mapping, got a list"},
	} {
		cfg, _ := config(t, filepath.Join(t.TempDir(), "missing.onnx"), "  - prepare: "+tc.entry+"\n")
		_, err := pipeline.Load(cfg, pipeline.LoadOptions{})
		if err == nil {
			t.Errorf("%s: accepted", tc.entry)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want %q", tc.entry, err, tc.want)
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
			t.Errorf("%s: %d problems reported, want 1:\n%s", tc.entry, n, err)
		}
	}
}

// TestImplicitPrepare: a config with calibrate or quantize and no prepare before them
// gets one with the defaults, just before the first of them (the stage's doc).
func TestImplicitPrepare(t *testing.T) {
	defaults := *prepare.Stage.NewOptions().(*prepare.Options)
	for _, tc := range []struct {
		stages string
		want   []string // stage names, "+" marking an implicit entry
	}{
		{"  - quantize: {mode: dynamic}\n", []string{"+prepare", "quantize"}},
		{"  - float16\n  - quantize: {mode: dynamic}\n", []string{"float16", "+prepare", "quantize"}},
		{"  - prepare: {min_opset: 17}\n  - quantize: {mode: dynamic}\n", []string{"prepare", "quantize"}},
		{"  - quantize: {mode: dynamic}\n  - prepare\n", []string{"+prepare", "quantize", "prepare"}},
		{"  - float16\n", []string{"float16"}},
		{"  - prepare\n", []string{"prepare"}},
	} {
		cfg, _ := config(t, testutil.Fixture("mnist_cnn.onnx"), tc.stages)
		c, err := pipeline.Load(cfg, pipeline.LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", tc.stages, err)
		}
		var got []string
		for _, e := range c.Plan.Entries {
			name := e.Stage.Name
			if e.Implicit {
				name = "+" + name
				if *e.Options.(*prepare.Options) != defaults {
					t.Errorf("%q: the implicit prepare has options %+v, want the defaults", tc.stages, e.Options)
				}
				if e.Reason != "quantize works on the prepared graph" {
					t.Errorf("%q: reason %q", tc.stages, e.Reason)
				}
			}
			got = append(got, name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: plan %v, want %v", tc.stages, got, tc.want)
		}
	}
}

// TestFoldBatchNorm: with the defaults every BatchNormalization of the fixtures goes
// into the Conv before it (mnist_cnn's Convs have a bias, resnet_small's have none), the
// results stay what they were, and fold_batchnorm: false keeps them.
func TestFoldBatchNorm(t *testing.T) {
	for _, tc := range []struct {
		fixture   string
		bn, convs int
	}{
		{"mnist_cnn", 2, 2},
		{"resnet_small", 9, 9},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			in := fixtureModel(t, tc.fixture)
			if n := ops(in)["BatchNormalization"]; n != tc.bn {
				t.Fatalf("the fixture has %d BatchNormalization nodes, want %d", n, tc.bn)
			}
			rec, m := mustRun(t, testutil.Fixture(tc.fixture+".onnx"), "  - prepare\n")
			if n := ops(m)["BatchNormalization"]; n != 0 {
				t.Errorf("%d BatchNormalization nodes left", n)
			}
			if n := ops(m)["Conv"]; n != tc.convs {
				t.Errorf("%d Conv nodes, want %d", n, tc.convs)
			}
			for _, n := range m.Graph().GetNode() {
				if n.GetOpType() == "Conv" && len(n.GetInput()) != 3 {
					t.Errorf("Conv %s has inputs %v: the folded BatchNormalization's shift needs a bias", n.GetName(), n.GetInput())
				}
			}
			if got := metric(t, rec, "batchnorms_folded"); got != float64(tc.bn) {
				t.Errorf("batchnorms_folded = %v, want %d", got, tc.bn)
			}
			feeds := fixtureFeeds(t, tc.fixture)
			sameOutputs(t, in, m, feeds, 1e-4)
			// and against PyTorch's recorded outputs
			want := readNpy(t, testutil.Fixture(tc.fixture+".output.npy")).Data.([]float32)
			got := outputs(t, m, feeds)["logits"]
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
					t.Fatalf("logits[%d] = %v, PyTorch %v", i, got[i], want[i])
				}
			}

			rec, kept := mustRun(t, testutil.Fixture(tc.fixture+".onnx"), "  - prepare: {fold_batchnorm: false}\n")
			if n := ops(kept)["BatchNormalization"]; n != tc.bn {
				t.Errorf("fold_batchnorm: false: %d BatchNormalization nodes, want %d", n, tc.bn)
			}
			if got := metric(t, rec, "batchnorms_folded"); got != 0 {
				t.Errorf("fold_batchnorm: false: batchnorms_folded = %v", got)
			}
			sameOutputs(t, in, kept, feeds, 1e-5)
		})
	}
}

// TestConstantsToInitializers: tiny_transformer's 66 Constant nodes become initializers
// with the defaults and stay with constants_to_initializers: false; either way the model
// computes what it did.
func TestConstantsToInitializers(t *testing.T) {
	src := testutil.Fixture("tiny_transformer.onnx")
	in := fixtureModel(t, "tiny_transformer")
	const constants = 66
	if n := ops(in)["Constant"]; n != constants {
		t.Fatalf("the fixture has %d Constant nodes, want %d", n, constants)
	}
	feeds := fixtureFeeds(t, "tiny_transformer")

	rec, m := mustRun(t, src, "  - prepare\n")
	if n := ops(m)["Constant"]; n != 0 {
		t.Errorf("%d Constant nodes left", n)
	}
	if got := metric(t, rec, "constant_nodes_to_initializers"); got != constants {
		t.Errorf("constant_nodes_to_initializers = %v, want %d", got, constants)
	}
	if n := onnxio.Summarize(m).Params.InConstantNodes; n != 0 {
		t.Errorf("%d tensors still in Constant nodes", n)
	}
	sameOutputs(t, in, m, feeds, 1e-5)

	rec, kept := mustRun(t, src, "  - prepare: {constants_to_initializers: false}\n")
	if n := ops(kept)["Constant"]; n != constants {
		t.Errorf("constants_to_initializers: false: %d Constant nodes, want %d", n, constants)
	}
	if got := metric(t, rec, "constant_nodes_to_initializers"); got != 0 {
		t.Errorf("constants_to_initializers: false: constant_nodes_to_initializers = %v", got)
	}
	sameOutputs(t, in, kept, feeds, 1e-5)
}

// TestMinOpset: the opset is raised to min_opset and never lowered; 0 leaves it; a raise
// is noted in the report; an opset the upgrader does not know fails the job, saying so.
func TestMinOpset(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		entry   string
		want    int64
		note    string // "" = no opset note
	}{
		{"mnist_cnn", "  - prepare\n", 13, ""},
		{"mnist_cnn", "  - prepare: {min_opset: 0}\n", 13, ""},
		{"mnist_cnn", "  - prepare: {min_opset: 12}\n", 13, ""},
		{"mnist_cnn", "  - prepare: {min_opset: 17}\n", 17, "opset raised from 13 to 17"},
		{"mnist_cnn", "  - prepare: {min_opset: 21}\n", 21, "opset raised from 13 to 21"},
		{"tiny_transformer", "  - prepare\n", 17, ""},
	} {
		t.Run(tc.fixture+" "+strings.TrimSpace(tc.entry), func(t *testing.T) {
			rec, m := mustRun(t, testutil.Fixture(tc.fixture+".onnx"), tc.entry)
			if got := m.Opset(""); got != tc.want {
				t.Errorf("opset %d, want %d", got, tc.want)
			}
			hasNote := slices.ContainsFunc(rec.Notes, func(n string) bool { return strings.HasPrefix(n, "opset raised") })
			switch {
			case tc.note == "" && hasNote:
				t.Errorf("notes %q, want no opset note", rec.Notes)
			case tc.note != "" && !slices.Contains(rec.Notes, tc.note):
				t.Errorf("notes %q, want %q", rec.Notes, tc.note)
			}
			if tc.want != 13 && tc.fixture == "mnist_cnn" {
				sameOutputs(t, fixtureModel(t, tc.fixture), m, fixtureFeeds(t, tc.fixture), 1e-4)
			}
		})
	}
	o, _ := run(t, testutil.Fixture("mnist_cnn.onnx"), "  - prepare: {min_opset: 22}\n")
	if o.Status != pipeline.StatusFailed || o.Err == nil || !strings.Contains(o.Err.Error(), "opset upgrade is implemented up to 21, not 22") {
		t.Errorf("min_opset: 22: job %s, %v; want it failed with the upgrader's limit", o.Status, o.Err)
	}
	if rec := testutil.StageRecord(t, o, "prepare"); rec.Status != pipeline.StatusFailed || !strings.Contains(rec.Error, "not 22") {
		t.Errorf("min_opset: 22: stage %s %q", rec.Status, rec.Error)
	}
}

// TestUpgradeRewritesOps: raising the opset across 13 rewrites the ops whose signature
// changed (Unsqueeze's and ReduceSum's axes become an input) and keeps the values.
func TestUpgradeRewritesOps(t *testing.T) {
	b := onnxio.NewBuilder(11)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 3})
	u := b.Op("Unsqueeze", []string{x}, onnxio.AttrInts("axes", 1))
	b.Op("ReduceSum", []string{u}, onnxio.AttrInts("axes", 2), onnxio.AttrInt("keepdims", 0))
	b.Graph().Node[1].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, []int64{-1, 1})
	in := save(t, b, "upgrade.onnx")

	rec, m := mustRun(t, in, "  - prepare\n")
	if m.Opset("") != 13 {
		t.Errorf("opset %d, want 13", m.Opset(""))
	}
	for _, n := range m.Graph().GetNode() {
		if onnxio.Attr(n, "axes") != nil || len(n.GetInput()) != 2 {
			t.Errorf("%s at opset 13 still has the axes attribute or lacks the axes input: %v", n.GetOpType(), n)
		}
	}
	if !slices.Contains(rec.Notes, "opset raised from 11 to 13") {
		t.Errorf("notes %q", rec.Notes)
	}
	feeds := map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})}
	sameOutputs(t, load(t, in), m, feeds, 0)
}

// save writes the built model under a temporary folder and returns its path.
func save(t *testing.T, b *onnxio.Builder, name string) string {
	t.Helper()
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := m.Save(p, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, path string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cleanupModel is y = (x·Identity(W) + (c1 + c2)) * k with k a Constant node, its nodes
// listed out of topological order and the last ones unnamed: everything prepare cleans.
func cleanupModel(t *testing.T) string {
	t.Helper()
	b := onnxio.NewBuilder(13)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 4})
	w := b.Initializer("W", onnxio.NewTensor([]int64{4, 3}, []float32{1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.25, 2}))
	c1 := b.Initializer("c1", onnxio.NewTensor([]int64{3}, []float32{1, 2, 3}))
	c2 := b.Initializer("c2", onnxio.NewTensor([]int64{3}, []float32{0.5, -1, 4}))
	wid := b.Op("Identity", []string{w})
	s := b.Op("Add", []string{c1, c2})
	mm := b.Op("MatMul", []string{x, wid})
	h := b.Op("Add", []string{mm, s})
	kt, err := onnxio.EncodeTensor("", onnxio.NewTensor([]int64{3}, []float32{2, 3, 4}))
	if err != nil {
		t.Fatal(err)
	}
	k := b.Op("Constant", nil, onnxio.AttrTensor("value", kt))
	b.Op("Mul", []string{h, k})
	g := b.Graph()
	g.Node[len(g.Node)-1].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, []int64{-1, 3})
	// the last two nodes unnamed; reversed order
	g.Node[len(g.Node)-1].Name = nil
	g.Node[len(g.Node)-2].Name = nil
	slices.Reverse(g.Node)
	return save(t, b, "cleanup.onnx")
}

func topologicallySorted(g *onnxpb.GraphProto) bool {
	made := map[string]bool{}
	for _, in := range g.GetInput() {
		made[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		made[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			if in != "" && !made[in] {
				return false
			}
		}
		for _, o := range n.GetOutput() {
			made[o] = true
		}
	}
	return true
}

// TestCleanup runs each option combination on a model with every kind of clean-up
// prepare documents and checks what was done, what was left, and that the model still
// computes the same thing.
func TestCleanup(t *testing.T) {
	src := cleanupModel(t)
	in := load(t, src)
	if topologicallySorted(in.Graph()) {
		t.Fatal("the test model is sorted already")
	}
	feeds := map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{2, 4}, []float32{1, 2, 3, 4, -1, 0.5, 0, 8})}
	for _, tc := range []struct {
		entry                   string
		identity, add, constant int // nodes left
		folded, toInitializers  float64
	}{
		{"  - prepare\n", 0, 1, 0, 1, 1},
		{"  - prepare: {fold_constants: false}\n", 1, 2, 0, 0, 1},
		{"  - prepare: {constants_to_initializers: false}\n", 0, 1, 1, 1, 0},
		{"  - prepare: {fold_constants: false, constants_to_initializers: false}\n", 1, 2, 1, 0, 0},
	} {
		t.Run(strings.TrimSpace(tc.entry), func(t *testing.T) {
			rec, m := mustRun(t, src, tc.entry)
			g := m.Graph()
			if !topologicallySorted(g) {
				t.Errorf("nodes not sorted: %v", g.GetNode())
			}
			o := ops(m)
			if o["Identity"] != tc.identity || o["Add"] != tc.add || o["Constant"] != tc.constant || o["MatMul"] != 1 || o["Mul"] != 1 {
				t.Errorf("ops %v, want Identity %d, Add %d, Constant %d, MatMul 1, Mul 1", o, tc.identity, tc.add, tc.constant)
			}
			if got := metric(t, rec, "constants_folded"); got != tc.folded {
				t.Errorf("constants_folded = %v, want %v", got, tc.folded)
			}
			if got := metric(t, rec, "constant_nodes_to_initializers"); got != tc.toInitializers {
				t.Errorf("constant_nodes_to_initializers = %v, want %v", got, tc.toInitializers)
			}
			names := map[string]bool{}
			for _, n := range g.GetNode() {
				if n.GetName() == "" || names[n.GetName()] {
					t.Errorf("node %s %v: unnamed or named twice", n.GetOpType(), n.GetOutput())
				}
				names[n.GetName()] = true
				if n.GetOpType() == "MatMul" && tc.identity == 0 && n.GetInput()[1] != "W" {
					t.Errorf("MatMul reads %v, want W itself once the Identity is bypassed", n.GetInput())
				}
			}
			if err := onnxio.Check(m); err != nil {
				t.Errorf("the result does not check: %v", err)
			}
			sameOutputs(t, in, m, feeds, 1e-6)
		})
	}
}

// TestFoldsUnlessInputsVary: a node fed by a graph input is not folded, even when that
// input has an initializer (a default value the caller may override).
func TestFoldsUnlessInputsVary(t *testing.T) {
	b := onnxio.NewBuilder(13)
	x := b.Input("x", onnxio.TypeFloat, []int64{2})
	bias := b.Input("bias", onnxio.TypeFloat, []int64{2})
	b.Initializer("bias", onnxio.NewTensor([]int64{2}, []float32{1, 1}))
	c := b.Initializer("c", onnxio.NewTensor([]int64{2}, []float32{3, 4}))
	s := b.Op("Mul", []string{bias, c})
	b.Op("Add", []string{x, s})
	b.Graph().Node[1].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, []int64{2})
	src := save(t, b, "override.onnx")
	rec, m := mustRun(t, src, "  - prepare\n")
	if o := ops(m); o["Mul"] != 1 || o["Add"] != 1 {
		t.Errorf("ops %v: the Mul of an overridable input was folded", o)
	}
	if got := metric(t, rec, "constants_folded"); got != 0 {
		t.Errorf("constants_folded = %v", got)
	}
	feeds := map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{2}, []float32{1, 2})}
	sameOutputs(t, load(t, src), m, feeds, 0)
}

// TestLeavesInputAlone: prepare writes its work to the artifact, not to the input file,
// and a job without it writes the input's graph unchanged.
func TestLeavesInputAlone(t *testing.T) {
	src := filepath.Join(t.TempDir(), "mnist_cnn.onnx")
	data, err := os.ReadFile(testutil.Fixture("mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := sha256.Sum256(data)
	_, m := mustRun(t, src, "  - prepare\n")
	after, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(after) != before {
		t.Error("prepare changed the input file")
	}
	if proto.Equal(m.Proto, load(t, src).Proto) {
		t.Error("the artifact is the input: prepare's work is lost")
	}
}

// TestPrepareReport: the stage returns quantize.PrepareReport (its declared result
// type), whose figures are the metrics it records.
func TestPrepareReport(t *testing.T) {
	if prepare.Stage.ResultType.String() != fmt.Sprintf("%T", &quantize.PrepareReport{}) {
		t.Errorf("result type %v", prepare.Stage.ResultType)
	}
	rec, _ := mustRun(t, testutil.Fixture("resnet_small.onnx"), "  - prepare\n")
	var names []string
	for _, m := range rec.Metrics {
		names = append(names, m.Name)
	}
	if want := []string{"batchnorms_folded", "constants_folded", "constant_nodes_to_initializers"}; !slices.Equal(names, want) {
		t.Errorf("metrics %v, want %v", names, want)
	}
	if rec.Status != pipeline.StatusOK {
		t.Errorf("status %s", rec.Status)
	}
}

// TestRandomInputsAfterFold: the folded resnet_small agrees with the original on a
// batch other than the recorded one (BN folding changes real numbers there).
func TestRandomInputsAfterFold(t *testing.T) {
	_, m := mustRun(t, testutil.Fixture("resnet_small.onnx"), "  - prepare\n")
	rng := rand.New(rand.NewPCG(5, 6))
	sameOutputs(t, fixtureModel(t, "resnet_small"), m, testutil.RandomFeed(rng, "input", []int64{3, 3, 32, 32}), 1e-4)
}

package save_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
	"github.com/onnxpipe/onnxpipe/stages/save"
)

// writeConfig writes c.yaml into dir with the given model, output ("" for none) and
// stages.
func writeConfig(t *testing.T, dir, model, output, stages string) string {
	t.Helper()
	text := "model: " + model + "\n"
	if output != "" {
		text += "output: " + output + "\n"
	}
	text += "stages:\n" + stages
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runOne runs the config and returns its only job's outcome.
func runOne(t *testing.T, cfg string) *pipeline.Outcome {
	t.Helper()
	res := testutil.RunConfig(t, cfg)
	if len(res.Outcomes) != 1 {
		t.Fatalf("%d jobs, want 1", len(res.Outcomes))
	}
	return res.Outcomes[0]
}

func mustOK(t *testing.T, o *pipeline.Outcome) {
	t.Helper()
	if o.Status != pipeline.StatusOK {
		t.Fatalf("job %s: %v", o.Status, o.Err)
	}
}

// tempFiles lists the stray temporary files (onnxio.IsTempName) under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var stray []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if onnxio.IsTempName(d.Name()) {
			stray = append(stray, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return stray
}

func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:]), int64(len(data))
}

// rawModel parses a saved model file without reading its external data.
func rawModel(t *testing.T, path string) *onnxpb.ModelProto {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		t.Fatal(err)
	}
	return mp
}

// external lists the initializers of mp stored in an external file, and the locations.
func external(mp *onnxpb.ModelProto) (names []string, locations []string) {
	for _, tp := range mp.GetGraph().GetInitializer() {
		if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			continue
		}
		names = append(names, tp.GetName())
		for _, kv := range tp.GetExternalData() {
			if kv.GetKey() == "location" && !slices.Contains(locations, kv.GetValue()) {
				locations = append(locations, kv.GetValue())
			}
		}
	}
	return names, locations
}

// TestDefaults: the documented defaults (docs/stages.md) and the accepted spellings of
// external.
func TestDefaults(t *testing.T) {
	o := save.Stage.NewOptions().(*save.Options)
	if *o != (save.Options{External: "auto", Threshold: 1024}) {
		t.Errorf("NewOptions() = %+v, want external auto, threshold 1024, no path", *o)
	}
	if got := save.External("").Values(); !slices.Equal(got, []string{"auto", "always", "never"}) {
		t.Errorf("External.Values() = %v", got)
	}
	if save.Stage.Mutates != nil && save.Stage.Mutates(o) {
		t.Error("save declares that it changes the model")
	}
	if save.Stage.ResultType != nil {
		t.Errorf("save declares result type %v", save.Stage.ResultType)
	}
}

// TestValidate calls Validate directly: every problem at once, each at its field.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    save.Options
		want []pipeline.Problem
	}{
		{"all set", save.Options{Path: "a.onnx", External: "auto", Threshold: 1024}, nil},
		{"always", save.Options{Path: "a.onnx", External: "always", Threshold: 1}, nil},
		{"never", save.Options{Path: "a.onnx", External: "never"}, nil},
		{"empty external is auto", save.Options{Path: "a.onnx"}, nil},
		{"threshold 0", save.Options{Path: "a.onnx", External: "always", Threshold: 0}, nil},
		{"no path", save.Options{External: "auto", Threshold: 1024},
			[]pipeline.Problem{{Field: "path", Msg: "is required (e.g. path: out/{name}.step.onnx)"}}},
		{"bad external", save.Options{Path: "a.onnx", External: "Always"},
			[]pipeline.Problem{{Field: "external", Msg: `"Always" is not one of auto, always, never`}}},
		{"negative threshold", save.Options{Path: "a.onnx", Threshold: -1},
			[]pipeline.Problem{{Field: "threshold", Msg: "cannot be negative"}}},
		{"everything wrong", save.Options{External: "sometimes", Threshold: -1024},
			[]pipeline.Problem{
				{Field: "path", Msg: "is required (e.g. path: out/{name}.step.onnx)"},
				{Field: "external", Msg: `"sometimes" is not one of auto, always, never`},
				{Field: "threshold", Msg: "cannot be negative"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			var ps pipeline.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate() = %v (%T), want pipeline.Problems", err, err)
			}
			if !slices.Equal([]pipeline.Problem(ps), tc.want) {
				t.Errorf("Validate() = %q, want %q", ps, tc.want)
			}
		})
	}
}

// TestConfigErrors: the same problems from a config, each at its key's line:col (the
// entry's when the option is not written), reported once, before any model is read.
func TestConfigErrors(t *testing.T) {
	// lines: 1 model, 2 stages:, 3 the entry
	for _, tc := range []struct {
		entry string
		want  []string
	}{
		{"  - save\n", []string{"c.yaml:3:5: save: path: is required (e.g. path: out/{name}.step.onnx)"}},
		{"  - save: {}\n", []string{"c.yaml:3:5: save: path: is required"}},
		{"  - save: {path: a.onnx, external: alway}\n",
			[]string{`c.yaml:3:36: save: external: "alway" is not one of auto, always, never (did you mean "always"?)`}},
		{"  - save: {path: a.onnx, threshold: -1}\n", []string{"c.yaml:3:26: save: threshold: cannot be negative"}},
		{"  - save: {path: a.onnx, threshold: big}\n", []string{"c.yaml:3:37: save: cannot unmarshal !!str `big` into int64"}},
		{"  - save: {path: a.onnx, threshold: 2.5}\n", []string{"c.yaml:3:37: save: threshold: expected an integer, got a number (2.5)"}},
		{"  - save: {pth: a.onnx}\n", []string{
			`c.yaml:3:12: save: unknown field "pth" (did you mean "path"?)`,
			"c.yaml:3:5: save: path: is required",
		}},
		{"  - save:\n      external: never\n      threshold: -5\n", []string{
			"c.yaml:3:5: save: path: is required",
			"c.yaml:5:7: save: threshold: cannot be negative",
		}},
	} {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, filepath.Join(dir, "missing.onnx"), "", tc.entry)
		_, err := pipeline.Load(cfg, pipeline.LoadOptions{})
		if err == nil {
			t.Errorf("%q: accepted", tc.entry)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error lacks %q:\n%s", tc.entry, w, err)
			}
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
			t.Errorf("%q: %d problems, want %d:\n%s", tc.entry, n, len(tc.want), err)
		}
	}
}

// TestPathResolution: a relative path resolves against the config's folder, {name} and
// {dir} are the model's base name and its folder's name, and missing folders are made.
func TestPathResolution(t *testing.T) {
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testutil.Fixture("mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(models, "mnist_cnn.onnx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(dir, "conf")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, confDir, "../models/mnist_cnn.onnx", "",
		"  - save: {path: 'snaps/new/{dir}-{name}.onnx'}\n  - save:\n      path: "+filepath.Join(dir, "abs", "{name}.onnx")+"\n")
	o := runOne(t, cfg)
	mustOK(t, o)
	for _, want := range []string{
		filepath.Join(confDir, "snaps", "new", "models-mnist_cnn.onnx"),
		filepath.Join(dir, "abs", "mnist_cnn.onnx"),
	} {
		m, err := onnxio.Load(want)
		if err != nil {
			t.Errorf("%s: %v", want, err)
			continue
		}
		in, err := onnxio.LoadBytes(data, models)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m.Proto, in.Proto) {
			t.Errorf("%s is not the input model", want)
		}
	}
	if stray := tempFiles(t, dir); len(stray) > 0 {
		t.Errorf("temporary files left: %v", stray)
	}
}

// TestSavesTheCurrentModel: a save in the middle of a chain writes the model as it is at
// that point (after prepare, before float16), records it in the report (path, size,
// sha256, summary) and notes it; the job's output is still the end of the chain.
func TestSavesTheCurrentModel(t *testing.T) {
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before.onnx"), filepath.Join(dir, "prepared.onnx")
	output := filepath.Join(dir, "out.onnx")
	cfg := writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), output,
		"  - save: {path: before.onnx}\n  - prepare\n  - save: {path: prepared.onnx}\n  - float16\n")
	o := runOne(t, cfg)
	mustOK(t, o)
	b, err := onnxio.Load(before)
	if err != nil {
		t.Fatal(err)
	}
	p, err := onnxio.Load(after)
	if err != nil {
		t.Fatal(err)
	}
	out, err := onnxio.Load(output)
	if err != nil {
		t.Fatal(err)
	}
	if n := onnxio.Summarize(b).Ops["BatchNormalization"]; n != 2 {
		t.Errorf("before.onnx has %d BatchNormalization nodes, want the input's 2", n)
	}
	ps := onnxio.Summarize(p)
	if ps.Ops["BatchNormalization"] != 0 || ps.Float16 {
		t.Errorf("prepared.onnx: %d BatchNormalization nodes, float16 %v; want the prepared float32 model", ps.Ops["BatchNormalization"], ps.Float16)
	}
	if !onnxio.Summarize(out).Float16 {
		t.Error("the output is not float16: the chain went on from the save")
	}
	if len(o.Report.Saved) != 2 {
		t.Fatalf("report.saved has %d entries, want 2", len(o.Report.Saved))
	}
	for i, want := range []struct {
		path string
		m    *onnxio.Model
	}{{before, b}, {after, p}} {
		got := o.Report.Saved[i]
		h, n := fileSHA(t, want.path)
		s := onnxio.Summarize(want.m)
		if got.Path != want.path || got.SHA256 != h || got.Bytes != n || got.Nodes != s.Nodes || got.Params != s.Params.Count || got.Quantization != s.Quantization {
			t.Errorf("report.saved[%d] = %+v, want %s, %d bytes, sha256 %s, %d nodes, %d params", i, got, want.path, n, h, s.Nodes, s.Params.Count)
		}
		if a := o.Job.Artifacts()["save:"+want.path]; a != want.path {
			t.Errorf("artifact save:%s = %q", want.path, a)
		}
	}
	var notes []string
	for _, s := range o.Report.Stages {
		if s.Stage == "save" {
			notes = append(notes, s.Notes...)
		}
	}
	if want := []string{"saved " + before, "saved " + after}; !slices.Equal(notes, want) {
		t.Errorf("save notes %q, want %q", notes, want)
	}
}

// TestReplacesAtomically: a save over an existing file replaces it whole (a shorter
// model leaves no tail of the longer one), with mode 0644, and leaves no temporary file.
func TestReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "snap.onnx")
	junk := make([]byte, 4<<20) // longer than the model
	for i := range junk {
		junk[i] = byte(i)
	}
	if err := os.WriteFile(target, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), "", "  - save: {path: snap.onnx}\n")
	mustOK(t, runOne(t, cfg))
	m, err := onnxio.Load(target)
	if err != nil {
		t.Fatalf("the replaced file does not load: %v", err)
	}
	want, err := onnxio.Load(testutil.Fixture("mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Proto, want.Proto) {
		t.Error("the file is not the model")
	}
	data, _ := proto.Marshal(want.Proto)
	if st, err := os.Stat(target); err != nil || st.Size() != int64(len(data)) || st.Mode().Perm() != 0o644 {
		t.Errorf("stat %v, %v: want %d bytes, mode 0644", st, err, len(data))
	}
	if stray := tempFiles(t, dir); len(stray) > 0 {
		t.Errorf("temporary files left: %v", stray)
	}
}

// TestRefusesAndLeavesNoPartialFile: when the save cannot be done the job fails naming
// the reason, what was at the path stays as it was, and no temporary file remains.
func TestRefusesAndLeavesNoPartialFile(t *testing.T) {
	t.Run("a model onnxruntime cannot open", func(t *testing.T) {
		dir := t.TempDir()
		b := onnxio.NewBuilder(13)
		x := b.Input("x", onnxio.TypeFloat, []int64{-1, 4})
		b.Op("NoSuchOp", []string{x})
		b.Graph().Node[0].Output[0] = "y"
		b.Output("y", onnxio.TypeFloat, []int64{-1, 4})
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, "bad.onnx")
		if err := m.Save(src, onnxio.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "snap.onnx")
		if err := os.WriteFile(target, []byte("previous"), 0o644); err != nil {
			t.Fatal(err)
		}
		o := runOne(t, writeConfig(t, dir, src, "", "  - save: {path: snap.onnx}\n"))
		if o.Status != pipeline.StatusFailed || o.Err == nil || !strings.Contains(o.Err.Error(), "save: ") {
			t.Fatalf("job %s, %v; want it failed in save", o.Status, o.Err)
		}
		if rec := testutil.StageRecord(t, o, "save"); rec.Status != pipeline.StatusFailed || !strings.Contains(rec.Error, "NoSuchOp") {
			t.Errorf("save stage %s: %q; want failed naming the op", rec.Status, rec.Error)
		}
		if got, _ := os.ReadFile(target); string(got) != "previous" {
			t.Errorf("the file at the path is now %d bytes, want the previous content", len(got))
		}
		if len(o.Report.Saved) != 0 {
			t.Errorf("report.saved %v for a refused save", o.Report.Saved)
		}
		if stray := tempFiles(t, dir); len(stray) > 0 {
			t.Errorf("temporary files left: %v", stray)
		}
	})
	t.Run("the path is a folder", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "snap.onnx")
		if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
			t.Fatal(err)
		}
		o := runOne(t, writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), "", "  - save: {path: snap.onnx}\n"))
		if o.Status != pipeline.StatusFailed || o.Err == nil || !strings.Contains(o.Err.Error(), "cannot write "+target) {
			t.Fatalf("job %s, %v; want it failed with cannot write %s", o.Status, o.Err, target)
		}
		if st, err := os.Stat(filepath.Join(target, "keep")); err != nil || !st.IsDir() {
			t.Errorf("the folder's content is gone: %v", err)
		}
		if stray := tempFiles(t, dir); len(stray) > 0 {
			t.Errorf("temporary files left: %v", stray)
		}
	})
	t.Run("a parent is a file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		o := runOne(t, writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), "", "  - save: {path: file/snap.onnx}\n"))
		if o.Status != pipeline.StatusFailed || o.Err == nil || !strings.Contains(o.Err.Error(), "cannot create the output folder") {
			t.Fatalf("job %s, %v; want it failed with cannot create the output folder", o.Status, o.Err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "file")); string(got) != "x" {
			t.Errorf("the file in the way changed: %q", got)
		}
		if stray := tempFiles(t, dir); len(stray) > 0 {
			t.Errorf("temporary files left: %v", stray)
		}
	})
	t.Run("a failing save stops the chain", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		output := filepath.Join(dir, "out.onnx")
		o := runOne(t, writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), output,
			"  - save: {path: file/snap.onnx}\n  - save: {path: later.onnx}\n"))
		if o.Status != pipeline.StatusFailed {
			t.Fatalf("job %s", o.Status)
		}
		for _, p := range []string{output, filepath.Join(dir, "later.onnx")} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s written after a failed save (%v)", p, err)
			}
		}
	})
}

// TestExternal: always moves every tensor of at least threshold bytes to <path>.data
// (the model then loads with it and equals the input), never and auto (a small model)
// keep everything in one file.
func TestExternal(t *testing.T) {
	in, err := onnxio.Load(testutil.Fixture("mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{} // initializer -> raw bytes
	for _, tp := range in.Graph().GetInitializer() {
		n := len(tp.GetRawData())
		if n == 0 {
			t.Fatalf("initializer %s has no raw data", tp.GetName())
		}
		sizes[tp.GetName()] = n
	}
	atLeast := func(th int) []string {
		var names []string
		for _, tp := range in.Graph().GetInitializer() {
			if sizes[tp.GetName()] >= th {
				names = append(names, tp.GetName())
			}
		}
		return names
	}
	if len(atLeast(1024)) == 0 || len(atLeast(1024)) == len(atLeast(1)) {
		t.Fatalf("the fixture does not tell thresholds apart: %v", sizes)
	}
	for _, tc := range []struct {
		entry string
		moved []string // nil: no external file
	}{
		{"{path: m.onnx}", nil},
		{"{path: m.onnx, external: auto}", nil},
		{"{path: m.onnx, external: never}", nil},
		{"{path: m.onnx, external: never, threshold: 1}", nil},
		{"{path: m.onnx, external: always}", atLeast(1024)},
		{"{path: m.onnx, external: always, threshold: 1}", atLeast(1)},
		{"{path: m.onnx, external: always, threshold: 4096}", atLeast(4096)},
		{"{path: m.onnx, external: always, threshold: 802816}", atLeast(802816)}, // the Gemm weight, exactly
		{"{path: m.onnx, external: always, threshold: 802817}", []string{}},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			dir := t.TempDir()
			o := runOne(t, writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), "", "  - save: "+tc.entry+"\n"))
			mustOK(t, o)
			path := filepath.Join(dir, "m.onnx")
			names, locs := external(rawModel(t, path))
			datas, _ := filepath.Glob(path + ".*.data")
			if tc.moved == nil {
				if len(names) != 0 || len(datas) != 0 {
					t.Errorf("external tensors %v, data files %v; want one file", names, datas)
				}
			} else {
				slices.Sort(names)
				want := slices.Sorted(slices.Values(tc.moved))
				if !slices.Equal(names, want) {
					t.Errorf("external tensors %v, want %v", names, want)
				}
				if len(names) > 0 && (len(locs) != 1 || len(datas) != 1 || filepath.Join(dir, locs[0]) != datas[0] || !freshData.MatchString(locs[0])) {
					t.Errorf("locations %v, data files %v; want one m.onnx.<8 hex>.data", locs, datas)
				}
			}
			m, err := onnxio.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, tp := range m.Graph().GetInitializer() {
				tp.DataLocation = nil
			}
			if !proto.Equal(m.Graph(), in.Graph()) {
				t.Error("the saved model, loaded with its data, is not the input")
			}
			if got := o.Report.Saved; len(got) != 1 || got[0].Path != path {
				t.Errorf("report.saved %+v", got)
			}
			if stray := tempFiles(t, dir); len(stray) > 0 {
				t.Errorf("temporary files left: %v", stray)
			}
		})
	}
}

// freshData matches the name of a data file Save chooses: m.onnx.<8 hex digits>.data.
var freshData = regexp.MustCompile(`^m\.onnx\.[0-9a-f]{8}\.data$`)

// TestOutputUnaffected: a save stage, external data and all, does not change what the
// job writes to output (one file, the same bytes).
func TestOutputUnaffected(t *testing.T) {
	var hashes []string
	for _, stages := range []string{"  - prepare\n", "  - prepare\n  - save: {path: snap.onnx, external: always}\n"} {
		dir := t.TempDir()
		output := filepath.Join(dir, "out.onnx")
		mustOK(t, runOne(t, writeConfig(t, dir, testutil.Fixture("mnist_cnn.onnx"), output, stages)))
		h, _ := fileSHA(t, output)
		hashes = append(hashes, h)
		if datas, _ := filepath.Glob(output + ".*data"); len(datas) > 0 {
			t.Errorf("%q: the output has external data %v", stages, datas)
		}
	}
	if hashes[0] != hashes[1] {
		t.Errorf("the output differs with a save stage: %v", hashes)
	}
}

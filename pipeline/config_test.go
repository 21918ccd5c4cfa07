package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testOptions exercises the decoder: nested structs, dataset references, paths.
type testOptions struct {
	// Dataset names a dataset.
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Method is minmax or percentile.
	Method string `yaml:"method" json:"method"`
	// Percentile applies to method percentile.
	Percentile float64 `yaml:"percentile" json:"percentile"`
	// Cache is a path.
	Cache string `yaml:"cache" json:"cache" onnxpipe:"path"`
	// Log is a path the stage writes.
	Log string `yaml:"log" json:"log,omitempty" onnxpipe:"path,writes"`
	// Inner is nested.
	Inner struct {
		// Depth is a number.
		Depth int `yaml:"depth" json:"depth"`
	} `yaml:"inner" json:"inner"`
}

func (o *testOptions) Validate() error {
	if o.Method != "minmax" && o.Method != "percentile" {
		return errors.New("method must be minmax or percentile")
	}
	return nil
}

func (o *testOptions) Warnings() []string {
	if o.Method != "percentile" && o.Percentile != 99.999 {
		return []string{"percentile is ignored unless method is percentile"}
	}
	return nil
}

// testTable is the test calibration stage's result type.
type testTable string

var (
	testCalib = &Stage{Name: "tcalib", Doc: "Test calibration.", ResultType: reflect.TypeFor[testTable](),
		Run:        func(*Pass) (any, error) { return testTable("table"), nil },
		NewOptions: func() any { return &testOptions{Method: "minmax", Percentile: 99.999} }}
	testQuant = &Stage{Name: "tquant", Doc: "Test quantization.", Mutates: Always,
		NewOptions: func() any { return &testOptions{Method: "minmax", Percentile: 99.999} },
		Requires: func(any) []Requirement {
			return []Requirement{{Result: reflect.TypeFor[testTable](), SameModel: true}}
		},
		Run: func(p *Pass) (any, error) {
			if t, ok := Result[testTable](p); !ok || t != "table" {
				return nil, errors.New("no calibration result")
			}
			return nil, nil
		}}
)

func init() {
	Register(testCalib)
	Register(testQuant)
}

func parse(t *testing.T, text string, opts LoadOptions) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path, opts)
}

func TestDecodeErrors(t *testing.T) {
	for i, tc := range []struct {
		yaml string
		want []string // substrings, each must appear (with its line:col)
	}{
		{
			yaml: "model: m.onnx\nstages:\n  - tcalib:\n      methd: minmax\n",
			want: []string{`c.yaml:4:7: tcalib: unknown field "methd" (did you mean "method"?)`},
		},
		{ // several mistakes, all reported, in file order
			yaml: "model: m.onnx\noutputt: x.onnx\ndatasets:\n  calib: {format: npy, inputs: {x: a.npy}}\nstages:\n  - tcalib: {dataset: calb, inner: {dept: 2}}\n  - quantise\n",
			want: []string{`c.yaml:2:1: unknown field "outputt" (did you mean "output"?)`,
				`c.yaml:6:37: tcalib: unknown field "dept" (did you mean "depth"?)`,
				`c.yaml:6:23: tcalib: dataset: dataset "calb" is not defined`, `c.yaml:7:5: unknown stage "quantise"`},
		},
		{
			yaml: "model: m.onnx\nstages:\n  - quantise\n",
			want: []string{`c.yaml:3:5: unknown stage "quantise"`},
		},
		{
			yaml: "model: m.onnx\ndatasets:\n  calib: {format: npy, inputs: {x: a.npy}}\nstages:\n  - tcalib: {dataset: calb}\n",
			want: []string{`c.yaml:5:23: tcalib: dataset: dataset "calb" is not defined under datasets: (did you mean "calib"?)`},
		},
		{
			yaml: "model: m.onnx\nstages:\n  - tquant\n",
			want: []string{`c.yaml:3:5: tquant needs a tcalib stage before it`},
		},
		{
			yaml: "model: m.onnx\nstages:\n  - tcalib: {method: entropy}\n",
			want: []string{`c.yaml:3:5: tcalib: method must be minmax or percentile`},
		},
		{
			yaml: "model: m.onnx\nstages:\n  - tcalib: {inner: {depth: deep}}\n",
			want: []string{`c.yaml:3:29:`, `deep`},
		},
		{
			yaml: "model: m.onnx\nstages:\n  - tcalib:\n    bad indent: [\n",
			want: []string{`YAML syntax`},
		},
		{
			yaml: "stages:\n  - tcalib\n",
			want: []string{`no model`},
		},
		{
			yaml: "model: m.onnx\ndatasets:\n  calib: {format: nyp, inputs: {x: a.npy}}\nstages: [tcalib]\n",
			want: []string{`c.yaml:3:3:`, `unknown format "nyp"`},
		},
	} {
		_, err := parse(t, tc.yaml, LoadOptions{})
		var diags Diagnostics
		if !errors.As(err, &diags) {
			t.Errorf("case %d: got %v, want diagnostics", i, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("case %d: diagnostics\n%v\ndo not contain %q", i, err, w)
			}
		}
	}
}

func TestDecodeDefaultsSetEnvAndPaths(t *testing.T) {
	text := "model: ${MODEL_DIR}/m.onnx\noutput: out/{name}.int8.onnx\nruntime:\n  threads: ${THREADS:-2}\n" +
		"datasets:\n  calib: {format: npy, inputs: {x: data/x.npy}}\n  classes: {format: images, inputs: {x: imgs}, labels: folders, image: {size: [4, 4]}}\n" +
		"stages:\n  - tcalib:\n      dataset: calib\n      cache: cache/{name}.json\n  - tquant\n  - tcalib\n"
	env := map[string]string{"MODEL_DIR": "models"}
	cfg, err := parse(t, text, LoadOptions{
		Sets:      []string{"stages.1.tquant.method=percentile", "stages.0.tcalib.inner.depth=3"},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.File.Runtime.Threads; got != 2 {
		t.Errorf("threads = %d, want 2 from ${THREADS:-2}", got)
	}
	if want := filepath.Join(cfg.Dir, "models/m.onnx"); cfg.File.Model != want {
		t.Errorf("model = %s, want %s", cfg.File.Model, want)
	}
	if got := cfg.File.Datasets["calib"].Inputs["x"]; got != filepath.Join(cfg.Dir, "data/x.npy") {
		t.Errorf("dataset path not resolved: %s", got)
	}
	// labels: folders names no file: it stays as written
	if got := cfg.File.Datasets["classes"].Labels; got != "folders" {
		t.Errorf("labels: folders became %q", got)
	}
	es := cfg.Plan.Entries
	if len(es) != 3 || es[0].Stage != testCalib || es[1].Stage != testQuant {
		t.Fatalf("plan = %v", cfg.Plan)
	}
	c0, c1 := es[0].Options.(*testOptions), es[1].Options.(*testOptions)
	if c0.Inner.Depth != 3 || c1.Method != "percentile" || c0.Percentile != 99.999 {
		t.Errorf("options: %+v %+v", c0, c1)
	}
	if c0.Cache != filepath.Join(cfg.Dir, "cache/{name}.json") {
		t.Errorf("cache = %s", c0.Cache)
	}
	// An ignored option is a warning, not an error.
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	cfg2, err := parse(t, "model: m.onnx\nstages:\n  - tcalib: {percentile: 99}\n", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg2.Warnings) != 1 || !strings.Contains(cfg2.Warnings[0].String(), "warning: tcalib: percentile is ignored") {
		t.Errorf("warnings: %v", cfg2.Warnings)
	}
}

func TestDecodeUnsetEnvAndBadSet(t *testing.T) {
	_, err := parse(t, "model: ${NOPE}/m.onnx\nstages: [tcalib]\n", LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), `"NOPE"`) || !strings.Contains(err.Error(), "c.yaml:1:8") {
		t.Errorf("unset variable: %v", err)
	}
	_, err = parse(t, "model: m.onnx\nstages: [tcalib]\n", LoadOptions{Sets: []string{"stages.4.tcalib.method=minmax"}})
	if err == nil || !strings.Contains(err.Error(), "stages") {
		t.Errorf("bad --set: %v", err)
	}
}

// TestDecodeTypeErrorsNameTheKey: a value of the wrong type is one diagnostic, at the
// value, that names its key (it said only "cannot unmarshal !!str `abc` into int", and a
// top-level one came twice, the second time at 1:1); a value --set gave is named by the
// --set path, since it has no line.
func TestDecodeTypeErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		sets []string
		want string // the error, without the config's folder
	}{
		{"model: m.onnx\ndatasets:\n  calib: {format: npy, inputs: {x: a.npy}, limit: abc}\nstages: [tcalib]\n", nil,
			"c.yaml:3:51: cannot unmarshal !!str `abc` into int (key datasets.calib.limit)"},
		{"model: [a.onnx, b.onnx]\nstages: [tcalib]\n", nil, "c.yaml:1:8: expected a string, got a list (key model)"},
		{"model: m.onnx\nstages:\n  - tcalib: {inner: {depth: deep}}\n", nil,
			"c.yaml:3:29: tcalib: cannot unmarshal !!str `deep` into int (key inner.depth)"},
		{"model: m.onnx\nstages:\n  - tcalib: {inner: [1]}\n", nil, "c.yaml:3:21: tcalib: expected a mapping, got a list (key inner)"},
		{"model: m.onnx\nstages: [tcalib]\n", []string{"datasets.calib.limit=abc"},
			"c.yaml: --set datasets.calib.limit: cannot unmarshal !!str `abc` into int"},
		{"model: m.onnx\nstages: [tcalib]\n", []string{"nosuch.key=1"}, `c.yaml: --set nosuch.key: unknown field "nosuch" (valid fields: model, models, output, report, runtime, datasets, stages, parallel)`},
	} {
		_, err := parse(t, tc.yaml, LoadOptions{Sets: tc.sets})
		if err == nil {
			t.Errorf("%q %v: accepted", tc.yaml, tc.sets)
			continue
		}
		got := err.Error()
		if i := strings.Index(got, "c.yaml"); i >= 0 {
			got = got[i:]
		}
		if got != tc.want {
			t.Errorf("%q %v:\n%s\nwant %q", tc.yaml, tc.sets, got, tc.want)
		}
	}
}

func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJobsExpansionAndSharding(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "models/a.onnx"), filepath.Join(dir, "models/b.onnx"), filepath.Join(dir, "models/c.onnx"),
		filepath.Join(dir, "special/d.onnx"))
	text := "models:\n  - models/*.onnx\n  - {model: special/d.onnx, output: out/special.onnx}\noutput: out/{dir}/{name}.int8.onnx\nstages: [tcalib]\n"
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(text), 0o644)
	cfg, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		rel, _ := filepath.Rel(dir, j.Output)
		got = append(got, j.Name+"->"+rel)
	}
	want := "a->out/models/a.int8.onnx b->out/models/b.int8.onnx c->out/models/c.int8.onnx d->out/special.onnx"
	if strings.Join(got, " ") != want {
		t.Errorf("jobs = %v, want %s", got, want)
	}
	// Shards 1/2 and 2/2 partition the jobs.
	s1, s2 := Shard(jobs, 1, 2), Shard(jobs, 2, 2)
	if len(s1)+len(s2) != len(jobs) || s1[0].Name != "a" || s2[0].Name != "b" || s1[1].Name != "c" {
		t.Errorf("shards: %d + %d of %d", len(s1), len(s2), len(jobs))
	}
	for _, bad := range []string{"0/2", "3/2", "x", "1/0"} {
		if _, _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}

func TestJobsErrors(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "m/a.onnx"), filepath.Join(dir, "m/b.onnx"), filepath.Join(dir, "dots/...onnx"), filepath.Join(dir, "dots/..onnx"), filepath.Join(dir, "dots/.onnx"))
	for i, tc := range []struct{ yaml, want string }{
		{"model: dots/...onnx\noutput: out/{name}/model.onnx\nstages: [tcalib]\n", `its {name} would be ".."`},
		{"model: dots/..onnx\noutput: out/{name}.onnx\nstages: [tcalib]\n", `its {name} would be "."`},
		{"model: dots/.onnx\noutput: out/x.onnx\nstages: [tcalib]\n", `its {name} would be ""`},
		{"model: dots/...onnx\nstages: [tcalib]\n", `its {name} would be ".."`}, // the default report path holds {name}
		{"models: [m/*.onnx]\noutput: out/model.onnx\nstages: [tcalib]\n", "would both write"},
		{"models: [nothing/*.onnx]\noutput: out/{name}.onnx\nstages: [tcalib]\n", "matches no files"},
		{"model: m/a.onnx\noutput: m/a.onnx\nstages: [tcalib]\n", "is the input model itself"},
		{"model: m/a.onnx\nstages:\n  - tcalib: {log: \"m/{name}.onnx\"}\n", "c.yaml:3:19: tcalib: log " + filepath.Join(dir, "m/a.onnx") + " is the input model itself; write it elsewhere"},
		{"models: [m/*.onnx]\nstages:\n  - tcalib:\n      log: m/b.onnx\n", "c.yaml:4:12: tcalib: log " + filepath.Join(dir, "m/b.onnx") + " is the input model of another job (" + filepath.Join(dir, "m/b.onnx") + ")"},
		// Files a job writes that it reads too: it would overwrite them.
		{"model: m/a.onnx\noutput: c.yaml\nstages: [tcalib]\n", "output " + filepath.Join(dir, "c.yaml") + " is the config file; write the result elsewhere"},
		{"model: m/a.onnx\noutput: m/b.onnx\ndatasets:\n  calib: {format: npy, inputs: {x: m/b.onnx}}\nstages: [tcalib]\n",
			`is a file of dataset "calib" (input "x")`},
		{"model: m/a.onnx\noutput: out/x.onnx\ndatasets:\n  calib: {format: npz, inputs: {x: 'd.npz:x'}, labels: out/x.onnx}\nstages: [tcalib]\n",
			`is the labels file of dataset "calib"`},
		{"model: m/a.onnx\noutput: out/x.onnx\nstages:\n  - tcalib: {cache: m/a.onnx}\n", "stages.0.tcalib.cache " + filepath.Join(dir, "m/a.onnx") + " is the input model itself"},
		{"model: m/a.onnx\noutput: out/x.onnx\ndatasets:\n  calib: {format: npz, inputs: {x: 'd.npz:x'}}\nstages:\n  - tcalib: {cache: d.npz}\n",
			`is a file of dataset "calib" (input "x")`},
		{"model: m/a.onnx\noutput: m/{nmae}.onnx\nstages: [tcalib]\n", `m/{nmae}.onnx": unknown placeholder {nmae}`},
		{"model: m/a.onnx\noutput: out/{nmae}.onnx\nstages: [tcalib]\n", `out/{nmae}.onnx": unknown placeholder {nmae}; the placeholders are {name} and {dir}`},
		{"model: m/a.onnx\noutput: out/x.onnx\nstages:\n  - tcalib: {cache: 'c/{model}.json'}\n", "unknown placeholder {model}"},
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o644)
		cfg, err := Load(path, LoadOptions{})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if _, err := cfg.Jobs(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: got %v, want %q", i, err, tc.want)
		}
	}
}

// TestJobsBracesInFolderName: braces in the config's folder name (or a folder of an
// absolute path) are no placeholder; only what the config wrote below its folder, or an
// absolute path's file name, is looked at.
func TestJobsBracesInFolderName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "{weird}")
	touch(t, filepath.Join(dir, "m.onnx"))
	other := filepath.Join(t.TempDir(), "{also}", "{name}.onnx")
	for _, out := range []string{"out/{name}.onnx", other} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte("model: m.onnx\noutput: "+out+"\nstages: [tcalib]\n"), 0o644)
		cfg, err := Load(path, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Jobs(); err != nil {
			t.Errorf("output %s: %v", out, err)
		}
	}
}

package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

// batchDir makes a folder of models: copies of the fixtures plus one corrupt file.
func batchDir(t *testing.T, corrupt bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mnist_cnn", "resnet_small", "tiny_transformer"} {
		data, err := os.ReadFile("../testdata/models/" + name + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "models", name+".onnx"), data, 0o644)
	}
	if corrupt {
		data, _ := os.ReadFile("../testdata/models/mnist_cnn.onnx")
		os.WriteFile(filepath.Join(dir, "models", "broken.onnx"), data[:len(data)/3], 0o644)
	}
	return dir
}

// load writes config to dir/c.yaml and returns it loaded, with its jobs.
func load(t *testing.T, dir, config string) (*pipeline.Config, []*pipeline.Job) {
	t.Helper()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipeline.Load(path, pipeline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, jobs
}

func run(t *testing.T, dir, config string, opts pipeline.RunOptions, shard string) *pipeline.RunResult {
	t.Helper()
	cfg, jobs := load(t, dir, config)
	if shard != "" {
		i, n, err := pipeline.ParseShard(shard)
		if err != nil {
			t.Fatal(err)
		}
		jobs = pipeline.Shard(jobs, i, n)
	}
	res, err := pipeline.Run(context.Background(), cfg, jobs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func statuses(res *pipeline.RunResult) map[string]string {
	m := map[string]string{}
	for _, o := range res.Outcomes {
		m[o.Job.Name] = o.Status
	}
	return m
}

// files lists the files under dir (relative), and fails on stray temporary files.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if onnxio.IsTempName(d.Name()) {
			t.Errorf("stray temporary file %s", p)
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

const batchConfig = "models: [models/*.onnx]\noutput: out/{name}.opt.onnx\nparallel: 2\nstages:\n  - prepare\n"

func TestBatchWithCorruptModel(t *testing.T) {
	dir := batchDir(t, true)
	junit := filepath.Join(dir, "junit.xml")
	res := run(t, dir, batchConfig, pipeline.RunOptions{JUnit: junit}, "")
	st := statuses(res)
	want := map[string]string{"broken": "failed", "mnist_cnn": "ok", "resnet_small": "ok", "tiny_transformer": "ok"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s: status %s, want %s (%v)", k, st[k], v, res.Outcomes)
		}
	}
	if res.Failed() != 1 {
		t.Errorf("failed = %d", res.Failed())
	}
	for _, o := range res.Outcomes {
		if o.Job.Name == "broken" && !strings.Contains(o.Err.Error(), "broken.onnx") {
			t.Errorf("the error does not name the file: %v", o.Err)
		}
	}
	got := strings.Join(files(t, filepath.Join(dir, "out")), " ")
	for _, f := range []string{"mnist_cnn.opt.onnx", "mnist_cnn.opt.manifest.json", "mnist_cnn.opt.report.html",
		"resnet_small.opt.onnx", "tiny_transformer.opt.onnx", "summary.json", "broken.opt.report.json"} {
		if !strings.Contains(got, f) {
			t.Errorf("missing %s in %s", f, got)
		}
	}
	if strings.Contains(got, "broken.opt.onnx") {
		t.Errorf("the failed job wrote an output: %s", got)
	}
	var sum pipeline.Summary
	data, _ := os.ReadFile(filepath.Join(dir, "out", "summary.json"))
	if err := json.Unmarshal(data, &sum); err != nil || len(sum.Jobs) != 4 || sum.Counts["ok"] != 3 || sum.Counts["failed"] != 1 {
		t.Errorf("summary.json: %v %s", err, data)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	data, _ = os.ReadFile(junit)
	if err := xml.Unmarshal(data, &suite); err != nil || suite.Tests != 4 || suite.Failures != 1 {
		t.Errorf("junit: %v %s", err, data)
	}
	// The optimized artifacts open and are prepared (BatchNormalization folded).
	m, err := onnxio.Load(filepath.Join(dir, "out", "resnet_small.opt.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if n := onnxio.Summarize(m).Ops["BatchNormalization"]; n != 0 {
		t.Errorf("%d BatchNormalization nodes left", n)
	}
	var table bytes.Buffer
	pipeline.PrintSummary(&table, res)
	if !strings.Contains(table.String(), "4 jobs: 3 ok, 1 failed") {
		t.Errorf("summary table:\n%s", table.String())
	}

	// A rerun skips the finished jobs; --force redoes them.
	res = run(t, dir, batchConfig, pipeline.RunOptions{}, "")
	st = statuses(res)
	if st["mnist_cnn"] != "skipped" || st["resnet_small"] != "skipped" || st["broken"] != "failed" {
		t.Errorf("rerun statuses: %v", st)
	}
	res = run(t, dir, batchConfig, pipeline.RunOptions{Force: true}, "")
	if st := statuses(res); st["mnist_cnn"] != "ok" {
		t.Errorf("forced rerun: %v", st)
	}
	// A changed config is not skipped.
	res = run(t, dir, strings.Replace(batchConfig, "- prepare", "- prepare: {fold_batchnorm: false}", 1), pipeline.RunOptions{}, "")
	if st := statuses(res); st["mnist_cnn"] != "ok" {
		t.Errorf("changed config: %v", st)
	}
}

func TestShardsCoverTheBatch(t *testing.T) {
	dir := batchDir(t, false)
	r1 := run(t, dir, batchConfig, pipeline.RunOptions{}, "1/2")
	r2 := run(t, dir, batchConfig, pipeline.RunOptions{}, "2/2")
	if len(r1.Outcomes)+len(r2.Outcomes) != 3 || len(r1.Outcomes) != 2 {
		t.Fatalf("shards ran %d + %d jobs", len(r1.Outcomes), len(r2.Outcomes))
	}
	var onnx []string
	for _, f := range files(t, filepath.Join(dir, "out")) {
		if strings.HasSuffix(f, ".opt.onnx") {
			onnx = append(onnx, f)
		}
	}
	if strings.Join(onnx, " ") != "mnist_cnn.opt.onnx resnet_small.opt.onnx tiny_transformer.opt.onnx" {
		t.Errorf("artifacts: %v", onnx)
	}
}

// A run holds a lock on each output folder: a run of another config on a folder in use is
// refused with the folder's name, a shard of the same config is not, and a run removes
// the temporary files a killed run left for its jobs' files (and no others).
func TestRunLocksOutputFolders(t *testing.T) {
	dir := batchDir(t, false)
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	stale := filepath.Join(out, ".mnist_cnn.opt.onnx.123456.tmp")
	other := filepath.Join(out, ".someone-else.onnx.7.tmp")
	os.WriteFile(stale, []byte("half a model"), 0o644)
	os.WriteFile(other, []byte("not ours"), 0o644)

	hold := func(name string) *os.File { // a lock as another run holds it
		f, err := os.OpenFile(filepath.Join(out, name), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
			t.Fatal(err)
		}
		return f
	}
	foreign := hold(".onnxpipe-0123456789abcdef.lock")
	cfg, jobs := load(t, dir, batchConfig)
	if _, err := pipeline.Run(context.Background(), cfg, jobs, pipeline.RunOptions{}); err == nil || !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), "another onnxpipe run of a different config") {
		t.Fatalf("a run on a folder another config's run holds: %v; want an error naming %s", err, out)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("the refused run touched the folder: %v", err)
	}
	foreign.Close()
	// A shard of the same config holding the folder does not stop this one.
	locks, _ := filepath.Glob(filepath.Join(out, ".onnxpipe-*.lock"))
	var shard *os.File
	for _, l := range locks {
		if filepath.Base(l) != ".onnxpipe-0123456789abcdef.lock" {
			shard = hold(filepath.Base(l))
		}
	}
	if shard == nil {
		t.Fatalf("the refused run left no lock file of its config: %v", locks)
	}
	defer shard.Close()

	res, err := pipeline.Run(context.Background(), cfg, jobs, pipeline.RunOptions{})
	if err != nil || res.Failed() != 0 {
		t.Fatalf("run after the lock was released: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file of this job's output is still there (%v)", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a temporary file of another name was removed: %v", err)
	}
	os.Remove(other)
	files(t, out) // and no stray temporary file of this run
}

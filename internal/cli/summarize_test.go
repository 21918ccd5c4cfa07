package cli

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// TestSummarizeShardsAndRerun: `run --shard 1/2` and `--shard 2/2` write their own
// summaries into the batch's folder, a rerun keeps the finished jobs' results, and
// `summarize` merges it all into one summary.json, index.html and JUnit file with every
// job, its status and its metric.
func TestSummarizeShardsAndRerun(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	var cfg strings.Builder
	cfg.WriteString("models:\n")
	names := []string{"mnist_cnn", "resnet_small", "tiny_transformer"}
	for _, name := range names {
		for _, ext := range []string{".onnx", ".input.npy"} {
			data, err := os.ReadFile("../../testdata/models/" + name + ext)
			if err != nil {
				t.Fatal(err)
			}
			write(t, dir, "models/"+name+ext, string(data))
		}
		cfg.WriteString("  - {model: models/" + name + ".onnx, datasets: {eval: {format: npy, inputs: {input: models/" + name + ".input.npy}}}}\n")
	}
	cfg.WriteString("datasets:\n  eval: {format: npy, inputs: {input: none.npy}}\noutput: out/{name}.dynamic.onnx\n" +
		"stages:\n  - quantize: {mode: dynamic}\n  - verify: {dataset: eval, latency: {runs: 0}, thresholds: {sqnr_db: 0}}\n")
	path := write(t, dir, "batch.yaml", cfg.String())
	out := filepath.Join(dir, "out")
	for _, shard := range []string{"1/2", "2/2"} {
		if code, stdout, stderr := runCLI("run", "--quiet", "--shard", shard, path); code != 0 {
			t.Fatalf("shard %s: exit %d\n%s%s", shard, code, stdout, stderr)
		}
	}
	for _, f := range []string{"summary.shard-1-of-2.json", "index.shard-1-of-2.html", "summary.shard-2-of-2.json", "index.shard-2-of-2.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("shard file: %v", err)
		}
	}
	if code, stdout, stderr := runCLI("run", "--quiet", path); code != 0 || !strings.Contains(stdout, "3 skipped") {
		t.Fatalf("rerun: exit %d\n%s%s", code, stdout, stderr)
	}
	junit := filepath.Join(dir, "junit.xml")
	code, stdout, stderr := runCLI("summarize", out, "--junit", junit)
	if code != 0 || !strings.Contains(stdout, "3 summaries merged, 3 jobs: 3 ok") {
		t.Fatalf("summarize: exit %d\n%s%s", code, stdout, stderr)
	}
	s, err := pipeline.ReadSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 3 || s.Counts["ok"] != 3 || len(s.Merged) != 3 {
		t.Fatalf("merged summary: %+v", s)
	}
	for i, r := range s.Jobs {
		if r.Name != names[i] || r.Status != "ok" || r.KeyMetric == nil || r.KeyMetric.Name != "sqnr_db" || r.Output == "" {
			t.Errorf("merged row %d: %+v", i, r)
		}
	}
	page, _ := os.ReadFile(filepath.Join(out, "index.html"))
	for _, name := range names {
		if !strings.Contains(string(page), `<a href="`+name+`.dynamic.report.html">`+name+`</a>`) {
			t.Errorf("index.html lacks %s", name)
		}
	}
	if !strings.Contains(string(page), "Batch: 3 jobs") || strings.Count(string(page), "sqnr_db") != 3 {
		t.Errorf("index.html:\n%s", page)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	data, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(data, &suite); err != nil || suite.Tests != 3 || suite.Failures != 0 {
		t.Errorf("junit: %v %s", err, data)
	}
	// Bad usage: a folder without summaries.
	if code, _, stderr := runCLI("summarize", filepath.Join(dir, "models")); code != ExitUsage || !strings.Contains(stderr, "holds no summary") {
		t.Errorf("no summary: exit %d %s", code, stderr)
	}
}

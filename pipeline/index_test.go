package pipeline_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// TestBatchIndexPage checks index.html beside summary.json: a row per job with its
// status, a working relative link to each job's HTML report (reports in sub-folders
// here), the failed job's reason, and failed jobs listed first.
func TestBatchIndexPage(t *testing.T) {
	dir := batchDir(t, true)
	cfg := "models: [models/*.onnx]\noutput: out/{name}/{name}.opt.onnx\nparallel: 2\nstages:\n  - prepare\n"
	res := run(t, dir, cfg, pipeline.RunOptions{}, "")
	if res.SummaryPath != filepath.Join(dir, "out", "summary.json") {
		t.Fatalf("summary at %s", res.SummaryPath)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", pipeline.IndexName))
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	links := regexp.MustCompile(`<a href="([^"]+)">([^<]+)</a>`).FindAllStringSubmatch(page, -1)
	got := map[string]string{}
	for _, l := range links {
		got[l[2]] = l[1]
		if _, err := os.Stat(filepath.Join(dir, "out", filepath.FromSlash(l[1]))); err != nil {
			t.Errorf("link %s of %s does not resolve: %v", l[1], l[2], err)
		}
	}
	for _, name := range []string{"broken", "mnist_cnn", "resnet_small", "tiny_transformer"} {
		if want := name + "/" + name + ".opt.report.html"; got[name] != want {
			t.Errorf("%s links to %q, want %q", name, got[name], want)
		}
	}
	if !strings.Contains(page, "Batch: 4 jobs") || !strings.Contains(page, "3 ok") || !strings.Contains(page, "1 failed") {
		t.Errorf("the counts are missing:\n%s", page)
	}
	// failed first, with its reason; ok rows show sizes and the ratio
	if i, k := strings.Index(page, ">broken<"), strings.Index(page, ">mnist_cnn<"); i < 0 || k < 0 || i > k {
		t.Errorf("the failed job should come first")
	}
	if !regexp.MustCompile(`(?s)>broken</a>.*badge bad">failed<.*broken\.onnx`).MatchString(page) {
		t.Errorf("the failed row lacks its status or reason:\n%s", page)
	}
	if !regexp.MustCompile(`(?s)>mnist_cnn</a>.*badge ok">ok<.*811\.8 KiB`).MatchString(page) {
		t.Errorf("the mnist_cnn row lacks its status or size:\n%s", page)
	}
}

package pipeline_test

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// shardedConfig is a dynamic-int8 batch over the three fixtures, each verified on its
// own samples (so that every job has a key metric, sqnr_db).
func shardedConfig(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("models:\n")
	for _, name := range []string{"mnist_cnn", "resnet_small", "tiny_transformer"} {
		data, err := os.ReadFile("../testdata/models/" + name + ".input.npy")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "models", name+".input.npy"), data, 0o644)
		b.WriteString("  - {model: models/" + name + ".onnx, datasets: {eval: {format: npy, inputs: {input: models/" + name + ".input.npy}}}}\n")
	}
	b.WriteString(`datasets:
  eval: {format: npy, inputs: {input: none.npy}}
output: out/{name}.dynamic.onnx
parallel: 2
stages:
  - prepare
  - quantize: {mode: dynamic}
  - verify: {dataset: eval, latency: {runs: 0}, thresholds: {sqnr_db: 0}}
`)
	return b.String()
}

func readSummary(t *testing.T, path string) *pipeline.Summary {
	t.Helper()
	s, err := pipeline.ReadSummary(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestShardsRerunAndMerge: shards keep their own summaries and index pages, a rerun keeps
// the skipped jobs' results (status, metric, output, report) from their manifests, and
// MergeSummaries makes one summary of it all, the newest result of each job winning.
func TestShardsRerunAndMerge(t *testing.T) {
	dir := batchDir(t, false)
	cfg := shardedConfig(t, dir)
	out := filepath.Join(dir, "out")
	r1 := runIn(t, dir, cfg, "1/2")
	r2 := runIn(t, dir, cfg, "2/2")
	if r1.SummaryPath != filepath.Join(out, "summary.shard-1-of-2.json") || r2.SummaryPath != filepath.Join(out, "summary.shard-2-of-2.json") {
		t.Fatalf("shard summaries at %s and %s", r1.SummaryPath, r2.SummaryPath)
	}
	if r2.IndexPath != filepath.Join(out, "index.shard-2-of-2.html") {
		t.Errorf("shard 2 index at %s", r2.IndexPath)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err == nil {
		t.Errorf("a shard wrote summary.json")
	}
	s1, s2 := readSummary(t, r1.SummaryPath), readSummary(t, r2.SummaryPath)
	if len(s1.Jobs) != 2 || len(s2.Jobs) != 1 || s1.Shard != "1/2" || s2.Shard != "2/2" {
		t.Fatalf("shard summaries: %+v\n%+v", s1, s2)
	}
	page, _ := os.ReadFile(r2.IndexPath)
	if !strings.Contains(string(page), "Batch, shard 2/2: 1 jobs") || !strings.Contains(string(page), "summary.shard-2-of-2.json") {
		t.Errorf("shard 2's index page:\n%s", page)
	}

	// A rerun of the whole batch skips every job and keeps each one's last result.
	r3 := runIn(t, dir, cfg, "")
	for _, o := range r3.Outcomes {
		if o.Status != pipeline.StatusSkipped {
			t.Errorf("rerun: %s %s %v", o.Job.Name, o.Status, o.Err)
		}
	}
	s3 := readSummary(t, r3.SummaryPath)
	if len(s3.Jobs) != 3 || s3.Counts["ok"] != 3 {
		t.Errorf("rerun summary counts: %v", s3.Counts)
	}
	for _, r := range s3.Jobs {
		if r.Status != "ok" || !r.Skipped || r.KeyMetric == nil || r.KeyMetric.Name != "sqnr_db" || r.Output == "" ||
			r.OutputBytes == 0 || r.Report == "" || r.Seconds == 0 || r.Finished.IsZero() {
			t.Errorf("rerun row lost the job's result: %+v", r)
		}
	}

	// A forced rerun of mnist_cnn alone makes a newer result; the merge takes it.
	forced := runFiltered(t, dir, cfg, pipeline.RunOptions{Force: true}, "mnist_cnn")
	if forced.Outcomes[0].Status != "ok" {
		t.Fatalf("forced: %v", forced.Outcomes[0].Err)
	}
	sf := readSummary(t, forced.SummaryPath) // out/summary.json, of that run only
	files, err := pipeline.SummaryFiles(out)
	if err != nil || len(files) != 3 {
		t.Fatalf("summary files: %v %v", files, err)
	}
	var sums []*pipeline.Summary
	for _, f := range files {
		sums = append(sums, readSummary(t, f))
	}
	sums = append(sums, s3) // the rerun's summary, overwritten by the forced run since
	merged := pipeline.MergeSummaries(sums, append(files, "the rerun's"))
	if len(merged.Jobs) != 3 || merged.Counts["ok"] != 3 || merged.Config != s1.Config {
		t.Fatalf("merged: %+v", merged)
	}
	for _, r := range merged.Jobs {
		if r.KeyMetric == nil || r.KeyMetric.Name != "sqnr_db" || r.Output == "" {
			t.Errorf("merged row: %+v", r)
		}
		if r.Name == "mnist_cnn" && (r.Skipped || !r.Finished.Equal(sf.Jobs[0].Finished)) {
			t.Errorf("mnist_cnn: the forced run's result should win: %+v (forced %v)", r, sf.Jobs[0].Finished)
		}
	}

	// Written as a whole run's summary: the index lists every job and links its report.
	idx := filepath.Join(out, pipeline.IndexName)
	if err := pipeline.WriteSummary(merged, filepath.Join(out, pipeline.SummaryName), idx); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(idx)
	if !strings.Contains(string(data), "Batch: 3 jobs") || !strings.Contains(string(data), "merged from 4 summaries") {
		t.Errorf("merged index:\n%s", data)
	}
	for _, name := range []string{"mnist_cnn", "resnet_small", "tiny_transformer"} {
		if !regexp.MustCompile(`<a href="` + name + `\.dynamic\.report\.html">` + name + `</a>.*\n.*badge ok">ok<`).Match(data) {
			t.Errorf("the merged index lacks %s's row", name)
		}
	}
	junit := filepath.Join(dir, "junit.xml")
	if err := pipeline.WriteJUnit(junit, merged); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	data, _ = os.ReadFile(junit)
	if err := xml.Unmarshal(data, &suite); err != nil || suite.Tests != 3 || suite.Failures != 0 {
		t.Errorf("junit: %v %s", err, data)
	}
	// The JSON round-trips with the new fields.
	var back pipeline.Summary
	data, _ = os.ReadFile(filepath.Join(out, pipeline.SummaryName))
	if err := json.Unmarshal(data, &back); err != nil || len(back.Merged) != 4 || back.Jobs[0].Name == "" {
		t.Errorf("merged summary.json: %v %s", err, data)
	}
}

// runIn runs the config's jobs (one shard when shard is set) with the summary folder of
// the whole batch, as the command line does.
func runIn(t *testing.T, dir, config, shard string) *pipeline.RunResult {
	t.Helper()
	cfg, jobs := load(t, dir, config)
	opts := pipeline.RunOptions{SummaryDir: pipeline.SummaryDir(jobs), Shard: shard}
	if shard != "" {
		i, n, err := pipeline.ParseShard(shard)
		if err != nil {
			t.Fatal(err)
		}
		jobs = pipeline.Shard(jobs, i, n)
	}
	res, err := pipeline.Run(t.Context(), cfg, jobs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runFiltered runs the one job named name.
func runFiltered(t *testing.T, dir, config string, opts pipeline.RunOptions, name string) *pipeline.RunResult {
	t.Helper()
	cfg, jobs := load(t, dir, config)
	for _, j := range jobs {
		if j.Name == name {
			res, err := pipeline.Run(t.Context(), cfg, []*pipeline.Job{j}, opts)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
	}
	t.Fatalf("no job %s", name)
	return nil
}

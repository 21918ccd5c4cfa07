package report

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func sample() *Job {
	return &Job{SchemaVersion: SchemaVersion, Name: "mnist", Status: "rejected", Error: "verify: rejected: logits on cpu: sqnr_db = 20, needs >= 30",
		Model: File{Path: "m.onnx", Bytes: 1 << 20, SHA256: "abc"}, Output: &File{Path: "o.onnx", Bytes: 1 << 18},
		Stages: []*Stage{{Stage: "verify", Status: "rejected", Metrics: []Metric{{Name: "sqnr_db", Value: 20, Unit: "dB", Key: true}},
			Charts: []Chart{
				{Title: "per-layer SQNR", Kind: "line", XLabel: "depth", YLabel: "dB", Series: []Series{{Name: "sqnr", Values: []Float{40, 35, Float(math.Inf(1)), 20}}}},
				{Title: "latency", Kind: "bar", X: []string{"b1", "b8"}, Series: []Series{{Name: "float", Values: []Float{2, 9}}, {Name: "int8", Values: []Float{1, 3}}}},
			}}}}
}

func TestRenderers(t *testing.T) {
	j := sample()
	html, err := j.HTML()
	if err != nil {
		t.Fatal(err)
	}
	h := string(html)
	for _, want := range []string{"REJECTED", "per-layer SQNR", "<svg", "model size", "needs &gt;= 30"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Count(h, "<svg") != 3 {
		t.Errorf("want 3 charts, got %d", strings.Count(h, "<svg"))
	}
	md := string(j.Markdown())
	if !strings.Contains(md, "| sqnr_db | 20 dB |") || !strings.Contains(md, "Size ratio: 0.250x") {
		t.Errorf("markdown:\n%s", md)
	}
	js, err := j.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Job
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"Infinity"`) || !math.IsInf(float64(back.Stages[0].Charts[0].Series[0].Values[2]), 1) {
		t.Errorf("an infinite value does not survive JSON")
	}
	if m, ok := back.KeyMetric(); !ok || m.Name != "sqnr_db" {
		t.Errorf("key metric: %+v", m)
	}
}

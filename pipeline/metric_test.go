package pipeline

import (
	"testing"

	"github.com/onnxpipe/onnxpipe/report"
)

// A metric recorded twice in a stage (verify records sqnr_db, then marks it the key
// metric) appears once, with the last value, key if either was.
func TestMetricRecordedOnce(t *testing.T) {
	p := &Pass{record: &report.Stage{}}
	p.Metric("sqnr_db", 30, "dB")
	p.Metric("cosine", 0.99, "")
	p.KeyMetric("sqnr_db", 31, "dB")
	p.Metric("sqnr_db", 32, "dB")
	ms := p.record.Metrics
	if len(ms) != 2 || ms[0].Name != "sqnr_db" || float64(ms[0].Value) != 32 || !ms[0].Key || ms[1].Name != "cosine" {
		t.Errorf("metrics %+v", ms)
	}
}

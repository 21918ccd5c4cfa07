package verify

import (
	"strings"
	"testing"

	v "github.com/onnxpipe/onnxpipe/verify"
)

// auto_exclude retries on a failed verdict: thresholds, or without them the default
// floors; with neither there is nothing to fail, and per_layer_samples -1 leaves it no
// layers to choose from.
func TestAutoExcludeNeedsAVerdict(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(o *Options)
		want string // "" = valid
	}{
		{"default floors", func(o *Options) {}, ""},
		{"thresholds", func(o *Options) { o.DefaultFloors = false; o.Thresholds = map[Threshold]float64{"sqnr_db": 20} }, ""},
		{"neither", func(o *Options) { o.DefaultFloors = false }, "retries only when thresholds (or the default floors) fail"},
		{"no per-layer error", func(o *Options) { o.PerLayerSamples = -1 }, "per_layer_samples: -1 turns off the per-layer error"},
	} {
		o := defaults()
		o.Dataset = "test"
		o.AutoExclude.MaxTries = 2
		c.edit(o)
		err := o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// The report flags a candidate slower than its reference (an int8 model that runs slower
// than the float one), per batch size, and only where it is.
func TestSlowdowns(t *testing.T) {
	pr := &v.ProviderReport{Provider: "cpu", Latency: []v.Latency{
		{Model: "reference", Batch: 1, P50: 1.0}, {Model: "candidate", Batch: 1, P50: 1.36},
		{Model: "reference", Batch: 8, P50: 4.0}, {Model: "candidate", Batch: 8, P50: 2.0},
	}}
	got := slowdowns(pr)
	if len(got) != 1 || !strings.HasPrefix(got[0], "the candidate is slower than the reference on cpu at batch 1: 1.36x") {
		t.Errorf("slowdowns = %q", got)
	}
}

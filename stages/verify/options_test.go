package verify

import (
	"strings"
	"testing"
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

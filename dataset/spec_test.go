package dataset

import (
	"strings"
	"testing"
)

// A spec's counts and paths are checked before anything is read: a negative count names
// its key, an empty path its input, and a random dataset of more samples than
// MaxRandomSamples is refused (its sample order alone would take the memory; samples:
// 1000000000000 ran out of it).
func TestSpecValidateCounts(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Format: "npy", Inputs: map[string]string{"x": "x.npy"}, Limit: -1}, "limit -1: cannot be negative"},
		{Spec{Format: "npy", Inputs: map[string]string{"x": "x.npy"}, Skip: -2}, "skip -2: cannot be negative"},
		{Spec{Format: "npy", Inputs: map[string]string{"x": "x.npy"}, Batch: -3}, "batch -3: cannot be negative"},
		{Spec{Format: "random", Samples: -4}, "samples -4: cannot be negative"},
		{Spec{Format: "random", Samples: 1000000000000}, "samples 1000000000000: a random dataset holds at most 16777216"},
		{Spec{Format: "random", Samples: MaxRandomSamples}, ""},
		// An input mapped to "": it was "lstat : no such file or directory" when read.
		{Spec{Format: "npy", Inputs: map[string]string{"x": ""}}, `inputs: input "x" has an empty path`},
	} {
		err := tc.spec.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.spec, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.spec, err, tc.want)
		}
	}
}

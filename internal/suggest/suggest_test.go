package suggest

import "testing"

func TestClosest(t *testing.T) {
	fields := []string{"mode", "per_channel", "calibration", "percentile", "threads", "device", "paths", "limit", "lint"}
	tests := []struct {
		name string
		want string
	}{
		{"percentle", "percentile"},  // deletion
		{"percentlie", "percentile"}, // transposition
		{"pahts", "paths"},           // transposition
		{"per-channel", "per_channel"},
		{"perChannel", "per_channel"},
		{"Threads", "threads"},
		{"thread", "threads"},
		{"devise", "device"},
		{"calib", "calibration"},     // common prefix
		{"calibrate", "calibration"}, // common prefix
		{"limt", "limit"},            // tie with "lint", longer prefix wins
		{"node", "mode"},
		{"mode", ""}, // exact match is not a suggestion
		{"colour", ""},
		{"x", ""},
		{"", ""},
		{"per", ""}, // too short for a prefix match, too far for an edit
		{"zzzzzzzz", ""},
	}
	for _, tc := range tests {
		if got := Closest(tc.name, fields); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := Closest("abc", nil); got != "" {
		t.Errorf("Closest with no candidates = %q", got)
	}
}

func TestOSADistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"abc", "acb", 1},
		{"abc", "ab", 1},
		{"abc", "xbc", 1},
		{"ca", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tc := range tests {
		if got := osaDistance([]rune(tc.a), []rune(tc.b), 10); got != tc.want {
			t.Errorf("osaDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := osaDistance([]rune(tc.a), []rune(tc.b), 0); (got == 0) != (tc.want == 0) {
			t.Errorf("osaDistance(%q, %q, limit 0) = %d", tc.a, tc.b, got)
		}
	}
}

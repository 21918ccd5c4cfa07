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

// onnxruntime's QuantType names and other cases of a value suggest our spelling, not
// the nearest by edit distance (QInt8 is 1 from both int8 and uint8).
func TestClosestQuantTypes(t *testing.T) {
	types := []string{"uint8", "int8", "uint16", "int16"}
	for name, want := range map[string]string{"QInt8": "int8", "QUInt8": "uint8", "qint8": "int8",
		"INT8": "int8", "QInt16": "int16", "QUInt16": "uint16", "UInt8": "uint8", "QInt4": "int8"} {
		if got := Closest(name, types); got != want {
			t.Errorf("Closest(%q, %v) = %q, want %q", name, types, got, want)
		}
	}
	if got := Closest("QUInt8", []string{"int8", "uint8"}); got != "uint8" {
		t.Errorf("QUInt8: %q", got)
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

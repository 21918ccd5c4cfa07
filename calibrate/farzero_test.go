package calibrate

import "testing"

// A constant tensor and values in a band far from 0 against its width give their
// extremes at once under entropy (the |x| grid from 0 would be billions of bins: the
// search ran out of memory on a Clip bound computed by Abs of a constant).
func TestEntropyFarFromZero(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []float32
	}{
		{"constant", []float32{6, 6, 6, 6}},
		{"constant negative", []float32{-3, -3}},
		{"narrow band far away", []float32{1000, 1000.0001, 1000.0002, 1000.0003}},
	} {
		h := NewHistogram(DefaultBins, false)
		h.Observe(c.values)
		lo, hi := EntropyRange(h, DefaultQuantizedBins, false)
		if lo != h.min || hi != h.max {
			t.Errorf("%s: [%g, %g], want the extremes [%g, %g]", c.name, lo, hi, h.min, h.max)
		}
	}
	// values around 0, or of one sign near it, still get the search
	for _, vals := range [][]float32{{-1, 0.5, 2}, {0.001, 3, 7}} {
		h := NewHistogram(DefaultBins, false)
		h.Observe(vals)
		if h.farFromZero() {
			t.Errorf("%v is far from zero", vals)
		}
	}
}

package calibrate

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/stat"
)

func TestMinMaxCollector(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name        string
		batches     [][]float32
		min, max    float32
		count, bad  int64
		mean, std   float64 // reference: gonum stat.PopMeanStdDev of the finite values
		finiteCount int
	}{
		{name: "one batch", batches: [][]float32{{1, -2, 3, 0.5}}, min: -2, max: 3, count: 4},
		{name: "three batches", batches: [][]float32{{1, 2}, {-7, 4, 4}, {10}}, min: -7, max: 10, count: 6},
		{name: "non-finite left out", batches: [][]float32{{nan, 1, inf, -inf, 2}, {nan}}, min: 1, max: 2, count: 2, bad: 4},
		{name: "non-finite in a block of four", batches: [][]float32{{1, 2, 3, nan, 4, 5, 6, 7, -inf}}, min: 1, max: 7, count: 7, bad: 2},
		{name: "only NaN", batches: [][]float32{{nan, nan}}, min: 0, max: 0, count: 0, bad: 2},
		{name: "empty", batches: [][]float32{{}, nil}, min: 0, max: 0, count: 0},
		{name: "large mean", batches: [][]float32{{1e6 + 0.25, 1e6 - 0.25, 1e6 + 0.5}, {1e6 - 0.5, 1e6}}, min: 1e6 - 0.5, max: 1e6 + 0.5, count: 5},
	}
	for _, tc := range tests {
		m := NewMinMaxCollector(0)
		var fin []float64
		for _, b := range tc.batches {
			m.Observe(b)
			for _, v := range b {
				if finite(v) {
					fin = append(fin, float64(v))
				}
			}
		}
		if m.Min() != tc.min || m.Max() != tc.max || m.Count() != tc.count || m.NonFinite() != tc.bad {
			t.Errorf("%s: min %g max %g count %d bad %d, want %g %g %d %d", tc.name, m.Min(), m.Max(), m.Count(), m.NonFinite(), tc.min, tc.max, tc.count, tc.bad)
		}
		var mean, std float64
		if len(fin) > 0 {
			mean, std = stat.PopMeanStdDev(fin, nil)
		}
		if !closeRel(m.Mean(), mean, 1e-12) || math.Abs(m.Std()-std) > 1e-9*math.Max(1, std) {
			t.Errorf("%s: mean %.15g std %.15g, want %.15g %.15g", tc.name, m.Mean(), m.Std(), mean, std)
		}
		if !closeRel(m.Sum(), mean*float64(len(fin)), 1e-12) {
			t.Errorf("%s: sum %g", tc.name, m.Sum())
		}
		if lo, hi := MinMaxRange(m, false); lo != tc.min || hi != tc.max {
			t.Errorf("%s: MinMaxRange %g %g", tc.name, lo, hi)
		}
	}
}

// TestMinMaxStd checks the shifted, pairwise moments on many batches of data with a large
// mean against gonum's two-pass reference.
func TestMinMaxStd(t *testing.T) {
	r := rng(1)
	x := normals(r, 100_000, 1000, 0.01)
	m := NewMinMaxCollector(0)
	for _, b := range batches(x, 777) {
		m.Observe(b)
	}
	f := make([]float64, len(x))
	for i, v := range x {
		f[i] = float64(v)
	}
	mean, std := stat.PopMeanStdDev(f, nil)
	// float64 accumulation of 1e5 values: relative error far below 1e-9 of the mean; the
	// std (1e-5 of the mean) keeps 1e-6 relative.
	if !closeRel(m.Mean(), mean, 1e-12) || math.Abs(m.Std()-std) > 1e-6*std {
		t.Errorf("mean %.15g std %.15g, want %.15g %.15g", m.Mean(), m.Std(), mean, std)
	}
}

func TestMovingAverage(t *testing.T) {
	const c = 0.25
	bs := [][]float32{{0, 4}, {-2, 2}, {math.Float32frombits(0x7fc00000)}, {-1, 8, 3}, {}, {2, 2}}
	m := NewMinMaxCollector(c)
	for _, b := range bs {
		m.Observe(b)
	}
	// By hand: batches with finite values (0,4), (-2,2), (-1,8), (2,2):
	// min: 0 → 0+.25(-2-0) = -0.5 → -0.5+.25(-1+0.5) = -0.625 → -0.625+.25(2+0.625) = 0.03125
	// max: 4 → 4+.25(2-4) = 3.5 → 3.5+.25(8-3.5) = 4.625 → 4.625+.25(2-4.625) = 3.96875
	lo, hi, ok := m.Moving()
	if !ok || lo != 0.03125 || hi != 3.96875 {
		t.Errorf("moving %g %g %v, want 0.03125 3.96875", lo, hi, ok)
	}
	if lo, hi := MinMaxRange(m, false); lo != 0.03125 || hi != 3.96875 {
		t.Errorf("MinMaxRange %g %g", lo, hi)
	}
	if lo, hi := MinMaxRange(m, true); lo != -3.96875 || hi != 3.96875 {
		t.Errorf("symmetric MinMaxRange %g %g", lo, hi)
	}
	if m.Min() != -2 || m.Max() != 8 || m.Batches() != 4 {
		t.Errorf("min %g max %g batches %d", m.Min(), m.Max(), m.Batches())
	}
	if _, _, ok := NewMinMaxCollector(0).Moving(); ok {
		t.Error("moving average reported while off")
	}
}

// TestMinMaxMerge: merging the collectors of two consecutive chunks of batches equals one
// collector fed all batches (exactly for extremes and counts, to rounding for moments and
// the moving average).
func TestMinMaxMerge(t *testing.T) {
	r := rng(2)
	var bs [][]float32
	for i := range 40 {
		b := normals(r, 100+i, float64(i)/10, 1+float64(i)/20)
		if i%7 == 3 {
			b[5] = float32(math.NaN())
		}
		bs = append(bs, b)
	}
	for _, c := range []float64{0, 0.01, 0.3} {
		one, a, b := NewMinMaxCollector(c), NewMinMaxCollector(c), NewMinMaxCollector(c)
		for i, x := range bs {
			one.Observe(x)
			if i < 17 {
				a.Observe(x)
			} else {
				b.Observe(x)
			}
		}
		a.Merge(b)
		if a.Min() != one.Min() || a.Max() != one.Max() || a.Count() != one.Count() || a.NonFinite() != one.NonFinite() || a.Batches() != one.Batches() {
			t.Errorf("c=%g: merged %g %g %d %d, single %g %g %d %d", c, a.Min(), a.Max(), a.Count(), a.NonFinite(), one.Min(), one.Max(), one.Count(), one.NonFinite())
		}
		if !closeRel(a.Mean(), one.Mean(), 1e-12) || !closeRel(a.Std(), one.Std(), 1e-12) {
			t.Errorf("c=%g: merged mean/std %g %g, single %g %g", c, a.Mean(), a.Std(), one.Mean(), one.Std())
		}
		al, ah, _ := a.Moving()
		ol, oh, _ := one.Moving()
		if math.Abs(float64(al-ol)) > 1e-6 || math.Abs(float64(ah-oh)) > 1e-6 {
			t.Errorf("c=%g: merged moving %g %g, single %g %g", c, al, ah, ol, oh)
		}
		// Merging into an empty collector, and merging an empty one, change nothing.
		e := NewMinMaxCollector(c)
		e.Merge(one)
		e.Merge(NewMinMaxCollector(c))
		if e.Min() != one.Min() || e.Max() != one.Max() || e.Count() != one.Count() || e.Mean() != one.Mean() {
			t.Errorf("c=%g: empty merge changed the statistics", c)
		}
	}
	mustPanic(t, "merge constants", func() { NewMinMaxCollector(0).Merge(NewMinMaxCollector(0.5)) })
	mustPanic(t, "merge types", func() { NewMinMaxCollector(0).Merge(NewHistogram(64, false)) })
	mustPanic(t, "constant", func() { NewMinMaxCollector(1.5) })
	mustPanic(t, "NaN constant", func() { NewMinMaxCollector(math.NaN()) })
}

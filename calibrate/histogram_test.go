package calibrate

import (
	"math"
	"slices"
	"testing"
)

// growingStream returns batches whose spread and centre change, so a histogram must widen
// and re-place its window many times, with NaN/Inf and exact zeros mixed in.
func growingStream(seed uint64) [][]float32 {
	r := rng(seed)
	var bs [][]float32
	scale := 1e-3
	for i := range 30 {
		b := normals(r, 2000, float64(i%5-2)*scale, scale)
		b[0] = 0
		b[3] = float32(math.Copysign(0, -1)) // -0 is a zero of bin 0 too
		if i%4 == 1 {
			b[1] = float32(math.NaN())
			b[2] = float32(math.Inf(-1))
		}
		bs = append(bs, b)
		scale *= 1.9
	}
	// A constant batch and an empty one.
	bs = append(bs, []float32{3, 3, 3}, nil)
	return bs
}

// TestHistogramGrowthExact: after many widenings, every bin holds exactly the values a
// histogram computed at the final width in one go holds, and no count is lost.
func TestHistogramGrowthExact(t *testing.T) {
	for _, abs := range []bool{false, true} {
		for _, bins := range []int{16, 100, 2048} {
			bs := growingStream(3)
			h := NewHistogram(bins, abs)
			var finite, bad int64
			for _, b := range bs {
				h.Observe(b)
				for _, v := range b {
					if v-v == 0 {
						finite++
					} else {
						bad++
					}
				}
			}
			got, k := binsOf(h)
			equalBins(t, "growth", got, refBins(bs, k, abs))
			var sum int64
			for _, c := range h.counts {
				sum += c
			}
			if sum != finite || h.Count() != finite || h.NonFinite() != bad {
				t.Errorf("bins %d abs %v: Σcounts %d, Count %d, NonFinite %d; want %d, %d", bins, abs, sum, h.Count(), h.NonFinite(), finite, bad)
			}
			if h.Zeros() != 60 {
				t.Errorf("bins %d abs %v: %d zeros, want 60", bins, abs, h.Zeros())
			}
		}
	}
}

// TestHistogramResolution: after the first batch the data spans more than half the bins
// (the width is the smallest power of two that fits), for both kinds.
func TestHistogramResolution(t *testing.T) {
	tests := []struct {
		x   []float32
		abs bool
	}{
		{[]float32{-1, 1}, false},
		{[]float32{-1, 1}, true},
		{[]float32{1000, 1000.5}, false},
		{[]float32{-3.3e38, 3.3e38}, false},
		{[]float32{1e-45, 3e-45}, false},
		{[]float32{-0.7, 0.1, 5.3}, true},
	}
	for _, tc := range tests {
		h := NewHistogram(2048, tc.abs)
		h.Observe(tc.x)
		lo, w, counts := h.Bins()
		span := len(counts)
		if tc.abs { // an |x| histogram's window starts at 0
			span += int(lo / w)
		}
		if span <= 1024 || span > 2048 {
			t.Errorf("%v abs %v: data spans %d bins of width %g from %g, want 1025..2048", tc.x, tc.abs, span, w, lo)
		}
	}
	// A constant tensor gets a fine grid relative to its magnitude, and zeros the finest.
	h := NewHistogram(2048, false)
	h.Observe([]float32{5, 5})
	if w := h.Width(); w > 5.0/(1<<30) || w == 0 {
		t.Errorf("constant 5: width %g", w)
	}
	h.Observe([]float32{4, 6})
	equalBinsK(t, h, [][]float32{{5, 5}, {4, 6}}, false)
	z := NewHistogram(64, true)
	z.Observe([]float32{0, 0, 0})
	z.Observe([]float32{0.5})
	equalBinsK(t, z, [][]float32{{0, 0, 0}, {0.5}}, true)
}

func equalBinsK(t *testing.T, h *Histogram, bs [][]float32, abs bool) {
	t.Helper()
	got, k := binsOf(h)
	equalBins(t, "bins", got, refBins(bs, k, abs))
}

// TestHistogramMergeExact: two histograms each fed part of the batches, merged (in
// either order), equal one histogram fed all batches: same width, same count in every bin.
func TestHistogramMergeExact(t *testing.T) {
	for _, abs := range []bool{false, true} {
		bs := growingStream(4)
		for _, split := range []int{0, 1, 5, 17, len(bs)} {
			one, a, b := NewHistogram(256, abs), NewHistogram(256, abs), NewHistogram(256, abs)
			for i, x := range bs {
				one.Observe(x)
				if i < split {
					a.Observe(x)
				} else {
					b.Observe(x)
				}
			}
			ab := a.clone()
			ab.Merge(b)
			ba := b.clone()
			ba.Merge(a)
			want, kw := binsOf(one)
			for _, m := range []*Histogram{ab, ba} {
				got, k := binsOf(m)
				if k != kw {
					t.Errorf("abs %v split %d: merged width 2^%d, single 2^%d", abs, split, k, kw)
				}
				equalBins(t, "merge", got, want)
				if m.Count() != one.Count() || m.NonFinite() != one.NonFinite() || m.Zeros() != one.Zeros() ||
					m.Min() != one.Min() || m.Max() != one.Max() || m.amin != one.amin {
					t.Errorf("abs %v split %d: merged totals differ", abs, split)
				}
			}
		}
	}
	// Interleaved batches (two goroutines taking turns) merge exactly too.
	bs := growingStream(5)
	one, a, b := NewHistogram(2048, false), NewHistogram(2048, false), NewHistogram(2048, false)
	for i, x := range bs {
		one.Observe(x)
		if i%2 == 0 {
			a.Observe(x)
		} else {
			b.Observe(x)
		}
	}
	a.Merge(b)
	got, k := binsOf(a)
	want, kw := binsOf(one)
	if k != kw {
		t.Errorf("interleaved: width 2^%d, want 2^%d", k, kw)
	}
	equalBins(t, "interleaved", got, want)

	mustPanic(t, "merge kinds", func() { NewHistogram(64, false).Merge(NewHistogram(64, true)) })
	mustPanic(t, "merge sizes", func() { NewHistogram(64, false).Merge(NewHistogram(128, false)) })
	mustPanic(t, "merge types", func() { NewHistogram(64, false).Merge(NewMinMaxCollector(0)) })
	mustPanic(t, "bins", func() { NewHistogram(8, false) })
}

// TestHistogramFold: folding a signed histogram gives exactly the |x| counts.
func TestHistogramFold(t *testing.T) {
	for _, seed := range []uint64{6, 7} {
		bs := growingStream(seed)
		h := NewHistogram(512, false)
		for _, b := range bs {
			h.Observe(b)
		}
		f := h.Fold()
		if !f.Abs() || f.Count() != h.Count() || f.Zeros() != h.Zeros() || f.NonFinite() != h.NonFinite() {
			t.Fatalf("fold totals differ")
		}
		got, k := binsOf(f)
		equalBins(t, "fold", got, refBins(bs, k, true))
	}
	// One-signed data keeps its smallest |x|; a window far from 0 is coarsened to fit.
	h := NewHistogram(64, false)
	h.Observe([]float32{-1000, -999.5, -999})
	f := h.Fold()
	if f.amin != 999 || f.maxAbs() != 1000 {
		t.Errorf("fold of negatives: min|x| %g max|x| %g", f.amin, f.maxAbs())
	}
	equalBinsK(t, f, [][]float32{{-1000, -999.5, -999}}, true)
}

func TestHistogramEmptyAndNonFinite(t *testing.T) {
	h := NewHistogram(64, false)
	h.Observe(nil)
	h.Observe([]float32{})
	h.Observe([]float32{float32(math.NaN()), float32(math.Inf(1))})
	if h.Count() != 0 || h.NonFinite() != 2 || h.Width() != 0 {
		t.Errorf("count %d bad %d width %g", h.Count(), h.NonFinite(), h.Width())
	}
	if lo, w, c := h.Bins(); c != nil || lo != 0 || w != 0 {
		t.Errorf("bins of an empty histogram: %g %g %v", lo, w, c)
	}
	if lo, hi := PercentileRange(h, 99, false); lo != 0 || hi != 0 {
		t.Errorf("percentile of nothing %g %g", lo, hi)
	}
	// Merging an empty histogram with non-finite counts into a full one, and the reverse.
	g := NewHistogram(64, false)
	g.Observe([]float32{1, 2})
	g2 := g.clone()
	g2.Merge(h)
	h.Merge(g)
	for _, m := range []*Histogram{g2, h} {
		if m.Count() != 2 || m.NonFinite() != 2 || m.Min() != 1 || m.Max() != 2 {
			t.Errorf("merge with empty: count %d bad %d [%g, %g]", m.Count(), m.NonFinite(), m.Min(), m.Max())
		}
	}
	if h.MemoryBytes() != 8*64+96 {
		t.Errorf("memory %d", h.MemoryBytes())
	}
}

// TestHistogramExtremes: values across float32's whole range bin without overflow.
func TestHistogramExtremes(t *testing.T) {
	bs := [][]float32{
		{1e-45, -1e-45, 0},
		{math.MaxFloat32, -math.MaxFloat32, 1, -1},
		{1e-30, 3e-8},
	}
	for _, abs := range []bool{false, true} {
		h := NewHistogram(16, abs)
		for _, b := range bs {
			h.Observe(b)
		}
		equalBinsK(t, h, bs, abs)
		if h.Count() != 9 {
			t.Errorf("abs %v: count %d", abs, h.Count())
		}
		if !abs {
			if lo, hi := PercentileRange(h, 100, false); lo != -math.MaxFloat32 || hi != math.MaxFloat32 {
				t.Errorf("extremes: %g %g", lo, hi)
			}
		}
	}
}

// TestBinSplitMatchesOneByOne checks the four-partial binning of large batches against
// the one-by-one loop: same counts, zeros and smallest |x|, for signed and |x|
// histograms, on data with many zeros.
func TestBinSplitMatchesOneByOne(t *testing.T) {
	x := normals(rng(40), 3*splitMin+5, 0.5, 2)
	for i := range x {
		if i%3 != 0 {
			x[i] = max(x[i], 0) // rectified: runs of zeros
		}
	}
	y := normals(rng(41), 2*splitMin+3, 40, 1) // all positive, off-centre window
	for _, abs := range []bool{false, true} {
		fast, slow := NewHistogram(256, abs), NewHistogram(256, abs)
		for _, batch := range [][]float32{x, y, x[:splitMin], y[1:]} {
			fast.Observe(batch)
			saved := splitMin
			splitMin = len(batch) + 1
			slow.Observe(batch)
			splitMin = saved
		}
		_, wf, cf := fast.Bins()
		_, ws, cs := slow.Bins()
		if wf != ws || !slices.Equal(cf, cs) || fast.Zeros() != slow.Zeros() || fast.Count() != slow.Count() {
			t.Errorf("abs=%v: width %g vs %g, zeros %d vs %d, counts differ: %v", abs, wf, ws, fast.Zeros(), slow.Zeros(), !slices.Equal(cf, cs))
		}
		if fast.amin != slow.amin {
			t.Errorf("abs=%v: smallest |x| %g, want %g", abs, fast.amin, slow.amin)
		}
	}
}

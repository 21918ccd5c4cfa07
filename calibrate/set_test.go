package calibrate

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
)

// setData returns batches for three tensors: a Gaussian, rectified values with an
// outlier, and a tensor that is NaN in one batch.
func setData() map[string][][]float32 {
	r := rng(20)
	d := map[string][][]float32{}
	for i := range 24 {
		g := normals(r, 3000, 0.5, 2)
		relu := normals(r, 3000, 0, 1)
		for j := range relu {
			relu[j] = max(relu[j], 0)
		}
		if i == 7 {
			relu[0] = 40
		}
		odd := uniforms(r, 500, -3, 1)
		if i == 3 {
			odd[1] = float32(math.NaN())
			odd[2] = float32(math.Inf(1))
		}
		d["gauss"] = append(d["gauss"], g)
		d["relu"] = append(d["relu"], relu)
		d["odd"] = append(d["odd"], odd)
	}
	return d
}

var setNames = []string{"gauss", "relu", "odd", "never"}

func allOptions() []SetOptions {
	var out []SetOptions
	for _, m := range Methods {
		for _, sym := range []bool{false, true} {
			out = append(out, SetOptions{Method: m, Symmetric: sym})
		}
	}
	return append(out, SetOptions{Method: MinMax, MovingAverage: 0.1}, SetOptions{Method: Percentile, Percentile: 99.9})
}

// TestSetRanges: every method gives ranges inside the observed extremes (symmetric ones
// inside ±max|x|), symmetric ranges are symmetric, the table carries the statistics, and a
// tensor never observed is not calibrated.
func TestSetRanges(t *testing.T) {
	d := setData()
	for _, o := range allOptions() {
		s := NewSet(setNames, o)
		for i := range d["gauss"] {
			for _, n := range setNames[:3] {
				s.Observe(n, d[n][i])
			}
		}
		tab := s.Table()
		if tab.SchemaVersion != SchemaVersion || tab.Method != string(o.Method) || tab.Symmetric != o.Symmetric || len(tab.Tensors) != 4 {
			t.Errorf("%+v: table header %+v", o, tab)
		}
		if (tab.Percentile != 0) != (o.Method == Percentile) || tab.MovingAverage != o.MovingAverage {
			t.Errorf("%+v: percentile %g moving average %g", o, tab.Percentile, tab.MovingAverage)
		}
		for _, n := range setNames[:3] {
			r := tab.Tensors[n]
			a := max32(abs32(r.ObservedMin), abs32(r.ObservedMax))
			lo, hi, ok := tab.Range(n)
			if !ok || lo != r.Min || hi != r.Max || !(lo <= hi) {
				t.Errorf("%+v %s: Range %g %g %v", o, n, lo, hi, ok)
			}
			if o.Symmetric {
				if lo != -hi || hi > a || hi <= 0 {
					t.Errorf("%+v %s: [%g, %g], max|x| %g", o, n, lo, hi, a)
				}
			} else if lo < r.ObservedMin || hi > r.ObservedMax {
				t.Errorf("%+v %s: [%g, %g] outside [%g, %g]", o, n, lo, hi, r.ObservedMin, r.ObservedMax)
			}
		}
		if g := tab.Tensors["gauss"]; math.Abs(g.Mean-0.5) > 0.02 || math.Abs(g.Std-2) > 0.02 || g.Count != 72000 {
			t.Errorf("%+v: gauss mean %g std %g count %d", o, g.Mean, g.Std, g.Count)
		}
		if odd := tab.Tensors["odd"]; odd.NonFinite != 2 || odd.Count != 24*500-2 || s.NonFinite("odd") != 2 {
			t.Errorf("%+v: odd non-finite %d count %d", o, odd.NonFinite, odd.Count)
		}
		if nv := tab.Tensors["never"]; nv == nil || nv.Count != 0 || nv.Min != 0 || nv.Max != 0 {
			t.Errorf("%+v: never observed: %+v", o, nv)
		}
		if _, _, ok := tab.Range("never"); ok {
			t.Errorf("%+v: a tensor never observed is calibrated", o)
		}
		if (s.Histogram("gauss") == nil) != (o.Method == MinMax) {
			t.Errorf("%+v: histogram presence", o)
		}
		if h := s.Histogram("gauss"); h != nil && h.Abs() != o.Symmetric {
			t.Errorf("%+v: histogram abs %v", o, h.Abs())
		}
	}
	// The relu outlier (40, one value in 72000) is clipped by percentile 99.9 and entropy;
	// mse keeps it (clipping it to ~5 would cost 35² against a rounding gain of ~70 in
	// total), and so does minmax.
	for _, c := range []struct {
		o    SetOptions
		clip bool
	}{
		{SetOptions{Method: Percentile, Percentile: 99.9}, true},
		{SetOptions{Method: Entropy}, true},
		{SetOptions{Method: MSE}, false},
		{SetOptions{Method: MinMax}, false},
	} {
		s := NewSet([]string{"relu"}, c.o)
		for _, b := range d["relu"] {
			s.Observe("relu", b)
		}
		if r := s.Range("relu"); r.Min != 0 || (r.Max < 20) != c.clip || r.ObservedMax != 40 {
			t.Errorf("%s relu: [%g, %g], observed max %g", c.o.Method, r.Min, r.Max, r.ObservedMax)
		}
	}
}

// TestSetConcurrentAndMerge: concurrent Observe calls (different tensors and the same one)
// give the same table as sequential ones, and two sets fed the first and second halves of
// the batches, merged, give the same ranges as one set fed all (histogram counts are
// exact; moments agree to rounding).
func TestSetConcurrentAndMerge(t *testing.T) {
	d := setData()
	for _, o := range allOptions() {
		seq := NewSet(setNames, o)
		for i := range d["gauss"] {
			for _, n := range setNames[:3] {
				seq.Observe(n, d[n][i])
			}
		}
		want := seq.Table()

		// Concurrent, per tensor in order (what collect.Run does).
		con := NewSet(setNames, o)
		var wg sync.WaitGroup
		for _, n := range setNames[:3] {
			wg.Go(func() {
				for _, b := range d[n] {
					con.Observe(n, b)
				}
			})
		}
		wg.Wait()
		if got := con.Table(); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: concurrent table differs", o)
		}

		// Two halves merged.
		a, b := NewSet(setNames, o), NewSet(setNames, o)
		for i := range d["gauss"] {
			s := a
			if i >= 11 {
				s = b
			}
			for _, n := range setNames[:3] {
				s.Observe(n, d[n][i])
			}
		}
		a.Merge(b)
		got := a.Table()
		for _, n := range setNames {
			g, w := got.Tensors[n], want.Tensors[n]
			if g.Min != w.Min || g.Max != w.Max || g.ObservedMin != w.ObservedMin || g.ObservedMax != w.ObservedMax ||
				g.Count != w.Count || g.NonFinite != w.NonFinite || !closeRel(g.Mean, w.Mean, 1e-9) || !closeRel(g.Std, w.Std, 1e-9) {
				if o.MovingAverage != 0 && math.Abs(float64(g.Min-w.Min)) < 1e-5 && math.Abs(float64(g.Max-w.Max)) < 1e-5 {
					continue // the moving average merges to rounding
				}
				t.Errorf("%+v %s: merged %+v, single %+v", o, n, g, w)
			}
		}
	}
	self := NewSet(setNames, SetOptions{Method: MSE})
	mustPanic(t, "merge self", func() { self.Merge(self) })
	h := NewHistogram(16, false)
	mustPanic(t, "merge histogram self", func() { h.Merge(h) })
	m := NewMinMaxCollector(0)
	mustPanic(t, "merge collector self", func() { m.Merge(m) })
	mustPanic(t, "merge options", func() {
		NewSet(setNames, SetOptions{Method: MinMax}).Merge(NewSet(setNames, SetOptions{Method: MSE}))
	})
	mustPanic(t, "merge names", func() {
		NewSet(setNames, SetOptions{Method: MinMax}).Merge(NewSet([]string{"a", "b", "c", "d"}, SetOptions{Method: MinMax}))
	})
}

// TestSetMemory: the state does not grow with the number of batches, and folding a batch
// allocates nothing once the histogram's range is established.
func TestSetMemory(t *testing.T) {
	x := normals(rng(21), 100_000, 0, 1)
	for _, o := range []SetOptions{{Method: MinMax}, {Method: Percentile}, {Method: Entropy, Symmetric: true}} {
		s := NewSet([]string{"t"}, o)
		s.Observe("t", x[:10])
		before := s.MemoryBytes()
		for range 50 {
			s.Observe("t", x)
		}
		if after := s.MemoryBytes(); after != before {
			t.Errorf("%s: %d bytes after 10 values, %d after 5M", o.Method, before, after)
		}
		if allocs := testing.AllocsPerRun(20, func() { s.Observe("t", x) }); allocs != 0 {
			t.Errorf("%s: Observe allocates %g times a batch", o.Method, allocs)
		}
		wantMax := 8*DefaultBins + 512
		if o.Method == MinMax {
			wantMax = 512
		}
		if before > wantMax {
			t.Errorf("%s: %d bytes for one tensor", o.Method, before)
		}
	}
}

func TestSetPanics(t *testing.T) {
	mustPanic(t, "method", func() { NewSet(nil, SetOptions{Method: "kl"}) })
	mustPanic(t, "no method", func() { NewSet(nil, SetOptions{}) })
	mustPanic(t, "duplicate", func() { NewSet([]string{"a", "a"}, SetOptions{Method: MinMax}) })
	mustPanic(t, "percentile", func() { NewSet(nil, SetOptions{Method: Percentile, Percentile: 101}) })
	mustPanic(t, "moving", func() { NewSet(nil, SetOptions{Method: MinMax, MovingAverage: -1}) })
	mustPanic(t, "bins", func() { NewSet(nil, SetOptions{Method: Entropy, Bins: 4}) })
	mustPanic(t, "levels", func() { NewSet(nil, SetOptions{Method: Entropy, QuantizedBins: 1}) })
	mustPanic(t, "bits", func() { NewSet(nil, SetOptions{Method: MSE, Bits: 40}) })
	s := NewSet([]string{"a"}, SetOptions{Method: "Entropy"})
	if s.Options().Method != Entropy || s.Options().Bins != DefaultBins || s.Options().QuantizedBins != DefaultQuantizedBins ||
		s.Options().Bits != DefaultBits || s.Options().Percentile != DefaultPercentile {
		t.Errorf("defaults: %+v", s.Options())
	}
	if fmt.Sprint(s.Names()) != "[a]" {
		t.Errorf("names %v", s.Names())
	}
	mustPanic(t, "unknown tensor", func() { s.Observe("b", nil) })
	// An empty batch changes nothing.
	s.Observe("a", nil)
	s.Observe("a", []float32{})
	if r := s.Range("a"); r.Count != 0 || r.NonFinite != 0 {
		t.Errorf("empty batches: %+v", r)
	}
}

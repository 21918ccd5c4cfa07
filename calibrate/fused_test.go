package calibrate

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fusedStreams are batch streams for TestFusedMatchesTwoPass: normal and ReLU-like data,
// ranges that grow within a batch (the fused pass stops part way) and across batches,
// NaN/Inf at the start, inside groups of four and in the tail, ±0 first, tiny negative
// subnormals under wide bins, and lengths that are not multiples of four.
func fusedStreams(r *rand.Rand) map[string][][]float32 {
	relu := func(x []float32) []float32 {
		for i, v := range x {
			x[i] = max(v, 0)
		}
		return x
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negz := float32(math.Copysign(0, -1))
	s := map[string][][]float32{}
	for i := range 6 {
		s["normal"] = append(s["normal"], normals(r, 3000+i, 0.1, 1))
		s["relu"] = append(s["relu"], relu(normals(r, 3001+2*i, 0, 1+float64(i))))
	}
	// Growth: each batch wider than the last, its far values late in the batch.
	for i := range 8 {
		b := normals(r, 2999, 0, 1)
		for j := 2000; j < len(b); j += 97 {
			b[j] *= float32(math.Pow(3, float64(i)))
		}
		s["growth"] = append(s["growth"], b)
	}
	// A narrow first batch, then a shift off-centre, then a jump of the whole range.
	s["shift"] = [][]float32{normals(r, 4000, 5, 0.01), normals(r, 4001, 5.5, 0.01), normals(r, 4002, -40, 3), normals(r, 4003, 1e5, 1)}
	bad := func(b []float32) []float32 {
		b = slices.Clone(b)
		b[0], b[1] = nan, -inf // leading non-finite values
		b[10], b[13] = inf, nan
		b[len(b)-1] = nan // in the tail
		b[len(b)/2] = -inf
		return b
	}
	for i := range 5 {
		s["nonfinite"] = append(s["nonfinite"], bad(normals(r, 3003+i, 0, 1)))
		s["nonfinite-relu"] = append(s["nonfinite-relu"], bad(relu(normals(r, 3002+i, 0, 2))))
	}
	// Zeros first (-0 then +0, and +0 then -0), so the sign of ±0 extremes matters.
	z1 := relu(normals(r, 3000, 0, 1))
	z1[0], z1[1] = negz, 0
	z2 := slices.Clone(z1)
	z2[0], z2[1] = 0, negz
	z3 := make([]float32, 3001) // all zeros, mixed signs
	for i := range z3 {
		if i%3 == 1 {
			z3[i] = negz
		}
	}
	z4 := normals(r, 3000, -5, 1) // all negative, then zeros: max is a zero
	for i := 700; i < len(z4); i += 211 {
		z4[i] = negz
	}
	z4[1500] = 0
	s["zeros"] = [][]float32{z1, z2, z3, z1, z4, z2}
	// Wide bins with tiny values of both signs (the float32 product underflows).
	tiny := normals(r, 3000, 0, 100)
	for i := 0; i < len(tiny); i += 7 {
		tiny[i] = float32(math.Float32frombits(uint32(1+i%5))) * float32(1-2*(i/7%2))
	}
	s["tiny"] = [][]float32{normals(r, 3000, 0, 100), tiny, tiny}
	// Non-finite only, and a batch without any value, between normal ones.
	s["empty"] = [][]float32{normals(r, 3000, 0, 1), {nan, inf, -inf, nan}, nil, normals(r, 3000, 0, 2)}
	// First batches of every kind (the fused pass bins them into a provisional window
	// placed from a sample), each followed by an ordinary batch.
	after := func(name string, first []float32) {
		s["first-"+name] = [][]float32{first, normals(r, 3000, 0.5, 2)}
	}
	zero := make([]float32, 3001)
	for i := range zero {
		if i%5 == 2 {
			zero[i] = negz
		}
	}
	after("zero", zero) // a width finer than the fused pass's
	after("const", slices.Repeat([]float32{3.5}, 3002))
	after("const-neg", slices.Repeat([]float32{-1e-3}, 2999))
	after("const-subnormal", slices.Repeat([]float32{math.Float32frombits(5)}, 3000))
	after("const-huge", slices.Repeat([]float32{-3e38}, 3000))
	after("short", []float32{2})
	after("short-nan", []float32{nan, -7, inf})
	after("short-seven", []float32{negz, 1, -2, 0, 3, nan, 5})
	after("relu", relu(normals(r, 3001, 0, 1)))
	sparse := make([]float32, 40000) // a sample of zeros, a few values far outside it
	for i := 17; i < len(sparse); i += 151 {
		sparse[i] = float32(i) / 100
	}
	after("sparse-relu", sparse)
	after("relu-large", relu(normals(r, 40003, -0.5, 1)))
	after("nonfinite", bad(normals(r, 3002, 0, 1)))
	sampled := normals(r, 3000, 0, 1) // NaN/Inf where the sample looks (odd strides)
	for i := 0; i < len(sampled); i += 3 {
		sampled[i] = [2]float32{nan, -inf}[i/3%2]
	}
	after("nonfinite-sampled", sampled)
	wide := normals(r, 3003, 0, 1)
	for i := range wide {
		wide[i] *= float32(math.Pow(10, float64(i%77)/2)) // 1 to 1e38
	}
	after("wide", wide)
	extreme := normals(r, 3000, 0, 1)
	extreme[1500], extreme[1501] = 3.4e38, -3.4e38
	after("extreme", extreme)
	// Most of the batch outside the sample's range (the sample, one value in three,
	// sees only small values): the pass stops part way.
	hidden := normals(r, 3000, 0, 0.01)
	for i := range hidden {
		if i%3 != 0 {
			hidden[i] *= 1e4
		}
	}
	after("hidden", hidden)
	return s
}

// TestFusedMatchesTwoPass: the fused pass gives, batch after batch, bit for bit what the
// scan followed by observe gives: the batch statistics (extremes, counts, moments) and
// the histogram (width, window, every count, zeros, extremes, smallest |x|).
func TestFusedMatchesTwoPass(t *testing.T) {
	saved := splitMin
	defer func() { splitMin = saved }()
	for name, stream := range fusedStreams(rng(50)) {
		for _, bins := range []int{16, 100, 2048} {
			for _, abs := range []bool{false, true} {
				for _, sm := range []int{1, saved} {
					splitMin = sm
					ref, got := NewHistogram(bins, abs), NewHistogram(bins, abs)
					for i, b := range stream {
						want := scan(b)
						ref.observe(b, want)
						bs := got.observeFused(b)
						if !sameStats(bs, want) {
							t.Fatalf("%s bins %d abs %v splitMin %d batch %d: stats %+v, want %+v", name, bins, abs, sm, i, bs, want)
						}
						if !sameHistogram(got, ref) {
							t.Fatalf("%s bins %d abs %v splitMin %d batch %d: histogram differs (k %d/%d, off %d/%d, total %d/%d, zeros %d/%d, bad %d/%d)",
								name, bins, abs, sm, i, got.k, ref.k, got.off, ref.off, got.total, ref.total, got.zeros, ref.zeros, got.bad, ref.bad)
						}
					}
				}
			}
		}
	}
}

func same32(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
func same64(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

func sameStats(a, b batchStats) bool {
	return same32(a.min, b.min) && same32(a.max, b.max) && a.n == b.n && a.bad == b.bad &&
		same64(a.shift, b.shift) && same64(a.s1, b.s1) && same64(a.s2, b.s2)
}

func sameHistogram(a, b *Histogram) bool {
	return a.k == b.k && a.off == b.off && slices.Equal(a.counts, b.counts) && a.total == b.total &&
		a.zeros == b.zeros && a.bad == b.bad && same32(a.min, b.min) && same32(a.max, b.max) && same32(a.amin, b.amin)
}

// TestSetTablesFused: a Set (which feeds the fused pass) gives the same table, every
// field bit for bit, as collectors fed the two passes, for each histogram method.
func TestSetTablesFused(t *testing.T) {
	r := rng(51)
	streams := fusedStreams(r)
	for _, m := range []Method{Percentile, Entropy, MSE} {
		for _, sym := range []bool{false, true} {
			names := slices.Sorted(func(yield func(string) bool) {
				for n := range streams {
					if !yield(n) {
						return
					}
				}
			})
			s := NewSet(names, SetOptions{Method: m, Symmetric: sym})
			ref := NewSet(names, SetOptions{Method: m, Symmetric: sym})
			for _, n := range names {
				for _, b := range streams[n] {
					s.Observe(n, b)
					st := ref.stats(n)
					bs := scan(b)
					st.mm.fold(bs)
					st.h.observe(b, bs)
				}
			}
			got, want := s.Table(), ref.Table()
			for _, n := range names {
				g, w := got.Tensors[n], want.Tensors[n]
				if !same32(g.Min, w.Min) || !same32(g.Max, w.Max) || !same32(g.ObservedMin, w.ObservedMin) ||
					!same32(g.ObservedMax, w.ObservedMax) || !same64(g.Mean, w.Mean) || !same64(g.Std, w.Std) ||
					g.Count != w.Count || g.NonFinite != w.NonFinite {
					t.Errorf("%s symmetric %v %s: %+v, want %+v", m, sym, n, *g, *w)
				}
			}
		}
	}
}

// TestOrderKey: the order keys of finite float32s order as the floats (±0 apart), and
// map back.
func TestOrderKey(t *testing.T) {
	r := rng(52)
	vals := []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, math.MaxFloat32, -math.MaxFloat32, 1, -1}
	for range 1000 {
		vals = append(vals, math.Float32frombits(r.Uint32()&^(0xff<<23)|uint32(r.IntN(255))<<23))
	}
	for _, a := range vals {
		if !same32(fromOrderKey(orderKey(a)), a) {
			t.Fatalf("%g: key does not map back", a)
		}
		for _, b := range vals[:40] {
			if a != 0 || b != 0 {
				if (a < b) != (orderKey(a) < orderKey(b)) {
					t.Fatalf("%g < %g: keys %d, %d", a, b, orderKey(a), orderKey(b))
				}
			}
		}
	}
}

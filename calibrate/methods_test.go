package calibrate

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestParseMethod(t *testing.T) {
	tests := []struct {
		in   string
		want Method
		ok   bool
	}{
		{"minmax", MinMax, true},
		{"MinMax", MinMax, true},
		{" percentile ", Percentile, true},
		{"Entropy", Entropy, true},
		{"MSE", MSE, true},
		{"", "", false},
		{"kl", "", false},
		{"distribution", "", false},
	}
	for _, tc := range tests {
		got, err := ParseMethod(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseMethod(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// TestPercentileByHand: the values 0…15 fill 16 bins of width 1, one each; the percentile
// interpolates linearly inside the bin that crosses q·16, whose values spread over [j, j+1)
// (the last bin clamped to [15, 15]).
func TestPercentileByHand(t *testing.T) {
	x := make([]float32, 16)
	for i := range x {
		x[i] = float32(i)
	}
	tests := []struct {
		p         float64
		symmetric bool
		lo, hi    float64
	}{
		// q = 0.9: c = 14.4 lands in bin 14 at fraction 0.4; q = 0.1: c = 1.6, bin 1.
		{90, false, 1.6, 14.4},
		{50, false, 8, 8},
		{100, false, 0, 15},
		{99, false, 0, 15}, // c = 0.16 ≤ 1 exact zero (a point mass at 0); c = 15.84: bin 15 is [15, 15]
		{90, true, -14.4, 14.4},
		{100, true, -15, 15},
	}
	for _, abs := range []bool{false, true} {
		h := NewHistogram(16, abs)
		h.Observe(x)
		if h.Width() != 1 {
			t.Fatalf("width %g, want 1", h.Width())
		}
		for _, tc := range tests {
			if abs && !tc.symmetric {
				continue
			}
			lo, hi := PercentileRange(h, tc.p, tc.symmetric)
			if math.Abs(float64(lo)-tc.lo) > 1e-6 || math.Abs(float64(hi)-tc.hi) > 1e-6 {
				t.Errorf("abs %v p %g symmetric %v: [%g, %g], want [%g, %g]", abs, tc.p, tc.symmetric, lo, hi, tc.lo, tc.hi)
			}
		}
	}
	// Without the exact zero, bin 0 is uniform over [0.25, 1): c = 0.16 of its 1 value.
	x[0] = 0.25
	h := NewHistogram(16, false)
	h.Observe(x)
	if lo, _ := PercentileRange(h, 99, false); math.Abs(float64(lo)-(0.25+0.16*0.75)) > 1e-6 {
		t.Errorf("p 99 without zeros: min %g, want %g", lo, 0.25+0.16*0.75)
	}
	// Rectified data: half exact zeros, half U(0, 1) from 0.5 on: the 30th percentile is 0,
	// the 75th is 0.5 + (0.75-0.5)/0.5·0.5 = 0.75 within a bin (width 2^-4 here).
	r := append(make([]float32, 1000), uniforms(rng(9), 1000, 0.5, 1)...)
	hr := NewHistogram(16, false)
	hr.Observe(r)
	if lo, _ := PercentileRange(hr, 70, false); lo != 0 {
		t.Errorf("rectified 30th percentile %g, want 0", lo)
	}
	if _, hi := PercentileRange(hr, 75, false); math.Abs(float64(hi)-0.75) > hr.Width() {
		t.Errorf("rectified 75th percentile %g, want 0.75±%g", hi, hr.Width())
	}
	mustPanic(t, "asymmetric on |x|", func() { h := NewHistogram(16, true); h.Observe(x); PercentileRange(h, 99, false) })
	mustPanic(t, "p", func() { PercentileRange(NewHistogram(16, false), 49, false) })
	mustPanic(t, "p NaN", func() { PercentileRange(NewHistogram(16, false), math.NaN(), false) })
}

// TestPercentileGaussian: the histogram percentile of a large seeded N(0, 1) sample is
// within one bin width of the sample's own quantile (both lie in the bin that crosses the
// rank), and within one bin width plus four standard errors of the analytic quantile
// (distuv.Normal.Quantile); the standard error of a sample q-quantile is
// sqrt(q(1-q)/n)/φ(x_q).
func TestPercentileGaussian(t *testing.T) {
	const n = 2_000_000
	x := normals(rng(11), n, 0, 1)
	sorted := slices.Clone(x)
	slices.Sort(sorted)
	abs := make([]float32, n)
	for i, v := range x {
		abs[i] = abs32(v)
	}
	slices.Sort(abs)
	signed, folded := NewHistogram(DefaultBins, false), NewHistogram(DefaultBins, true)
	for _, b := range batches(x, 65536) {
		signed.Observe(b)
		folded.Observe(b)
	}
	norm := distuv.UnitNormal
	// rank returns the sample value of rank ⌈q·n⌉.
	rank := func(s []float32, q float64) float64 {
		r := int(math.Ceil(q * n))
		return float64(s[max(r, 1)-1])
	}
	for _, p := range []float64{99, 99.9, 99.99, 99.999} {
		q := p / 100
		lo, hi := PercentileRange(signed, p, false)
		w := signed.Width()
		for _, c := range []struct {
			name       string
			got, q     float64
			sample     float64
			analytic   float64
			stderrPart float64
		}{
			{"max", float64(hi), q, rank(sorted, q), norm.Quantile(q), 0},
			{"min", float64(lo), 1 - q, rank(sorted, 1-q), norm.Quantile(1 - q), 0},
		} {
			se := math.Sqrt(c.q*(1-c.q)/n) / norm.Prob(c.analytic)
			if math.Abs(c.got-c.sample) > w*(1+1e-9) {
				t.Errorf("p %g %s: %g, sample quantile %g (bin width %g)", p, c.name, c.got, c.sample, w)
			}
			if math.Abs(c.got-c.analytic) > w+4*se {
				t.Errorf("p %g %s: %g, analytic %g (tolerance %g)", p, c.name, c.got, c.analytic, w+4*se)
			}
		}
		// Symmetric: the p-quantile of |x|, analytic Φ⁻¹((1+q)/2).
		for _, h := range []*Histogram{folded, signed} {
			lo, hi := PercentileRange(h, p, true)
			w := h.Width()
			if h == signed {
				w = signed.Fold().Width()
			}
			a := norm.Quantile((1 + q) / 2)
			se := math.Sqrt(q*(1-q)/n) / (2 * norm.Prob(a))
			if lo != -hi || math.Abs(float64(hi)-rank(abs, q)) > w*(1+1e-9) || math.Abs(float64(hi)-a) > w+4*se {
				t.Errorf("p %g symmetric (abs %v): [%g, %g], sample %g, analytic %g±%g", p, h.Abs(), lo, hi, rank(abs, q), a, w+4*se)
			}
		}
	}
}

// TestEntropyKLByHand checks the divergence curve on h = [3, 1, 0, 2] with 2 levels,
// computed by hand:
//
//	i=2: P = [3, 1+0+2] = [3, 3]; Q groups {0},{1} of [3, 1] → [3, 1]; no zeros.
//	     KL = ½ln(½/¾) + ½ln(½/¼) = ½ln(4/3)
//	i=3: P = [3, 1, 0+2]; groups {0,1},{2} of [3, 1, 0]: sums 4, 0 → Q = [2, 2, 0];
//	     Q smoothed: 1 zero, 2 non-zero: [2-ε/2, 2-ε/2, ε] (ε = 1e-4), total 4.
//	i=4: P = [3, 1, 0, 2]: smoothed [3-ε/3, 1-ε/3, ε, 2-ε/3]; groups {0,1},{2,3} of
//	     [3, 1, 0, 2]: sums 4, 2; non-zero P bins 2 and 1 → Q = [2, 2, 0, 2], smoothed
//	     [2-ε/3, 2-ε/3, ε, 2-ε/3]; both total 6.
func TestEntropyKLByHand(t *testing.T) {
	const e = 1e-4
	kl2 := 0.5 * math.Log(4.0/3)
	qa := (2 - e/2) / 4
	kl3 := 0.5*math.Log(0.5/qa) + (1.0/6)*math.Log((1.0/6)/qa) + (1.0/3)*math.Log((1.0/3)/(e/4))
	p4 := []float64{3 - e/3, 1 - e/3, e, 2 - e/3}
	q4 := []float64{2 - e/3, 2 - e/3, e, 2 - e/3}
	kl4 := 0.0
	for j := range p4 {
		kl4 += p4[j] / 6 * math.Log(p4[j]/q4[j])
	}
	got := entropyDivergences([]float64{3, 1, 0, 2}, 2)
	want := []float64{kl2, kl3, kl4}
	if len(got) != len(want) {
		t.Fatalf("%d divergences, want %d", len(got), len(want))
	}
	for j := range want {
		if math.Abs(got[j]-want[j]) > 1e-12 {
			t.Errorf("i=%d: KL %.15g, want %.15g", j+2, got[j], want[j])
		}
	}
	// kl4 ≈ 0.0872 < kl2 ≈ 0.1438 < kl3 ≈ 2.98: the search keeps every bin.
	if !(kl4 < kl2 && kl2 < kl3) {
		t.Errorf("hand values out of order: %g %g %g", kl2, kl3, kl4)
	}
	// Smoothing a distribution of zeros only fails; one whose ε would overwhelm a tiny
	// non-zero bin takes less from it.
	if smooth([]float64{0, 0}) {
		t.Error("smoothed an all-zero distribution")
	}
	p := append([]float64{1e-3}, make([]float64, 99)...)
	if !smooth(p) || p[0] <= 0 || math.Abs(p[0]-5e-4) > 1e-12 || math.Abs(sum(p)-1e-3) > 1e-15 {
		t.Errorf("smooth of a tiny bin: %g (sum %g)", p[0], sum(p))
	}
}

func sum(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s
}

// TestEntropyThresholds: a Gaussian with a few huge outliers gets a threshold above 3σ
// and far below the outliers, of the form (i+0.5)·w with i ≥ 128; a uniform distribution
// keeps (nearly) all of its range; one-signed data keeps its sign.
func TestEntropyThresholds(t *testing.T) {
	r := rng(12)
	x := normals(r, 1_000_000, 0, 1)
	outliers := []float32{50, -50, 49, -48, 47, 45, -44, 50, 46, -49}
	h := NewHistogram(DefaultBins, true)
	for _, b := range batches(x, 100_000) {
		h.Observe(b)
	}
	h.Observe(outliers)
	lo, hi := EntropyRange(h, DefaultQuantizedBins, true)
	w := h.Width()
	i := float64(hi)/w - 0.5
	if lo != -hi || hi < 3 || hi > 10 || i != math.Trunc(i) || i < DefaultQuantizedBins {
		t.Errorf("gaussian + outliers: [%g, %g] (bins of %g: i = %g)", lo, hi, w, i)
	}
	// Asymmetric: [max(min, -t), min(max, t)] = [-t, t] here.
	if lo2, hi2 := EntropyRange(h, DefaultQuantizedBins, false); lo2 != lo || hi2 != hi {
		t.Errorf("asymmetric: [%g, %g], want [%g, %g]", lo2, hi2, lo, hi)
	}
	// Rectified (post-ReLU) data: [min, t].
	relu := NewHistogram(DefaultBins, true)
	for _, b := range batches(x, 100_000) {
		c := slices.Clone(b)
		for j := range c {
			c[j] = max(c[j], 0)
		}
		relu.Observe(c)
	}
	relu.Observe([]float32{50, 47})
	if lo, hi := EntropyRange(relu, DefaultQuantizedBins, false); lo != 0 || hi < 3 || hi > 10 {
		t.Errorf("relu + outliers: [%g, %g]", lo, hi)
	}
	u := NewHistogram(DefaultBins, true)
	u.Observe(uniforms(r, 1_000_000, -1, 1))
	if lo, hi := EntropyRange(u, DefaultQuantizedBins, true); hi < 0.99 || lo != -hi || hi > u.Max() {
		t.Errorf("uniform: [%g, %g]", lo, hi)
	}
	// A signed histogram is folded first: the same as entropy on its fold.
	s := NewHistogram(DefaultBins, false)
	s.Observe(x)
	s.Observe(outliers)
	a, b := EntropyRange(s, DefaultQuantizedBins, true)
	c, d := EntropyRange(s.Fold(), DefaultQuantizedBins, true)
	if a != c || b != d {
		t.Errorf("signed [%g, %g] vs folded [%g, %g]", a, b, c, d)
	}
	// Fewer occupied bins than levels: nothing to search, t = max|x|.
	few := NewHistogram(16, true)
	few.Observe([]float32{-3, 1, 2})
	if lo, hi := EntropyRange(few, DefaultQuantizedBins, false); lo != -3 || hi != 2 {
		t.Errorf("few bins: [%g, %g], want [-3, 2]", lo, hi)
	}
	if lo, hi := EntropyRange(NewHistogram(16, true), DefaultQuantizedBins, true); lo != 0 || hi != 0 {
		t.Errorf("empty: [%g, %g]", lo, hi)
	}
	mustPanic(t, "levels", func() { EntropyRange(few, 1, true) })
}

// laplaceOptimum minimises the analytic expected error of clipping Laplace(0, 1) at ±α
// with symmetric 8-bit steps (2α/254): 2e^-α + (1-e^-α)·(α/127)²/12, by golden section.
func laplaceOptimum() float64 {
	f := func(a float64) float64 { return 2*math.Exp(-a) + (1-math.Exp(-a))*(a/127)*(a/127)/12 }
	lo, hi := 1.0, 20.0
	g := (math.Sqrt(5) - 1) / 2
	for hi-lo > 1e-9 {
		a, b := hi-g*(hi-lo), lo+g*(hi-lo)
		if f(a) < f(b) {
			hi = b
		} else {
			lo = a
		}
	}
	return (lo + hi) / 2
}

// TestMSE: heavy tails (Laplace) are clipped near the analytic optimum (≈ 9.88 scales for
// 8 bits, well below the sample's max|x| ≈ 14); uniform data are clipped by at most the
// analytic δ where the clipping error (1-t)³/3 balances the rounding error.
func TestMSE(t *testing.T) {
	r := rng(13)
	lap := distuv.Laplace{Mu: 0, Scale: 1, Src: r}
	x := make([]float32, 1_000_000)
	for i := range x {
		x[i] = float32(lap.Rand())
	}
	alpha := laplaceOptimum()
	if math.Abs(alpha-9.88) > 0.01 {
		t.Fatalf("analytic Laplace optimum %g", alpha)
	}
	abs, signed := NewHistogram(DefaultBins, true), NewHistogram(DefaultBins, false)
	abs.Observe(x)
	signed.Observe(x)
	maxAbs := float32(abs.maxAbs())
	// The objective is flat near its minimum and the sample has ~50 values beyond α:
	// 10% relative tolerance.
	if lo, hi := MSERange(abs, 8, true); lo != -hi || math.Abs(float64(hi)-alpha) > 0.1*alpha || hi > 0.8*maxAbs {
		t.Errorf("laplace symmetric: [%g, %g], analytic ±%g, max|x| %g", lo, hi, alpha, maxAbs)
	}
	if lo, hi := MSERange(signed, 8, false); math.Abs(float64(-lo)-alpha) > 0.1*alpha || math.Abs(float64(hi)-alpha) > 0.1*alpha {
		t.Errorf("laplace asymmetric: [%g, %g], analytic ±%g", lo, hi, alpha)
	}

	// Uniform(-1, 1), symmetric int8: E(t) ∝ (1-t)³/3 + t³/(127²·12), minimum where
	// (1-t) = t·sqrt(3/(127²·12)).
	u := NewHistogram(DefaultBins, true)
	u.Observe(uniforms(r, 1_000_000, -1, 1))
	tSym := 1 / (1 + math.Sqrt(3/(127.0*127*12)))
	if lo, hi := MSERange(u, 8, true); math.Abs(float64(hi)-tSym) > 0.005 || lo != -hi {
		t.Errorf("uniform symmetric: [%g, %g], analytic ±%g", lo, hi, tSym)
	}
	// Uniform(0, 1), asymmetric uint8: E(U) ∝ (1-U)³/3 + U³/(255²·12).
	v := NewHistogram(DefaultBins, false)
	v.Observe(uniforms(r, 1_000_000, 0, 1))
	uAsym := 1 / (1 + math.Sqrt(3/(255.0*255*12)))
	if lo, hi := MSERange(v, 8, false); math.Abs(float64(hi)-uAsym) > 0.005 || lo != v.Min() {
		t.Errorf("uniform(0,1) asymmetric: [%g, %g], analytic [%g, %g]", lo, hi, v.Min(), uAsym)
	}
	// Fewer bits, coarser steps: more clipping.
	if _, hi4 := MSERange(abs, 4, true); hi4 >= float32(alpha) {
		t.Errorf("4 bits clip at %g, not below the 8-bit optimum", hi4)
	}
	if lo, hi := MSERange(NewHistogram(16, false), 8, false); lo != 0 || hi != 0 {
		t.Errorf("empty: [%g, %g]", lo, hi)
	}
	z := NewHistogram(16, true)
	z.Observe([]float32{0, 0})
	if lo, hi := MSERange(z, 8, true); lo != 0 || hi != 0 {
		t.Errorf("zeros: [%g, %g]", lo, hi)
	}
	mustPanic(t, "bits", func() { MSERange(u, 1, true) })
	mustPanic(t, "asymmetric on |x|", func() { MSERange(u, 8, false) })
}

// mseBrute evaluates MSERange's E for the range from the lower end of bin jl to the
// upper end of bin ju of v by direct summation (bins before jl clipped to L, after ju to U).
func mseBrute(v *view, jl, ju int, L, U, steps float64) float64 {
	s := (math.Max(U, 0) - math.Min(L, 0)) / steps
	e, inside := 0.0, 0.0
	for j, n := range v.n {
		c, l := (v.lo[j]+v.hi[j])/2, v.hi[j]-v.lo[j]
		switch {
		case j > ju:
			e += n * ((c-U)*(c-U) + l*l/12)
		case j < jl:
			e += n * ((L-c)*(L-c) + l*l/12)
		default:
			inside += n
		}
	}
	if L <= 0 && U >= 0 {
		inside -= v.zeros
	}
	return e + inside*s*s/12
}

// TestMSEAgainstBruteForce: on small random histograms, the searched range's error equals
// the least error over every candidate computed by direct summation.
func TestMSEAgainstBruteForce(t *testing.T) {
	r := rng(14)
	for trial := range 20 {
		x := normals(r, 5000, r.Float64()*2-1, 0.5+r.Float64())
		for j := range 20 {
			x[j] = float32(r.Float64()*20 - 10) // outliers
		}
		x[20], x[21] = 0, 0
		if trial%5 == 4 { // one-signed data
			for j := range x {
				x[j] = abs32(x[j]) + 0.25
			}
		}
		h := NewHistogram(64, false)
		h.Observe(x)
		v := h.view(false)
		m := len(v.n)
		lo, hi := mseAsymmetric(&v, 255)
		best, got := math.Inf(1), math.Inf(1)
		for a := range m {
			if v.lo[a] > 0 && a > 0 {
				continue
			}
			for b := a; b < m; b++ {
				if v.hi[b] < 0 && b < m-1 {
					continue
				}
				e := mseBrute(&v, a, b, v.lo[a], v.hi[b], 255)
				best = math.Min(best, e)
				if v.lo[a] == lo && v.hi[b] == hi {
					got = e
				}
			}
		}
		if got > best*(1+1e-9) {
			t.Errorf("trial %d asymmetric: [%g, %g] error %g, brute-force best %g", trial, lo, hi, got, best)
		}

		f := h.Fold()
		av := f.view(true)
		th := mseSymmetric(&av, 254)
		best, got = math.Inf(1), math.Inf(1)
		for j := range av.n {
			tj := float64(av.first+int64(j)+1) * av.w
			if j == len(av.n)-1 {
				tj = av.dhi
			}
			if tj <= 0 || tj > av.dhi {
				continue
			}
			e := mseBrute(&av, 0, j, -tj, tj, 254)
			best = math.Min(best, e)
			if tj == th {
				got = e
			}
		}
		if got > best*(1+1e-9) {
			t.Errorf("trial %d symmetric: t %g error %g, brute-force best %g", trial, th, got, best)
		}
	}
}

// TestMSECoarseToFine: past maxPairs candidate pairs the asymmetric search thins and
// refines; its range's error stays within 0.1% of the exhaustive search's.
func TestMSECoarseToFine(t *testing.T) {
	r := rng(15)
	lap := distuv.Laplace{Mu: 0.3, Scale: 1, Src: r}
	x := make([]float32, 400_000)
	for i := range x {
		x[i] = float32(lap.Rand())
	}
	h := NewHistogram(8192, false)
	h.Observe(x)
	v := h.view(false)
	lo, hi := mseSearch(&v, 255, maxPairs)
	elo, ehi := mseSearch(&v, 255, 1<<40)
	idx := func(L, U float64) (int, int) {
		a, b := -1, -1
		for j := range v.n {
			if v.lo[j] == L && a < 0 {
				a = j
			}
			if v.hi[j] == U {
				b = j
			}
		}
		return a, b
	}
	a, b := idx(lo, hi)
	ea, eb := idx(elo, ehi)
	got, want := mseBrute(&v, a, b, lo, hi, 255), mseBrute(&v, ea, eb, elo, ehi, 255)
	if got > want*1.001 {
		t.Errorf("coarse-to-fine [%g, %g] error %g; exhaustive [%g, %g] error %g", lo, hi, got, elo, ehi, want)
	}
}

func TestScaleZeroPoint(t *testing.T) {
	tests := []struct {
		name       string
		min, max   float32
		qmin, qmax int32
		sym        bool
		scale      float64
		zp         int32
	}{
		{"uint8 asymmetric", -1, 3, 0, 255, false, 4.0 / 255, 64},                // round(0 + 1/(4/255)) = round(63.75)
		{"int8 asymmetric", -1, 3, -128, 127, false, 4.0 / 255, -64},             // round(-128 + 63.75)
		{"range widened to 0 (positive)", 1, 3, 0, 255, false, 3.0 / 255, 0},     // [0, 3]
		{"range widened to 0 (negative)", -3, -1, 0, 255, false, 3.0 / 255, 255}, // [-3, 0]
		{"all zero", 0, 0, 0, 255, false, 1, 0},
		{"all zero symmetric int8", 0, 0, -127, 127, true, 1, 0},
		{"all zero symmetric uint8", 0, 0, 0, 254, true, 1, 0}, // not the middle: onnxruntime's choice
		{"all zero uint16 symmetric", 0, 0, 0, 65535, true, 1, 0},
		{"all zero int16", 0, 0, -32768, 32767, false, 1, 0},
		{"all zero int8", 0, 0, -128, 127, false, 1, 0},
		{"below float32 tiny", 0, 1e-40, 0, 255, false, 1, 0},
		{"symmetric int8", -2, 1, -127, 127, true, 4.0 / 254, 0},
		{"symmetric int8 full", -2, 1, -128, 127, true, 4.0 / 255, 0}, // round(-0.5) = -0 (half to even)
		{"symmetric uint8 0..255", -2, 1, 0, 255, true, 4.0 / 255, 128},
		{"symmetric uint8 0..254", -2, 1, 0, 254, true, 4.0 / 254, 127},
		{"half to even down", -0.5, 254.5, 0, 255, false, 1, 0}, // round(0.5) = 0
		{"half to even up", -1.5, 253.5, 0, 255, false, 1, 2},   // round(1.5) = 2
		{"half to even 2.5", -2.5, 252.5, 0, 255, false, 1, 2},  // round(2.5) = 2
		{"int16", -1, 1, -32768, 32767, false, 2.0 / 65535, 0},  // round(-32768 + 32767.5) = round(-0.5) = 0
		{"uint16", -1, 1, 0, 65535, false, 2.0 / 65535, 32768},  // round(32767.5) = 32768
		{"int4 symmetric", -7, 7, -7, 7, true, 1, 0},
		{"uint16 symmetric", -1, 2, 0, 65535, true, 4.0 / 65535, 32768},      // round(32767.5)
		{"int16 symmetric full", -1, 2, -32768, 32767, true, 4.0 / 65535, 0}, // round(-0.5) = -0
		{"int16 symmetric", -1, 2, -32767, 32767, true, 4.0 / 65534, 0},
		{"uint4 asymmetric", -1, 2, 0, 15, false, 3.0 / 15, 5}, // round(1/(3/15)) = round(5)
		{"reduce range int8", -1, 1, -64, 64, true, 2.0 / 128, 0},
		{"reduce range uint8", -1, 3, 0, 127, false, 4.0 / 127, 32}, // round(31.75)
	}
	for _, tc := range tests {
		s, zp := ScaleZeroPoint(tc.min, tc.max, tc.qmin, tc.qmax, tc.sym)
		if s != float32(tc.scale) || zp != tc.zp {
			t.Errorf("%s: scale %g zp %d, want %g %d", tc.name, s, zp, float32(tc.scale), tc.zp)
		}
	}
	mustPanic(t, "qmin > 0", func() { ScaleZeroPoint(0, 1, 1, 255, false) })
	mustPanic(t, "qmax < 0", func() { ScaleZeroPoint(0, 1, -5, -1, false) })
	mustPanic(t, "qmin = qmax", func() { ScaleZeroPoint(0, 1, 0, 0, false) })
	mustPanic(t, "NaN", func() { ScaleZeroPoint(float32(math.NaN()), 1, 0, 255, false) })
	mustPanic(t, "Inf", func() { ScaleZeroPoint(0, float32(math.Inf(1)), 0, 255, false) })
}

func TestFlattenSpikes(t *testing.T) {
	got := flattenSpikes([]float64{5, 1, 1, 9, 2, 2, 0, 3})
	want := []float64{1, 1, 1, 2, 2, 2, 0, 3}
	if !slices.Equal(got, want) {
		t.Errorf("flattenSpikes = %v, want %v", got, want)
	}
}

// Entropy on spiky data, as a real network's first layers give it: a constant background
// (one repeated value) and the rectified background of each channel (a few repeated
// values) beside the spread values of the strokes. The spikes do not decide the range.
func TestEntropySpikes(t *testing.T) {
	r := rng(21)
	spread := uniforms(r, 200_000, 0, 2.82)
	// Asymmetric, both signs: the background at -0.4242 is the whole negative side, the
	// strokes the positive one. Folding them let the spike clip the strokes to 0.43.
	h := NewHistogram(DefaultBins, false)
	bg := make([]float32, 800_000)
	for i := range bg {
		bg[i] = -0.4242
	}
	h.Observe(bg)
	h.Observe(spread)
	if lo, hi := EntropyRange(h, DefaultQuantizedBins, false); lo > -0.42 || hi < 2.5 {
		t.Errorf("background and strokes: [%g, %g], want about [-0.4242, 2.82]", lo, hi)
	}
	// Rectified: 70% of the values at ten channel biases below 0.5, the rest up to 7.26.
	relu := NewHistogram(DefaultBins, false)
	spikes := make([]float32, 700_000)
	for i := range spikes {
		spikes[i] = 0.05 * float32(1+i%10)
	}
	relu.Observe(spikes)
	relu.Observe(uniforms(r, 300_000, 0, 7.26))
	if lo, hi := EntropyRange(relu, DefaultQuantizedBins, false); lo < 0 || lo > 0.01 || hi < 0.5*7.26 {
		t.Errorf("rectified with spikes: [%g, %g], want a threshold above half of 7.26", lo, hi)
	}
	// One-signed data gets twice the levels: 384 occupied bins (1.5 in bins of 2^-8) need
	// no search at 2x200 levels, where 200 a side would search and clip the 1.5.
	few := NewHistogram(512, false)
	few.Observe(uniforms(r, 10_000, 0, 1))
	few.Observe([]float32{1.5})
	if _, hi := EntropyRange(few, 200, false); hi != 1.5 {
		t.Errorf("one-signed, fewer occupied bins than 2x200 levels: max %g, want 1.5 (no search)", hi)
	}
}

package calibrate

import (
	"fmt"
	"math"
	"strings"
)

// Method is a way of choosing a tensor's range from its statistics.
type Method string

// The calibration methods.
const (
	// MinMax takes the observed minimum and maximum, or their moving averages.
	MinMax Method = "minmax"
	// Percentile cuts the tails of the histogram at a percentile.
	Percentile Method = "percentile"
	// Entropy picks the threshold whose quantization of the |x| histogram (each side's,
	// for asymmetric ranges) loses the least information (TensorRT's KL-divergence
	// calibration).
	Entropy Method = "entropy"
	// MSE picks the clipping range that minimises the expected quantization error.
	MSE Method = "mse"
)

// Methods lists the methods, in documentation order.
var Methods = []Method{MinMax, Percentile, Entropy, MSE}

// Values lists the method names, in documentation order (a config's method is one of
// them).
func (Method) Values() []string {
	out := make([]string, len(Methods))
	for i, m := range Methods {
		out[i] = string(m)
	}
	return out
}

// ParseMethod parses a method name, ignoring case and surrounding space ("MinMax" and
// "minmax" are the same method).
func ParseMethod(s string) (Method, error) {
	m := Method(strings.ToLower(strings.TrimSpace(s)))
	switch m {
	case MinMax, Percentile, Entropy, MSE:
		return m, nil
	}
	return "", fmt.Errorf("unknown calibration method %q (minmax, percentile, entropy or mse)", s)
}

// Defaults of the range methods.
const (
	// DefaultPercentile is onnxruntime's CalibPercentile default.
	DefaultPercentile = 99.999
	// DefaultQuantizedBins is the number of quantized levels of the entropy method
	// (TensorRT: 128, the positive half of int8).
	DefaultQuantizedBins = 128
	// DefaultBits is the integer width the mse method optimises for.
	DefaultBits = 8
)

// symmetricRange returns [-a, a] with a = max(|lo|, |hi|).
func symmetricRange(lo, hi float32) (float32, float32) {
	a := max32(abs32(lo), abs32(hi))
	return -a, a
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// clampRange converts [lo, hi] to float32 inside [mn, mx], keeping lo ≤ hi.
func clampRange(lo, hi float64, mn, mx float32) (float32, float32) {
	l := min32(max32(float32(lo), mn), mx)
	h := min32(max32(float32(hi), mn), mx)
	return l, max32(l, h)
}

// MinMaxRange is the minmax method: [min, max] of the values, or of the moving averages
// of the batch extremes when m has an averaging constant; symmetric gives ±max(|min|,
// |max|) of that range. An empty collector gives [0, 0].
func MinMaxRange(m *MinMaxCollector, symmetric bool) (min, max float32) {
	if m.Count() == 0 {
		return 0, 0
	}
	lo, hi := m.Min(), m.Max()
	if a, b, ok := m.Moving(); ok {
		lo, hi = a, max32(a, b)
	}
	if symmetric {
		return symmetricRange(lo, hi)
	}
	return lo, hi
}

// PercentileRange is the percentile method, p in [50, 100] (DefaultPercentile).
//
// Symmetric: t is the p-th percentile of |x| (h folded to |x| when it is signed), range
// [-t, t]. Asymmetric: min is the (100-p)-th percentile and max the p-th percentile of the
// signed histogram (h must be signed). Percentiles interpolate linearly inside the bin that
// crosses the rank, taking its values as uniform over the bin's interval clipped to the
// observed extremes, and never leave [min, max] of the values. An empty histogram gives
// [0, 0]; p outside [50, 100] panics.
func PercentileRange(h *Histogram, p float64, symmetric bool) (min, max float32) {
	if !(p >= 50 && p <= 100) {
		panic(fmt.Sprintf("calibrate: percentile %g outside [50, 100]", p))
	}
	if h.Count() == 0 {
		return 0, 0
	}
	if symmetric {
		a := h
		if !h.abs {
			a = h.Fold()
		}
		v := a.view(false)
		t := math.Min(v.quantile(p/100), v.dhi)
		return symmetricRange(float32(t), 0)
	}
	if h.abs {
		panic("calibrate: an asymmetric percentile needs a signed histogram")
	}
	v := h.view(false)
	return clampRange(v.quantile(1-p/100), v.quantile(p/100), h.min, h.max)
}

// EntropyRange is the entropy method (TensorRT's KL-divergence calibration, GTC 2017
// s7310, as NVIDIA's pytorch-quantization computes it) with quantizedBins levels a side
// (DefaultQuantizedBins):
//
// Let h[0..n) be |x| counts from bin 0 to the last non-empty bin, of width w. Bin 0 (the
// zeros and the values nearest them, a spike after ReLU) gets bin 1's count, so that the
// zeros, which every range represents exactly, do not decide the threshold. For every
// candidate i from levels to n:
//
//	P = h[0..i), with the outliers Σ_{j≥i} h[j] added to P[i-1]
//	Q: h[0..i) (without the outliers) merged into levels groups, bin j going to
//	   group ⌊j·levels/i⌋, then expanded back: each bin j with P[j] ≠ 0 gets its
//	   group's sum divided by the number of such bins in the group, the others 0
//	P and Q smoothed (see below), normalised, and KL(P‖Q) = Σ p_j ln(p_j/q_j).
//
// The i of least divergence (the largest on ties, as pytorch-quantization) gives
// t = min((i+0.5)·w, max|x|); when n ≤ levels there is nothing to search and t = max|x|.
// Smoothing is onnxruntime's smooth_distribution on counts with ε = 1e-4: zero bins get ε
// and the non-zero ones lose ε·zeros/nonzeros, keeping the total; where that would take a
// non-zero bin below half its value (onnxruntime asserts there) ε is reduced to avoid it.
// A distribution with no non-zero bin has divergence +Inf.
//
// Symmetric (or an |x| histogram, which has no sides): the search runs on the |x|
// histogram (h folded when signed) and gives [-t, t], clamped to the observed extremes
// when not symmetric. Asymmetric on a signed histogram, each side is searched on its own
// |x| counts, which is what an asymmetric range can use (folding them would let the
// spike of one side, such as an image's background value, clip the other): a side-less
// tensor (min ≥ 0 or max ≤ 0) gets 2·quantizedBins levels, as an unsigned 8-bit range
// spends all 256 levels on it (TensorRT's unsigned case); a tensor of both signs gets
// quantizedBins levels a side. An empty histogram gives [0, 0].
func EntropyRange(h *Histogram, quantizedBins int, symmetric bool) (min, max float32) {
	if quantizedBins < 2 {
		panic(fmt.Sprintf("calibrate: %d quantized bins (want at least 2)", quantizedBins))
	}
	if h.Count() == 0 {
		return 0, 0
	}
	if symmetric || h.abs {
		a := h
		if !h.abs {
			a = h.Fold()
		}
		v := a.view(true)
		t := entropyThreshold(v.n, v.w, v.dhi, quantizedBins)
		if symmetric {
			return symmetricRange(float32(t), 0)
		}
		return clampRange(-t, t, h.min, h.max)
	}
	if h.farFromZero() {
		return h.min, h.max
	}
	pos, neg := h.sides()
	w := h.Width()
	switch {
	case h.min >= 0:
		return h.min, float32(entropyThreshold(pos, w, float64(h.max), 2*quantizedBins))
	case h.max <= 0:
		return float32(-entropyThreshold(neg, w, -float64(h.min), 2*quantizedBins)), h.max
	}
	tn := entropyThreshold(neg, w, -float64(h.min), quantizedBins)
	tp := entropyThreshold(pos, w, float64(h.max), quantizedBins)
	return float32(-tn), float32(tp)
}

// flattenSpikes returns a copy of the counts n in which every bin but the last that holds
// more than both its neighbours (bin 0: more than bin 1) is lowered to the larger of them. A spike is one value repeated: the zeros after a ReLU (TensorRT's zero-bin
// rule, bin 0 set to bin 1, is the case at the end), a constant background through the
// first layers (relu(bias) of each channel). Any range that covers it represents it as
// well as the values around it, but KL(P‖Q) rewards keeping it apart from its
// neighbours, so that with the spikes left in, the search clips the spread values to the
// spikes (the MNIST CNN's first ReLU: 0.55 of 7.3). A smooth distribution's local
// maxima are little changed. The last bin holds the largest values: they stay, as the
// outliers that clipping would move.
func flattenSpikes(n []float64) []float64 {
	out := append([]float64(nil), n...)
	for j, c := range n {
		nb := 0.0
		if j > 0 {
			nb = n[j-1]
		}
		if j+1 < len(n) {
			nb = max(nb, n[j+1])
		}
		if c > nb && j+1 < len(n) {
			out[j] = nb
		}
	}
	return out
}

// entropyThreshold is the threshold of EntropyRange's search on the |x| counts n (bins of
// width w from 0; dhi the largest |x|) with levels quantized levels.
func entropyThreshold(n []float64, w, dhi float64, levels int) float64 {
	last := len(n) - 1
	for last >= 0 && n[last] == 0 {
		last--
	}
	n = n[:last+1]
	if len(n) <= levels {
		return dhi
	}
	kl := entropyDivergences(flattenSpikes(n), levels)
	best := 0
	for j, d := range kl {
		if d <= kl[best] {
			best = j
		}
	}
	return math.Min((float64(levels+best)+0.5)*w, dhi)
}

// entropyDivergences returns KL(P_i‖Q_i) for i = levels … len(h) (element i-levels), as
// EntropyRange defines them.
func entropyDivergences(h []float64, levels int) []float64 {
	n := len(h)
	if n < levels {
		return nil
	}
	suffix := make([]float64, n+1)
	for j := n - 1; j >= 0; j-- {
		suffix[j] = suffix[j+1] + h[j]
	}
	out := make([]float64, 0, n-levels+1)
	p := make([]float64, n)
	q := make([]float64, n)
	for i := levels; i <= n; i++ {
		copy(p, h[:i])
		p[i-1] += suffix[i]
		// Group g holds bins [⌈g·i/levels⌉, ⌈(g+1)·i/levels⌉), i.e. ⌊j·levels/i⌋ = g.
		start := 0
		for g := range levels {
			end := ((g+1)*i + levels - 1) / levels
			sum, nz := 0.0, 0
			for j := start; j < end; j++ {
				sum += h[j]
				if p[j] != 0 {
					nz++
				}
			}
			for j := start; j < end; j++ {
				if p[j] != 0 {
					q[j] = sum / float64(nz)
				} else {
					q[j] = 0
				}
			}
			start = end
		}
		out = append(out, klDivergence(p[:i], q[:i]))
	}
	return out
}

// smoothEpsilon is smooth_distribution's ε (onnxruntime, MXNet).
const smoothEpsilon = 1e-4

// smooth replaces zeros of the counts p by ε and takes ε·zeros/nonzeros from each
// non-zero count (ε reduced so no count falls below half its value). It reports false
// when every count is zero.
func smooth(p []float64) bool {
	zeros := 0
	minNZ := math.Inf(1)
	for _, v := range p {
		if v == 0 {
			zeros++
		} else if v < minNZ {
			minNZ = v
		}
	}
	nnz := len(p) - zeros
	if nnz == 0 {
		return false
	}
	if zeros == 0 {
		return true
	}
	eps := smoothEpsilon
	ratio := float64(zeros) / float64(nnz)
	if eps*ratio > minNZ/2 {
		eps = minNZ / 2 / ratio
	}
	take := eps * ratio
	for j, v := range p {
		if v == 0 {
			p[j] = eps
		} else {
			p[j] = v - take
		}
	}
	return true
}

// klDivergence smooths p and q in place, normalises them and returns Σ p ln(p/q).
func klDivergence(p, q []float64) float64 {
	if !smooth(p) || !smooth(q) {
		return math.Inf(1)
	}
	sp, sq := 0.0, 0.0
	for j := range p {
		sp += p[j]
		sq += q[j]
	}
	// Σ (p/sp)·ln((p/sp)/(q/sq)) = (1/sp)·Σ p·ln(p/q) + ln(sq/sp), as Σ p/sp = 1.
	kl := 0.0
	for j := range p {
		kl += p[j] * math.Log(p[j]/q[j])
	}
	return kl/sp + math.Log(sq/sp)
}

// MSERange is the mse method: the clipping range that minimises the expected squared
// error of quantizing the histogram's values to bits-bit integers (DefaultBits), symmetric
// int (2^bits-2 steps: int8 [-127, 127]) or asymmetric uint (2^bits-1 steps: uint8).
//
// Each bin's values are taken as uniform over its interval (clipped to the observed
// extremes), centre c, length l. For a range [L, U] widened to contain 0 (as the
// quantizer does), step s = (max(U,0) - min(L,0))/steps:
//
//	E(L, U) = Σ_{bins above U} n·((c-U)² + l²/12) + Σ_{bins below L} n·((L-c)² + l²/12)
//	        + (values inside - values exactly 0)·s²/12
//
// (exact zeros quantize without error). Symmetric: on the |x| histogram (h folded when
// signed), U = t ranges over every bin edge below max|x| and max|x| itself, L = -t.
// Asymmetric (h must be signed): L ranges over min and the bin edges in (min, 0], U over
// the bin edges in [0, max) and max, and every pair is searched (up to 2^20 pairs, always
// the case with 2048 bins; beyond, a pass over 1024 evenly spaced candidates a side is
// refined over every candidate near the best pair). Ties go to the wider range. An empty histogram gives
// [0, 0]; bits outside [2, 16] panics.
func MSERange(h *Histogram, bits int, symmetric bool) (min, max float32) {
	if bits < 2 || bits > 16 {
		panic(fmt.Sprintf("calibrate: mse for %d bits (want 2 to 16)", bits))
	}
	if h.Count() == 0 {
		return 0, 0
	}
	if symmetric {
		a := h
		if !h.abs {
			a = h.Fold()
		}
		v := a.view(true)
		t := mseSymmetric(&v, float64(int(1)<<bits-2))
		return symmetricRange(float32(t), 0)
	}
	if h.abs {
		panic("calibrate: an asymmetric mse range needs a signed histogram")
	}
	v := h.view(false)
	lo, hi := mseAsymmetric(&v, float64(int(1)<<bits-1))
	return clampRange(lo, hi, h.min, h.max)
}

// binMoments returns, per bin, n, n·c and n·(c² + l²/12).
func binMoments(v *view) (m0, m1, m2 []float64) {
	m := len(v.n)
	m0, m1, m2 = make([]float64, m), make([]float64, m), make([]float64, m)
	for j, n := range v.n {
		c := (v.lo[j] + v.hi[j]) / 2
		l := v.hi[j] - v.lo[j]
		m0[j], m1[j], m2[j] = n, n*c, n*(c*c+l*l/12)
	}
	return m0, m1, m2
}

// mseSymmetric searches t over the |x| view (from bin 0), steps integer steps over [-t, t].
func mseSymmetric(v *view, steps float64) float64 {
	m := len(v.n)
	if m == 0 || v.dhi == 0 {
		return v.dhi
	}
	m0, m1, m2 := binMoments(v)
	// Suffix sums: S[j] over bins j…m-1.
	s0, s1, s2 := make([]float64, m+1), make([]float64, m+1), make([]float64, m+1)
	for j := m - 1; j >= 0; j-- {
		s0[j], s1[j], s2[j] = s0[j+1]+m0[j], s1[j+1]+m1[j], s2[j+1]+m2[j]
	}
	errAt := func(t float64, above int) float64 {
		clip := math.Max(0, s2[above]-2*t*s1[above]+t*t*s0[above])
		s := 2 * t / steps
		return clip + (v.total-s0[above]-v.zeros)*s*s/12
	}
	best, bestErr := v.dhi, errAt(v.dhi, m)
	for j := m - 2; j >= 0; j-- { // widest first: ties keep the wider range
		t := float64(v.first+int64(j)+1) * v.w // upper edge of bin j
		if t <= 0 || t >= v.dhi {
			continue
		}
		if e := errAt(t, j+1); e < bestErr {
			best, bestErr = t, e
		}
	}
	return best
}

// maxPairs caps the asymmetric search's exhaustive pass: beyond it both sides are thinned
// to evenly spaced candidates, then the neighbourhood of the best pair is searched fully.
const maxPairs = 1 << 20

// thin keeps at most max of the indices, evenly spaced, the first and last kept.
func thin(idx []int, max int) []int {
	if len(idx) <= max {
		return idx
	}
	out := make([]int, max)
	for i := range max {
		out[i] = idx[i*(len(idx)-1)/(max-1)]
	}
	return out
}

// mseAsymmetric searches [L, U] over the signed view, steps integer steps.
func mseAsymmetric(v *view, steps float64) (lo, hi float64) { return mseSearch(v, steps, maxPairs) }

// mseSearch is mseAsymmetric searching every pair up to limit pairs.
func mseSearch(v *view, steps float64, limit int) (lo, hi float64) {
	m := len(v.n)
	if m == 0 {
		return 0, 0
	}
	m0, m1, m2 := binMoments(v)
	// Prefix sums P[j] over bins 0…j-1; suffix sums S[j] over bins j…m-1.
	p0, p1, p2 := make([]float64, m+1), make([]float64, m+1), make([]float64, m+1)
	for j := range m {
		p0[j+1], p1[j+1], p2[j+1] = p0[j]+m0[j], p1[j]+m1[j], p2[j]+m2[j]
	}
	s0, s1, s2 := make([]float64, m+1), make([]float64, m+1), make([]float64, m+1)
	for j := m - 1; j >= 0; j-- {
		s0[j], s1[j], s2[j] = s0[j+1]+m0[j], s1[j+1]+m1[j], s2[j+1]+m2[j]
	}
	// L candidates: lower ends of bins j (j = 0 is min itself) that are ≤ 0; U: upper
	// ends of bins j (j = m-1 is max) that are ≥ 0. Widest first.
	var ls, us []int
	for j := range m {
		if v.lo[j] <= 0 {
			ls = append(ls, j)
		}
	}
	for j := m - 1; j >= 0; j-- {
		if v.hi[j] >= 0 {
			us = append(us, j)
		}
	}
	if len(ls) == 0 {
		ls = []int{0}
	}
	if len(us) == 0 {
		us = []int{m - 1}
	}
	// errs evaluates every pair of ls × us and returns the best.
	best := func(ls, us []int) (jl, ju int, bestErr float64) {
		clipHigh := make([]float64, len(us))
		uPos := make([]float64, len(us))
		above := make([]float64, len(us))
		for b, j := range us {
			U := v.hi[j]
			clipHigh[b] = math.Max(0, s2[j+1]-2*U*s1[j+1]+U*U*s0[j+1])
			uPos[b] = math.Max(U, 0)
			above[b] = s0[j+1]
		}
		bestErr = math.Inf(1)
		for _, l := range ls {
			L := v.lo[l]
			clipLow := math.Max(0, L*L*p0[l]-2*L*p1[l]+p2[l])
			lNeg := math.Min(L, 0)
			base := v.total - p0[l]
			if L <= 0 {
				base -= v.zeros // exact zeros are inside and quantize exactly
			}
			for b, u := range us {
				if u < l {
					continue
				}
				s := (uPos[b] - lNeg) / steps
				e := clipLow + clipHigh[b] + (base-above[b])*s*s/12
				if e < bestErr {
					bestErr, jl, ju = e, l, u
				}
			}
		}
		return jl, ju, bestErr
	}
	if len(ls)*len(us) <= limit {
		jl, ju, _ := best(ls, us)
		return v.lo[jl], v.hi[ju]
	}
	// Coarse pass on evenly thinned candidates, then every candidate within one coarse
	// step of the best pair.
	side := max(2, int(math.Sqrt(float64(limit))))
	tl, tu := thin(ls, side), thin(us, side)
	jl, ju, _ := best(tl, tu)
	near := func(all []int, j, step int) []int {
		var out []int
		for _, c := range all {
			if c >= j-step && c <= j+step {
				out = append(out, c)
			}
		}
		return out
	}
	stepL := (len(ls) + side - 1) / side
	stepU := (len(us) + side - 1) / side
	jl, ju, _ = best(near(ls, jl, stepL), near(us, ju, stepU))
	return v.lo[jl], v.hi[ju]
}

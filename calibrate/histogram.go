package calibrate

import (
	"fmt"
	"math"
	"math/bits"
	"sync"
)

// Histogram is a streaming histogram of fixed-width bins whose range grows as batches
// arrive without ever splitting a count.
//
// The bin grid. All histograms share one family of grids anchored at 0: the bin width is
// w = 2^k for an integer k, and bins are laid out sign-magnitude, so that |x| folds
// exactly:
//
//	bin a ≥ 0 holds [a·w, (a+1)·w)   (x ≥ 0: a = ⌊x/w⌋)
//	bin a < 0 holds (a·w, (a+1)·w]   (x < 0: a = -⌊-x/w⌋ - 1)
//
// so negative bin a holds exactly the x whose |x| is in |x| bin -a-1.
//
// Widening from w to w·2^d maps bin a to bin a>>d (arithmetic shift, floor division):
// every old bin lies inside exactly one new bin, so counts move whole. The histogram keeps
// a window of n consecutive bins (n = NewHistogram's bins) starting at absolute index off;
// when a batch's values fall outside, k grows to the smallest value, not below the current
// one, at which every value seen fits in n bins, and the window is re-placed (centred on
// the data; an |x| histogram's window always starts at 0). Because k only depends on the
// extremes ever seen, a histogram fed two streams one after the other, and two histograms
// each fed one stream and merged, end up with the same width and the same counts in every
// bin.
//
// After the first batch the data spans more than n/2 bins (k is the smallest that fits),
// so the resolution is between span/n and 2·span/n. A lower limit on k keeps bins no
// finer than about 2^-24·max|x|/n (float32 resolution), which only matters when every
// value is the same.
//
// An |x| histogram (abs) bins |x| on bins [a·w, (a+1)·w), a ≥ 0, window from 0; it is what
// symmetric methods and the entropy method use (TensorRT's entropy calibration works on
// |x|). A signed histogram's Fold gives the |x| histogram of the same values exactly.
type Histogram struct {
	abs    bool
	nbins  int
	k      int     // bin width 2^k
	off    int64   // absolute bin index of counts[0]
	counts []int64 // nil until the first finite value

	total, zeros, bad int64
	min, max          float32 // extremes of the finite values (signed, whatever abs)
	amin              float32 // smallest |x| (abs histograms)
}

const (
	// DefaultBins is the default number of histogram bins, as onnxruntime's percentile
	// calibrator and TensorRT's entropy calibration use.
	DefaultBins = 2048
	minBins     = 16
	maxBins     = 1 << 24
	kMin        = -160 // the finest grid: below float32's smallest subnormal, 2^-149
)

// NewHistogram returns an empty histogram of bins bins (16 to 2^24) over x, or over |x|
// when abs is set. Other bin counts panic.
func NewHistogram(bins int, abs bool) *Histogram {
	if bins < minBins || bins > maxBins {
		panic(fmt.Sprintf("calibrate: histogram of %d bins (want %d to %d)", bins, minBins, maxBins))
	}
	return &Histogram{abs: abs, nbins: bins, min: float32(math.Inf(1)), max: float32(math.Inf(-1)), amin: float32(math.Inf(1))}
}

// index is the absolute bin of v at width 2^k on the sign-magnitude grid.
func index(v float64, k int) int64 {
	f := math.Ldexp(v, -k)
	if f >= 0 {
		return int64(f)
	}
	return -int64(-f) - 1
}

// kFloor is the finest grid allowed for data of largest magnitude maxabs.
func (h *Histogram) kFloor(maxabs float64) int {
	if maxabs == 0 {
		return kMin
	}
	_, e := math.Frexp(maxabs)
	return max(kMin, e-24-bits.Len(uint(h.nbins)))
}

// fits reports whether values in [lo, hi] fit in the window at width 2^k.
func (h *Histogram) fits(lo, hi float64, k int) bool {
	fh := math.Ldexp(hi, -k)
	if h.abs {
		return fh < float64(h.nbins)
	}
	if fh-math.Ldexp(lo, -k) > 2*float64(h.nbins)+2 {
		return false
	}
	return index(hi, k)-index(lo, k) < int64(h.nbins)
}

// need is the smallest k, not below kFloor, at which [lo, hi] fits.
func (h *Histogram) need(lo, hi float64) int {
	if h.abs {
		lo = 0
	}
	k := h.kFloor(math.Max(math.Abs(lo), math.Abs(hi)))
	if span := hi - lo; span > 0 {
		// span/n = f·2^e with f in [1/2, 1): at k = e-2 the span covers ≥ 2n bins.
		_, e := math.Frexp(span / float64(h.nbins))
		k = max(k, e-1)
	}
	for !h.fits(lo, hi, k) {
		k++
	}
	return k
}

// place is the window's first bin for data [lo, hi] at width 2^k.
func (h *Histogram) place(lo, hi float64, k int) int64 {
	if h.abs {
		return 0
	}
	ilo, ihi := index(lo, k), index(hi, k)
	return ilo - (int64(h.nbins)-(ihi-ilo+1))/2
}

// domain is the range of the binned quantity seen so far: [min, max], or [min|x|, max|x|].
func (h *Histogram) domain() (lo, hi float64) {
	if h.abs {
		return float64(h.amin), h.maxAbs()
	}
	return float64(h.min), float64(h.max)
}

func (h *Histogram) maxAbs() float64 {
	return math.Max(math.Abs(float64(h.min)), math.Abs(float64(h.max)))
}

// cover grows the window so that the domain [lo, hi] fits too.
func (h *Histogram) cover(lo, hi float64) {
	if h.counts == nil {
		k := h.need(lo, hi)
		h.k, h.off = k, h.place(lo, hi, k)
		h.counts = make([]int64, h.nbins)
		return
	}
	dlo, dhi := h.domain()
	glo, ghi := math.Min(dlo, lo), math.Max(dhi, hi)
	k := max(h.k, h.need(glo, ghi))
	if k == h.k {
		if h.abs {
			return
		}
		if ilo, ihi := index(glo, k), index(ghi, k); ilo >= h.off && ihi < h.off+int64(h.nbins) {
			return
		}
	}
	h.rebin(k, h.place(glo, ghi, k))
}

// rebin moves every count to the window of nbins bins at width 2^k from bin off (k ≥ h.k).
func (h *Histogram) rebin(k int, off int64) {
	if k == h.k && off == h.off {
		return
	}
	d := uint(k - h.k)
	nc := make([]int64, h.nbins)
	for j, c := range h.counts {
		if c != 0 {
			nc[((h.off+int64(j))>>d)-off] += c
		}
	}
	h.counts, h.k, h.off = nc, k, off
}

// Observe folds the batch x.
func (h *Histogram) Observe(x []float32) { h.observe(x, scan(x)) }

// observe folds x, whose extremes and counts b holds (scan): the window first grows to
// b's extremes, then x is binned.
func (h *Histogram) observe(x []float32, b batchStats) {
	h.account(b)
	if b.n > 0 {
		h.bin(x, b.bad == 0)
	}
}

// account adds the batch of statistics b: counts, extremes, and the window grown to fit
// them.
func (h *Histogram) account(b batchStats) {
	h.bad += b.bad
	if b.n == 0 {
		return
	}
	if h.abs {
		h.cover(0, math.Max(math.Abs(float64(b.min)), math.Abs(float64(b.max))))
	} else {
		h.cover(float64(b.min), float64(b.max))
	}
	h.min, h.max = min32(h.min, b.min), max32(h.max, b.max)
	h.total += b.n
}

// bin adds x's finite values (every one inside the window) to the counts, the zeros and
// amin; allFinite says that x has no NaN or Inf.
func (h *Histogram) bin(x []float32, allFinite bool) {
	inv := math.Ldexp(1, -h.k) // exact: v·inv = v/w with no rounding
	if allFinite && len(x) >= splitMin {
		h.zeros += h.binSplit(x, inv)
		return
	}
	c := h.counts
	var zeros int64
	if h.abs {
		amin := h.amin
		for _, v := range x {
			if !finite(v) {
				continue
			}
			a := abs32(v)
			if a < amin {
				amin = a
			}
			zeros += isZero(v)
			c[int64(float64(a)*inv)]++
		}
		h.amin = amin
	} else {
		off := h.off
		for _, v := range x {
			if !finite(v) {
				continue
			}
			// ⌊f⌋ for f ≥ 0, -⌊-f⌋-1 for f < 0: truncation toward 0, less one when the
			// sign bit is set; + 0 turns -0 into +0 (bin 0). No branch: signs are random.
			f := float64(v)*inv + 0
			c[int64(f)+int64(math.Float64bits(f))>>63-off]++
			zeros += isZero(v)
		}
	}
	h.zeros += zeros
}

// splitMin is the batch size from which binSplit pays for clearing and adding its four
// partial histograms (a variable for the tests).
var splitMin = 1 << 13

// splitPool holds binSplit's partial histograms.
var splitPool sync.Pool

// binSplit counts x (every value finite, inside the window) into four partial
// histograms of 32-bit counts, value i into partial i mod 4, then adds them to the
// counts. Activations repeat bins back to back (the zeros after a ReLU), and with one
// array each increment would wait for the previous one to the same bin; four arrays cut
// that chain to a quarter. It returns the number of ±0 values; for an |x| histogram it
// also lowers amin to the smallest |x|.
func (h *Histogram) binSplit(x []float32, inv float64) (zeros int64) {
	n := h.nbins
	p, _ := splitPool.Get().(*[]uint32)
	if p == nil || len(*p) < 4*n {
		buf := make([]uint32, 4*n)
		p = &buf
	}
	part := (*p)[:4*n]
	defer splitPool.Put(p)
	c0, c1, c2, c3 := part[:n:n], part[n:2*n:2*n], part[2*n:3*n:3*n], part[3*n:4*n:4*n]
	amin := h.amin
	// Chunks of at most 2^32-1 values per partial bin keep the 32-bit counts exact.
	for len(x) > 0 {
		chunk := x[:min(len(x), 1<<30)]
		x = x[len(chunk):]
		clear(part)
		// The whole blocks of 8 in AVX2 where the machine has it, the rest in Go.
		i, z0 := binBlocks(chunk, h.abs, h.k, h.off, part, n, &amin)
		var z1 int64
		if h.abs {
			am0, am1 := amin, amin
			for ; i+4 <= len(chunk); i += 4 {
				a0, a1, a2, a3 := abs32(chunk[i]), abs32(chunk[i+1]), abs32(chunk[i+2]), abs32(chunk[i+3])
				am0 = min32(min32(am0, a0), a1)
				am1 = min32(min32(am1, a2), a3)
				z0 += isZero(a0) + isZero(a1)
				z1 += isZero(a2) + isZero(a3)
				c0[int64(float64(a0)*inv)]++
				c1[int64(float64(a1)*inv)]++
				c2[int64(float64(a2)*inv)]++
				c3[int64(float64(a3)*inv)]++
			}
			amin = min32(am0, am1)
			for _, v := range chunk[i:] {
				a := abs32(v)
				amin = min32(amin, a)
				z0 += isZero(a)
				c0[int64(float64(a)*inv)]++
			}
		} else {
			off := h.off
			bin := func(v float32) int64 {
				f := float64(v)*inv + 0
				return int64(f) + int64(math.Float64bits(f))>>63 - off
			}
			for ; i+4 <= len(chunk); i += 4 {
				v0, v1, v2, v3 := chunk[i], chunk[i+1], chunk[i+2], chunk[i+3]
				z0 += isZero(v0) + isZero(v1)
				z1 += isZero(v2) + isZero(v3)
				c0[bin(v0)]++
				c1[bin(v1)]++
				c2[bin(v2)]++
				c3[bin(v3)]++
			}
			for _, v := range chunk[i:] {
				z0 += isZero(v)
				c0[bin(v)]++
			}
		}
		zeros += z0 + z1
		c := h.counts[:n]
		for j := range c {
			c[j] += int64(c0[j]) + int64(c1[j]) + int64(c2[j]) + int64(c3[j])
		}
	}
	if h.abs {
		h.amin = amin
	}
	return zeros
}

// isZero is 1 for ±0 and 0 otherwise, without a branch (zeros come at random in
// rectified activations): the sign-less bits shifted left are 0 only for ±0, and 0-1
// wraps to set the top bit.
func isZero(v float32) int64 { return int64((uint64(math.Float32bits(v)<<1) - 1) >> 63) }

// Merge folds in o, a *Histogram with the same number of bins and kind (signed or |x|).
// The result has exactly the counts a single histogram fed both streams would have.
func (h *Histogram) Merge(other Collector) {
	o, ok := other.(*Histogram)
	if !ok {
		panic(fmt.Sprintf("calibrate: cannot merge %T into *Histogram", other))
	}
	if o == h {
		panic("calibrate: cannot merge a histogram into itself")
	}
	if o.nbins != h.nbins || o.abs != h.abs {
		panic(fmt.Sprintf("calibrate: cannot merge a histogram of %d bins (abs %v) into one of %d bins (abs %v)", o.nbins, o.abs, h.nbins, h.abs))
	}
	h.bad += o.bad
	if o.counts == nil {
		return
	}
	if h.counts == nil {
		bad := h.bad
		*h = *o.clone()
		h.bad = bad
		return
	}
	hlo, hhi := h.domain()
	olo, ohi := o.domain()
	glo, ghi := math.Min(hlo, olo), math.Max(hhi, ohi)
	k := max(h.k, o.k, h.need(glo, ghi))
	off := h.place(glo, ghi, k)
	h.rebin(k, off)
	d := uint(k - o.k)
	for j, c := range o.counts {
		if c != 0 {
			h.counts[((o.off+int64(j))>>d)-off] += c
		}
	}
	h.total += o.total
	h.zeros += o.zeros
	h.min, h.max = min32(h.min, o.min), max32(h.max, o.max)
	h.amin = min32(h.amin, o.amin)
}

// clone is a deep copy.
func (h *Histogram) clone() *Histogram {
	c := *h
	if h.counts != nil {
		c.counts = append([]int64(nil), h.counts...)
	}
	return &c
}

// Fold returns the |x| histogram of the values h holds (a copy when h is one already).
// Bin a of h goes whole to |x| bin a (a ≥ 0) or -a-1 (a < 0), then to a coarser width if
// max|x| does not fit the window from 0 at h's width, so the counts are exact. The
// smallest |x| is known only when the values do not change sign; otherwise it is taken as 0.
func (h *Histogram) Fold() *Histogram {
	if h.abs {
		return h.clone()
	}
	f := NewHistogram(h.nbins, true)
	f.bad, f.total, f.zeros, f.min, f.max = h.bad, h.total, h.zeros, h.min, h.max
	if h.counts == nil {
		return f
	}
	switch {
	case h.min >= 0:
		f.amin = h.min
	case h.max <= 0:
		f.amin = -h.max
	default:
		f.amin = 0
	}
	f.k = max(h.k, f.need(0, h.maxAbs()))
	f.counts = make([]int64, h.nbins)
	d := uint(f.k - h.k)
	for j, c := range h.counts {
		if c != 0 {
			a := h.off + int64(j)
			if a < 0 {
				a = -a - 1
			}
			f.counts[a>>d] += c
		}
	}
	return f
}

// maxSideBins bounds the |x| grid sides builds from 0.
const maxSideBins = 1 << 16

// farFromZero reports whether h's values lie more than maxSideBins bins from 0 (a
// constant tensor, whose window is one value wide, or values in a band narrow against
// their distance from 0). Levels counted from 0 then hold the whole window in a few of
// them, so there is nothing for a threshold search to cut: its range is the extremes.
func (h *Histogram) farFromZero() bool {
	if h.min == h.max {
		return true
	}
	first, last := h.occupied()
	if first > last {
		return false
	}
	near := min(abs64(h.off+int64(first)), abs64(h.off+int64(last)))
	if h.off+int64(first) < 0 && h.off+int64(last) >= 0 {
		near = 0
	}
	return near > maxSideBins
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// sides returns the |x| counts of a signed histogram's non-negative and negative values,
// each from |x| bin 0 at h's width: positive bin a is |x| bin a, negative bin a is |x|
// bin -a-1 (the sign-magnitude grid makes this exact).
func (h *Histogram) sides() (pos, neg []float64) {
	for j, c := range h.counts {
		if c == 0 {
			continue
		}
		a := h.off + int64(j)
		s, i := &pos, a
		if a < 0 {
			s, i = &neg, -a-1
		}
		for int64(len(*s)) <= i {
			*s = append(*s, 0)
		}
		(*s)[i] += float64(c)
	}
	return pos, neg
}

// Abs reports whether h bins |x|.
func (h *Histogram) Abs() bool { return h.abs }

// Count is the number of finite values folded.
func (h *Histogram) Count() int64 { return h.total }

// NonFinite is the number of NaN and ±Inf values left out.
func (h *Histogram) NonFinite() int64 { return h.bad }

// Zeros is the number of values exactly 0 (they are also in their bin).
func (h *Histogram) Zeros() int64 { return h.zeros }

// Min is the smallest finite value (signed, also for an |x| histogram; 0 before any).
func (h *Histogram) Min() float32 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest finite value (0 before any).
func (h *Histogram) Max() float32 {
	if h.total == 0 {
		return 0
	}
	return h.max
}

// Width is the bin width 2^k (0 before any finite value).
func (h *Histogram) Width() float64 {
	if h.counts == nil {
		return 0
	}
	return math.Ldexp(1, h.k)
}

// NumBins is the window's number of bins.
func (h *Histogram) NumBins() int { return h.nbins }

// Bins returns the occupied bins, from the first to the last with a count: the lower edge
// of the first (for negative bins, the edge nearer -∞), the width, and a copy of the
// counts. Bin i covers [lo+i·width, lo+(i+1)·width) (half-open the other way for negative
// values).
func (h *Histogram) Bins() (lo, width float64, counts []int64) {
	first, last := h.occupied()
	if first > last {
		return 0, h.Width(), nil
	}
	w := h.Width()
	return float64(h.off+int64(first)) * w, w, append([]int64(nil), h.counts[first:last+1]...)
}

// occupied is the window positions of the first and last bins with a count (first > last
// when there is none).
func (h *Histogram) occupied() (first, last int) {
	first, last = 0, -1
	for j, c := range h.counts {
		if c != 0 {
			first = j
			break
		}
	}
	for j := len(h.counts) - 1; j >= 0; j-- {
		if h.counts[j] != 0 {
			last = j
			break
		}
	}
	return first, last
}

// MemoryBytes approximates the histogram's size: its bins and a fixed header.
func (h *Histogram) MemoryBytes() int { return 8*h.nbins + 96 }

// view is an occupied histogram prepared for the range methods: counts as float64 and
// each bin's interval clamped to the values seen, over which its values are taken as
// uniformly spread.
type view struct {
	w        float64
	first    int64 // absolute index of n[0]
	n        []float64
	lo, hi   []float64
	total    float64
	zeros    float64
	dlo, dhi float64 // extremes of the binned quantity
}

// view returns h's occupied bins; fromZero extends an |x| view down to bin 0.
func (h *Histogram) view(fromZero bool) view {
	v := view{total: float64(h.total), zeros: float64(h.zeros), w: h.Width()}
	v.dlo, v.dhi = h.domain()
	first, last := h.occupied()
	if first > last {
		return v
	}
	if fromZero && h.abs {
		first = 0
	}
	v.first = h.off + int64(first)
	m := last - first + 1
	v.n = make([]float64, m)
	v.lo = make([]float64, m)
	v.hi = make([]float64, m)
	for j := range m {
		v.n[j] = float64(h.counts[first+j])
		a := float64(v.first+int64(j)) * v.w
		v.lo[j] = math.Max(a, v.dlo)
		v.hi[j] = math.Min(a+v.w, v.dhi)
		if v.hi[j] < v.lo[j] { // an empty bin outside the values
			v.hi[j] = v.lo[j]
		}
	}
	return v
}

// quantile is the value below which a fraction q of the counts lies, interpolated
// linearly inside the bin that crosses q·total (its values taken uniform over the bin's
// clamped interval, except that the exact zeros of bin 0 sit at 0). q = 0 gives the
// smallest value, q = 1 the largest.
func (v *view) quantile(q float64) float64 {
	if v.total == 0 {
		return 0
	}
	c := q * v.total
	cum := 0.0
	for j, n := range v.n {
		if n == 0 {
			continue
		}
		if cum+n >= c {
			r := c - cum
			if v.first+int64(j) == 0 && v.zeros > 0 {
				// Bin 0 holds the exact zeros as a point mass at 0, the rest uniform.
				if r <= v.zeros || n == v.zeros {
					return math.Max(0, v.lo[j])
				}
				r, n = r-v.zeros, n-v.zeros
			}
			f := math.Max(0, r/n)
			return v.lo[j] + f*(v.hi[j]-v.lo[j])
		}
		cum += n
	}
	return v.dhi
}

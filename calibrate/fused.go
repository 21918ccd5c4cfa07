package calibrate

import (
	"math"
	"runtime"
	"sync"
)

// The fused pass: one read of a batch that both scans it (extremes, counts and moments,
// exactly as scan does) and bins it into the histogram's current window, instead of a
// scan followed by a second pass that bins.
//
// The window does not move during the pass. Values are binned four at a time into
// partial histograms at the current width; finite values outside the window are set
// aside. After the pass the partial counts are added to the histogram at the old width,
// the window grows as Observe grows it (from the batch's extremes, now known), which
// moves those counts whole to their bins at the new width, and the values set aside are
// binned at the new width. A count binned at width w and moved to width w·2^d lands in
// the bin the value has at the new width (⌊⌊x/w⌋/2^d⌋ = ⌊x/(w·2^d)⌋, and the same on the
// negative side of the sign-magnitude grid), so the result is the histogram Observe's
// two passes give, bin for bin. When more than a quarter of the batch would be set aside
// (the range jumped), the pass stops at that group of four; the rest of the batch is
// scanned, then binned after the growth, as observe does.

// cvtIndefinite is true where float64→int64 conversion of NaN, ±Inf and out-of-range
// values gives math.MinInt64 (x86's "integer indefinite"), an index outside every
// window, so the fused pass needs no separate test for non-finite values. Elsewhere
// (arm64 saturates, and turns NaN into 0) each group is tested.
const cvtIndefinite = runtime.GOARCH == "amd64" || runtime.GOARCH == "386"

// observeFused folds x as observe(x, scan(x)) does, bin for bin, and returns scan(x).
func (h *Histogram) observeFused(x []float32) batchStats {
	first := h.counts == nil
	if len(x) < splitMin || len(x) > 1<<30 || !first && (h.k < -127 || h.k > 126) {
		// A batch too small to pay for the partial histograms, one whose partial counts
		// could overflow, or a width whose inverse is no normal float32 (see fuseSigned).
		b := scan(x)
		h.observe(x, b)
		return b
	}
	s, rest := startScan(x)
	if rest == nil {
		b := s.stats()
		h.observe(x, b)
		return b
	}
	if first {
		// No window yet: a provisional one from a sample (see provisional).
		k, off, ok := h.provisional(rest)
		if !ok {
			s.scan(rest)
			b := s.stats()
			h.observe(x, b)
			return b
		}
		h.k, h.off, h.counts = k, off, make([]int64, h.nbins)
	}
	n := h.nbins
	p, _ := fusePool.Get().(*[][4]uint32)
	if p == nil || len(*p) < n {
		buf := make([][4]uint32, n)
		p = &buf
	}
	part := (*p)[:n]
	defer fusePool.Put(p)
	clear(part)
	op, _ := outPool.Get().(*[]float32)
	if op == nil {
		op = new([]float32)
	}
	defer outPool.Put(op)
	fb := &fuseBuf{part: part, out: (*op)[:0], limit: len(x) / 4}
	inv := float32(math.Ldexp(1, -h.k))
	var done int
	var zeros int64
	amin := h.amin
	if h.abs {
		done, zeros, amin = s.fuseAbs(rest, inv, fb, amin)
	} else {
		done, zeros = s.fuseSigned(rest, inv, h.off, fb)
	}
	*op = fb.out[:0]
	rest = rest[done:]
	s.scan(rest)
	b := s.stats()
	var k int
	if first {
		k = h.need(b.domain(h.abs))
		if k < h.k {
			// The provisional width was raised to the finest the fused pass allows, and
			// the batch needs a finer one: bin it again, as observe does.
			h.counts, h.k, h.off = nil, 0, 0
			h.observe(x, b)
			return b
		}
	}
	h.amin = amin
	c := h.counts[:n]
	for j := range c {
		q := &part[j]
		c[j] += int64(q[0]) + int64(q[1]) + int64(q[2]) + int64(q[3])
	}
	h.zeros += zeros
	// What observe does with the batch, for the values not binned yet: grow the window
	// (moving the counts just added), then bin them.
	if first {
		// account's window for a first batch, [lo, hi] placed at width 2^k, reached from
		// the provisional one as growth reaches it (k is not below the provisional width).
		lo, hi := b.domain(h.abs)
		h.rebin(k, h.place(lo, hi, k))
		h.bad += b.bad
		h.min, h.max = b.min, b.max
		h.total += b.n
	} else {
		h.account(b)
	}
	h.binOutliers(fb.out)
	h.bin(rest, b.bad == 0)
	return b
}

// domain is the range of the binned quantity in a batch with finite values: [min, max],
// or [0, max|x|] for an |x| histogram, as account covers it.
func (b batchStats) domain(abs bool) (lo, hi float64) {
	if abs {
		return 0, math.Max(math.Abs(float64(b.min)), math.Abs(float64(b.max)))
	}
	return float64(b.min), float64(b.max)
}

// sampleSize is about how many values of a first batch place its provisional window.
const sampleSize = 1024

// provisional places the window a first batch is binned into by the fused pass: the one
// account would place for a strided sample of the batch's finite values (rest starts
// with one), its width raised to the finest the float32 bins allow (2^-127). Every value
// the sample holds is inside the batch's range, so the batch's own width (need is
// monotone in the range) is not below the sample's: the counts move whole from the
// provisional window to the batch's, as growth moves them, and values outside are set
// aside and binned after, so the provisional window decides only how much of the batch
// is binned in the pass, never a count. ok is false when the sample's width is too coarse
// for float32 bins (2^126).
func (h *Histogram) provisional(rest []float32) (k int, off int64, ok bool) {
	lo, hi := rest[0], rest[0]
	// An odd stride, so that it does not fall in step with power-of-two tensor shapes.
	stride := max(1, len(rest)/sampleSize) | 1
	for i := stride; i < len(rest); i += stride {
		if v := rest[i]; finite(v) {
			lo, hi = min32(lo, v), max32(hi, v)
		}
	}
	b := batchStats{min: lo, max: hi}
	flo, fhi := b.domain(h.abs)
	k = h.need(flo, fhi)
	if k > 126 {
		return 0, 0, false
	}
	k = max(k, -127)
	return k, h.place(flo, fhi, k), true
}

// binOutliers adds to the counts the finite values the fused pass found outside the
// window (the window now holds them), leaving the zeros and amin alone (the pass
// counted them).
func (h *Histogram) binOutliers(out []float32) {
	if len(out) == 0 {
		return
	}
	inv := math.Ldexp(1, -h.k)
	c := h.counts
	if h.abs {
		for _, v := range out {
			c[int64(float64(abs32(v))*inv)]++
		}
		return
	}
	for _, v := range out {
		f := float64(v)*inv + 0
		c[int64(f)+int64(math.Float64bits(f))>>63-h.off]++
	}
}

// fuseBuf is the fused pass's output besides the scan: the partial histograms, and the
// finite values outside the window (at most limit of them; the pass stops before a group
// that would make more).
type fuseBuf struct {
	part  [][4]uint32
	out   []float32
	limit int
}

// outPool holds fuseBuf.out's memory.
var outPool sync.Pool

// fusePool holds observeFused's partial histograms: per bin the counts of the four
// values of a group (value i of a group into part[bin][i]), so that runs of one bin
// (the zeros after a ReLU) do not wait on a single counter.
var fusePool sync.Pool

// fuseSigned scans and bins rest (which starts at the scan's first value) into the
// signed window of width 1/inv from bin off, until the first group of four with a value
// outside the window. It returns the number of values folded (a multiple of four, or
// len(rest)) and how many of them are ±0.
//
// The bins are observe's, computed in float32: inv = 2^-k is a normal float32 (the
// caller checks k), so v·inv is exact (a power of two scales it) except where it
// underflows, and then its magnitude and the exact one are both below 1. Truncation
// toward 0 gives ⌊|v|/w⌋ either way; a negative v (not -0, which observe puts in bin 0)
// is one bin further down, -⌊|v|/w⌋-1, as observe's sign-magnitude grid has it. The sign
// comes from v's order key, not from the product, which may underflow to -0. NaN, ±Inf
// and values too large for int64 convert to math.MinInt64 on x86 (cvtIndefinite),
// outside every window.
func (s *scanState) fuseSigned(rest []float32, inv float32, off int64, fb *fuseBuf) (done int, zeros int64) {
	part := fb.part
	k := s.k
	a0, a1, q0, q1 := s.a0, s.a1, s.q0, s.q1
	mnk, mxk := orderKey(s.mn), orderKey(s.mx)
	var z int64
	fast := 0
	j := 0
	for ; j+4 <= len(rest); j += 4 {
		g := rest[j : j+4 : j+4]
		v0, v1, v2, v3 := g[0], g[1], g[2], g[3]
		k0, k1, k2, k3 := orderKey(v0), orderKey(v1), orderKey(v2), orderKey(v3)
		// (k+1)>>31 is -1 for a negative v other than -0, 0 otherwise.
		i0 := int64(v0*inv) + int64((k0+1)>>31) - off
		i1 := int64(v1*inv) + int64((k1+1)>>31) - off
		i2 := int64(v2*inv) + int64((k2+1)>>31) - off
		i3 := int64(v3*inv) + int64((k3+1)>>31) - off
		if uint64(i0) >= uint64(len(part)) || uint64(i1) >= uint64(len(part)) ||
			uint64(i2) >= uint64(len(part)) || uint64(i3) >= uint64(len(part)) ||
			!cvtIndefinite && (v0-v0)+(v1-v1)+(v2-v2)+(v3-v3) != 0 {
			// Outside the window, or not finite: folded by irregular.
			s.a0, s.a1, s.q0, s.q1 = a0, a1, q0, q1
			if !s.irregular(g, func(v float32) int64 {
				return int64(v*inv) + int64((orderKey(v)+1)>>31) - off
			}, fb, &z) {
				break
			}
			a0, a1, q0, q1 = s.a0, s.a1, s.q0, s.q1
			continue
		}
		mnk = min(mnk, k0, k1, k2, k3)
		mxk = max(mxk, k0, k1, k2, k3)
		d0, d1, d2, d3 := float64(v0)-k, float64(v1)-k, float64(v2)-k, float64(v3)-k
		a0 += d0 + d1
		a1 += d2 + d3
		q0 += d0*d0 + d1*d1
		q1 += d2*d2 + d3*d3
		fast++
		z += isZero(v0) + isZero(v1) + isZero(v2) + isZero(v3)
		part[i0][0]++
		part[i1][1]++
		part[i2][2]++
		part[i3][3]++
	}
	s.a0, s.a1, s.q0, s.q1 = a0, a1, q0, q1
	s.n += 4 * int64(fast)
	if j+4 > len(rest) && s.irregular(rest[j:], func(v float32) int64 {
		return int64(v*inv) + int64((orderKey(v)+1)>>31) - off
	}, fb, &z) {
		j = len(rest)
	}
	s.fixExtremes(mnk, mxk, rest[:j])
	return j, z
}

// irregular folds g, a group of four with a value outside the window or not finite, or
// the tail: its moments and extremes as scan does (the fast arithmetic for four finite
// values, value by value otherwise), its finite values inside the window (bin gives
// their position) into part, the others into fb.out. When fb.out would pass fb.limit it
// folds nothing and returns false.
func (s *scanState) irregular(g []float32, bin func(float32) int64, fb *fuseBuf, zeros *int64) bool {
	outside, bad := 0, false
	for _, v := range g {
		if !finite(v) {
			bad = true
		} else if uint64(bin(v)) >= uint64(len(fb.part)) {
			outside++
		}
	}
	if len(fb.out)+outside > fb.limit {
		return false
	}
	if len(g) == 4 && !bad {
		v0, v1, v2, v3 := g[0], g[1], g[2], g[3]
		s.mn = min32(min32(min32(min32(s.mn, v0), v1), v2), v3)
		s.mx = max32(max32(max32(max32(s.mx, v0), v1), v2), v3)
		d0, d1, d2, d3 := float64(v0)-s.k, float64(v1)-s.k, float64(v2)-s.k, float64(v3)-s.k
		s.a0 += d0 + d1
		s.a1 += d2 + d3
		s.q0 += d0*d0 + d1*d1
		s.q1 += d2*d2 + d3*d3
		s.n += 4
	} else {
		s.slow(g)
	}
	for _, v := range g {
		if !finite(v) {
			continue
		}
		*zeros += isZero(v)
		if i := bin(v); uint64(i) < uint64(len(fb.part)) {
			fb.part[i][0]++
		} else {
			fb.out = append(fb.out, v)
		}
	}
	return true
}

// fuseAbs is fuseSigned for an |x| histogram (window from bin 0); it also lowers amin to
// the smallest |x| folded.
func (s *scanState) fuseAbs(rest []float32, inv float32, fb *fuseBuf, amin float32) (done int, zeros int64, _ float32) {
	part := fb.part
	k := s.k
	a0, a1, q0, q1 := s.a0, s.a1, s.q0, s.q1
	mnk, mxk := orderKey(s.mn), orderKey(s.mx)
	amk := orderKey(amin) // amin ≥ 0 (or +Inf): its key orders as the float
	var z int64
	fast := 0
	j := 0
	for ; j+4 <= len(rest); j += 4 {
		g := rest[j : j+4 : j+4]
		v0, v1, v2, v3 := g[0], g[1], g[2], g[3]
		b0, b1, b2, b3 := abs32(v0), abs32(v1), abs32(v2), abs32(v3)
		i0, i1, i2, i3 := int64(b0*inv), int64(b1*inv), int64(b2*inv), int64(b3*inv)
		if uint64(i0) >= uint64(len(part)) || uint64(i1) >= uint64(len(part)) ||
			uint64(i2) >= uint64(len(part)) || uint64(i3) >= uint64(len(part)) ||
			!cvtIndefinite && (v0-v0)+(v1-v1)+(v2-v2)+(v3-v3) != 0 {
			s.a0, s.a1, s.q0, s.q1 = a0, a1, q0, q1
			if !s.irregular(g, func(v float32) int64 { return int64(abs32(v) * inv) }, fb, &z) {
				break
			}
			a0, a1, q0, q1 = s.a0, s.a1, s.q0, s.q1
			for _, v := range g {
				if finite(v) {
					amk = min(amk, orderKey(abs32(v)))
				}
			}
			continue
		}
		k0, k1, k2, k3 := orderKey(v0), orderKey(v1), orderKey(v2), orderKey(v3)
		mnk = min(mnk, k0, k1, k2, k3)
		mxk = max(mxk, k0, k1, k2, k3)
		amk = min(amk, int32(math.Float32bits(b0)), int32(math.Float32bits(b1)), int32(math.Float32bits(b2)), int32(math.Float32bits(b3)))
		d0, d1, d2, d3 := float64(v0)-k, float64(v1)-k, float64(v2)-k, float64(v3)-k
		a0 += d0 + d1
		a1 += d2 + d3
		q0 += d0*d0 + d1*d1
		q1 += d2*d2 + d3*d3
		fast++
		z += isZero(b0) + isZero(b1) + isZero(b2) + isZero(b3)
		part[i0][0]++
		part[i1][1]++
		part[i2][2]++
		part[i3][3]++
	}
	s.a0, s.a1, s.q0, s.q1 = a0, a1, q0, q1
	s.n += 4 * int64(fast)
	if j+4 > len(rest) && s.irregular(rest[j:], func(v float32) int64 { return int64(abs32(v) * inv) }, fb, &z) {
		for _, v := range rest[j:] {
			if finite(v) {
				amk = min(amk, orderKey(abs32(v)))
			}
		}
		j = len(rest)
	}
	s.fixExtremes(mnk, mxk, rest[:j])
	return j, z, fromOrderKey(amk)
}

// orderKey maps a finite float32 to an int32 of the same order (integer min and max
// compile to conditional moves, float ones to branches and register shuffles): the bits
// of a positive value as they are, those of a negative one with the magnitude bits
// flipped. -0 maps below +0 (to -1), where the float order has them equal; fixExtremes
// puts that right.
func orderKey(v float32) int32 {
	u := int32(math.Float32bits(v))
	return u ^ int32(uint32(u>>31)>>1)
}

// fromOrderKey is orderKey's inverse.
func fromOrderKey(k int32) float32 {
	return math.Float32frombits(uint32(k ^ int32(uint32(k>>31)>>1)))
}

// fixExtremes sets s.mn and s.mx to what scan's chain of min32 and max32 over the values
// folded gives, from the extremes of its own (s.mn, s.mx: the start and the groups folded
// one by one) and the order keys of the fast groups' extremes. The values differ only
// for a zero: min32 keeps the first of equal values, so when the smallest (largest) value
// is ±0 scan returns the first zero of the sequence, whatever its sign, which is in
// folded (the sequence starts with its first value, the scan's start).
func (s *scanState) fixExtremes(mnk, mxk int32, folded []float32) {
	mn := min32(s.mn, fromOrderKey(mnk))
	mx := max32(s.mx, fromOrderKey(mxk))
	if mn == 0 || mx == 0 {
		for _, v := range folded {
			if v == 0 {
				if mn == 0 {
					mn = v
				}
				if mx == 0 {
					mx = v
				}
				break
			}
		}
	}
	s.mn, s.mx = mn, mx
}

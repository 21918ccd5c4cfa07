package calibrate

import "math"

// The scan: one pass over a batch that finds its extremes, the count of finite values
// and their first two moments. It is the part of calibration that touches every value
// of every activation, so it runs on an AVX2 kernel where the CPU has one
// (scan_amd64.s), and in pure Go, with the same arithmetic in the same order, elsewhere:
// the results are bit-identical on every machine.
//
// Value i of each block of scanLanes goes to lane i: a running minimum and maximum
// (float32, kept as VMINPS/VMAXPS keep them: the running value unless the new one is
// smaller/larger, so of two equal values the later one stays), and the float64 sums
// Σ(v-k) and Σ(v-k)² with k the batch's first finite value (a shift that keeps a large
// mean from cancelling the variance). The lanes are combined in a fixed order at the end.

// scanLanes is the number of lanes of a scan.
const scanLanes = 16

// scanAcc is the lanes' state (its layout is the assembly kernel's).
type scanAcc struct {
	a, q   [scanLanes]float64
	mn, mx [scanLanes]float32
}

func newScanAcc() *scanAcc {
	acc := &scanAcc{}
	for l := range scanLanes {
		acc.mn[l], acc.mx[l] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	return acc
}

// fold adds finite value v to lane l.
func (acc *scanAcc) fold(l int, v float32, k float64) {
	if !(acc.mn[l] < v) {
		acc.mn[l] = v
	}
	if !(acc.mx[l] > v) {
		acc.mx[l] = v
	}
	d := float64(v) - k
	acc.a[l] += d
	acc.q[l] += float64(d * d) // the conversion forbids fusing into an FMA
}

// scanBlocksGo folds whole blocks of x (len(x)/scanLanes of them) into acc until a
// block holds a non-finite value, and returns the number of blocks folded.
func scanBlocksGo(x []float32, k float64, acc *scanAcc) int {
	nb := len(x) / scanLanes
	for b := range nb {
		blk := x[b*scanLanes : (b+1)*scanLanes : (b+1)*scanLanes]
		for _, v := range blk {
			if !finite(v) {
				return b
			}
		}
		for l, v := range blk {
			acc.fold(l, v, k)
		}
	}
	return nb
}

// finite reports whether v is neither NaN nor ±Inf (v-v is NaN for both).
func finite(v float32) bool { return v-v == 0 }

// batchStats is one scanned batch: extremes, counts and shifted sums.
type batchStats struct {
	min, max float32
	n, bad   int64
	shift    float64 // the first finite value
	s1, s2   float64 // Σ(x-shift), Σ(x-shift)²
}

// scan makes one pass over x.
func scan(x []float32) batchStats {
	b := batchStats{min: float32(math.Inf(1)), max: float32(math.Inf(-1))}
	i := 0
	for ; i < len(x) && !finite(x[i]); i++ {
	}
	b.bad = int64(i)
	if i == len(x) {
		return b
	}
	k := float64(x[i])
	rest := x[i:]
	acc := newScanAcc()
	// oneByOne folds the finite values of a block (or the tail) one by one, value i in
	// lane i, and counts the others.
	oneByOne := func(blk []float32) {
		for l, v := range blk {
			if finite(v) {
				acc.fold(l, v, k)
				b.n++
			} else {
				b.bad++
			}
		}
	}
	for len(rest) >= scanLanes {
		done := scanBlocks(rest, k, acc)
		b.n += int64(done * scanLanes)
		rest = rest[done*scanLanes:]
		if len(rest) < scanLanes {
			break
		}
		oneByOne(rest[:scanLanes]) // the block with a non-finite value
		rest = rest[scanLanes:]
	}
	oneByOne(rest)
	b.shift = k
	mn, mx := acc.mn[0], acc.mx[0]
	for l := 1; l < scanLanes; l++ {
		if !(mn < acc.mn[l]) {
			mn = acc.mn[l]
		}
		if !(mx > acc.mx[l]) {
			mx = acc.mx[l]
		}
	}
	b.min, b.max = mn, mx
	b.s1, b.s2 = pairwise(acc.a[:]), pairwise(acc.q[:])
	return b
}

// pairwise sums the lanes as a balanced tree (lanes 0+1, 2+3, ..., then the pairs).
func pairwise(s []float64) float64 {
	var t [scanLanes]float64
	n := copy(t[:], s)
	for n > 1 {
		for i := 0; i < n/2; i++ {
			t[i] = t[2*i] + t[2*i+1]
		}
		n /= 2
	}
	return t[0]
}

// min32 and max32 compare finite float32s (callers filter NaN); of equal values the
// first stays.
func min32(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}

func max32(a, b float32) float32 {
	if b > a {
		return b
	}
	return a
}

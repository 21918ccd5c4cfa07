package train

import (
	"math"
	"slices"
	"sync"
	"unsafe"
)

// The packed SGEMM (BLIS/OpenBLAS style) behind sgemm where gemmAsm holds.
//
// op(A) is copied into panels of mr rows, laid out k-major (mr consecutive floats per
// step of k) and zero-padded at the ragged edge, whatever the transpose flag. A
// transposed B is copied the same way into panels of nr columns (8×8 register
// transposes); a non-transposed B already has nr consecutive floats per step of k and
// is read in place, its rows ldb apart (only a ragged last panel is packed, zero-padded).
// The micro-kernel (gemmMicro: gemmKernel8x32 with AVX-512, gemmKernel6x16 with AVX2)
// keeps an mr×nr tile of C in registers and, for each k, loads two vectors of B,
// broadcasts each of the mr A values and issues two fused multiply-adds per row.
//
// The inner dimension is cut into balanced slices of at most gemmKC (784 is 4 slices of
// 196), so that a B micro-panel (nr×kc floats, 16 or 32 KiB) stays in L1 while the
// block's A panels (mc rows × kc, ≤ 96 KiB) stay in L2. The first slice writes
// C = alpha·AB (+ beta·C), the next ones add. Within a slice each element of C is one
// running sum of its k products in order, in one register lane, with a fused
// multiply-add per product: the order of onnxruntime's MLAS kernels, which also sum
// each element in one lane over slices of k. Both micro-kernels slice k alike and so
// give the same bits.
//
// Work is split into blocks of C (up to mc rows × nc columns), which goroutines take in
// turn (parallelDynamic); every element is computed by one goroutine, in an order fixed
// by its position only, so results do not depend on GOMAXPROCS.
const (
	gemmMR = 6
	gemmNR = 16
	gemmKC = 256
)

// gemmBlocking is one micro-kernel's blocking: an mr×nr tile of C per call (gemmMicro),
// at most kc of the inner dimension per slice, blocks of C of up to mc rows × nc columns.
type gemmBlocking struct{ mr, nr, kc, mc, nc int }

// gemmMaxTile is the largest mr·nr of the micro-kernels (8×32).
const gemmMaxTile = 8 * 32

// gemmAVX2 is the AVX2/FMA blocking: 6×16 tiles (12 of the 16 YMM registers), slices of
// k up to gemmKC (a B micro-panel of 16 KiB in L1), blocks of 96×128. Both blockings
// slice k alike, so that they compute the same sums.
var gemmAVX2 = gemmBlocking{mr: gemmMR, nr: gemmNR, kc: gemmKC, mc: 16 * gemmMR, nc: 8 * gemmNR}

// sgemmPacked is sgemm with the packed kernel: it packs op(A) and, where needed, op(B)
// into panels, then computes C block by block in parallel.
func sgemmPacked(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	bl := gemmBlock()
	mr, nr := bl.mr, bl.nr
	mp := (m + mr - 1) / mr
	np := (n + nr - 1) / nr
	bufA := packPanelsA(transA, mr, mp, m, k, a, lda)
	pa := *bufA
	direct := !transB
	bufB, pb := packPanelsB(transB, nr, np, n, k, b, ldb)

	// Blocks of C: rb A panels × cb B panels, balanced.
	tr := (mp*mr + bl.mc - 1) / bl.mc
	rb := (mp + tr - 1) / tr
	tc := (np*nr + bl.nc - 1) / bl.nc
	cb := (np + tc - 1) / tc
	tr, tc = (mp+rb-1)/rb, (np+cb-1)/cb
	ns := (k + bl.kc - 1) / bl.kc
	kcs := (k + ns - 1) / ns // slice length
	parallelDynamic(tr*tc, 1, rb*mr*cb*nr*k, func(lo, hi int) {
		var tile [gemmMaxTile]float32
		for t := lo; t < hi; t++ {
			// Column-major over blocks: blocks in flight at once share B panels.
			ti, tj := t%tr, t/tr
			ip0, ip1 := ti*rb, min((ti+1)*rb, mp)
			jp0, jp1 := tj*cb, min((tj+1)*cb, np)
			for p0 := 0; p0 < k; p0 += kcs {
				kc := min(kcs, k-p0)
				bet := beta
				if p0 > 0 {
					bet = 1
				}
				for jp := jp0; jp < jp1; jp++ {
					j0 := jp * nr
					nn := min(nr, n-j0)
					var bp *float32
					bs := nr
					switch {
					case !direct:
						bp = &pb[jp*nr*k+p0*nr]
					case nn == nr:
						_ = b[(p0+kc-1)*ldb+j0+nr-1] // the panel is inside b
						bp, bs = &b[p0*ldb+j0], ldb
					default:
						bp = &pb[p0*nr]
					}
					for ip := ip0; ip < ip1; ip++ {
						i0 := ip * mr
						mm := min(mr, m-i0)
						ap := &pa[ip*mr*k+p0*mr]
						if mm == mr && nn == nr {
							_ = c[(i0+mr-1)*ldc+j0+nr-1] // the tile is inside c
							gemmMicro(nr, kc, ap, bp, bs, &c[i0*ldc+j0], ldc, alpha, bet, bet != 0)
							continue
						}
						gemmMicro(nr, kc, ap, bp, bs, &tile[0], nr, alpha, 0, false)
						for r := range mm {
							row := c[(i0+r)*ldc+j0:][:nn]
							src := tile[r*nr:][:nn]
							if bet == 0 {
								copy(row, src)
								continue
							}
							for j, v := range src { // as the kernel does: fma(beta, C, alpha·AB)
								row[j] = float32(math.FMA(float64(bet), float64(row[j]), float64(v)))
							}
						}
					}
				}
			}
		}
	})
	packRelease(bufA)
	if bufB != nil {
		packRelease(bufB)
	}
}

// packPanelsA packs op(A) into its mp panels of mr rows (packA), in parallel, into a
// buffer of packScratch.
func packPanelsA(transA bool, mr, mp, m, k int, a []float32, lda int) *[]float32 {
	bufA := packScratch(mp * mr * k)
	pa := *bufA
	parallelFor(mp, mr*k, func(lo, hi int) {
		for ip := lo; ip < hi; ip++ {
			packA(transA, mr, ip, m, k, a, lda, pa[ip*mr*k:(ip+1)*mr*k])
		}
	})
	return bufA
}

// packPanelsB packs what sgemmPacked does not read of B in place, into a buffer of
// packScratch, and returns the buffer (nil when nothing is packed) and its floats.
//
// A B that is not transposed is read in place, nr columns at a time (rows ldb apart):
// packing it would cost a read and a write of all of B from memory for a reuse of only
// m/mr times. Only a ragged last panel is packed (zero-padded). A transposed B is packed
// into k-major panels.
func packPanelsB(transB bool, nr, np, n, k int, b []float32, ldb int) (*[]float32, []float32) {
	if !transB {
		if n%nr == 0 {
			return nil, nil
		}
		bufB := packScratch(nr * k)
		pb := *bufB
		packB(false, nr, np-1, n, k, b, ldb, pb)
		return bufB, pb
	}
	bufB := packScratch(np * nr * k)
	pb := *bufB
	parallelFor(np, nr*k, func(lo, hi int) {
		for jp := lo; jp < hi; jp++ {
			packB(true, nr, jp, n, k, b, ldb, pb[jp*nr*k:(jp+1)*nr*k])
		}
	})
	return bufB, pb
}

// packFree keeps a few packing buffers between calls, the largest ones (a sync.Pool
// would lose them at each collection, and a training step's garbage starts many).
var packFree struct {
	sync.Mutex
	bufs []*[]float32
}

// packScratch returns a buffer of n floats: the smallest kept one that is large enough,
// or a new one.
func packScratch(n int) *[]float32 {
	packFree.Lock()
	best := -1
	for i, b := range packFree.bufs {
		if cap(*b) >= n && (best < 0 || cap(*b) < cap(*packFree.bufs[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := packFree.bufs[best]
		packFree.bufs = slices.Delete(packFree.bufs, best, best+1)
		packFree.Unlock()
		*b = (*b)[:n]
		return b
	}
	packFree.Unlock()
	s := make([]float32, n)
	return &s
}

// packRelease hands a buffer of packScratch back; of more than packKeep, the smallest
// is dropped.
func packRelease(b *[]float32) {
	const packKeep = 6
	packFree.Lock()
	packFree.bufs = append(packFree.bufs, b)
	if len(packFree.bufs) > packKeep {
		small := 0
		for i, x := range packFree.bufs {
			if cap(*x) < cap(*packFree.bufs[small]) {
				small = i
			}
		}
		packFree.bufs = slices.Delete(packFree.bufs, small, small+1)
	}
	packFree.Unlock()
}

// packA writes rows [ip·mr, ip·mr+mr) of op(A) (m×k; A is k×m when trans) into dst,
// k-major: dst[p·mr+r] = op(A)[ip·mr+r, p], rows past m zero.
func packA(trans bool, mr, ip, m, k int, a []float32, lda int, dst []float32) {
	i0 := ip * mr
	mm := min(mr, m-i0)
	dst = dst[:mr*k]
	if mm < mr {
		clear(dst)
	}
	if trans {
		switch {
		case mm == 6 && mr == 6:
			for p := range k {
				*(*[6]float32)(dst[p*6:]) = *(*[6]float32)(a[p*lda+i0:])
			}
		case mm == 8 && mr == 8:
			for p := range k {
				*(*[8]float32)(dst[p*8:]) = *(*[8]float32)(a[p*lda+i0:])
			}
		default:
			for p := range k {
				copy(dst[p*mr:p*mr+mm], a[p*lda+i0:p*lda+i0+mm])
			}
		}
		return
	}
	// Two rows at a time, each read contiguously.
	r := 0
	for ; r+2 <= mm; r += 2 {
		s0 := a[(i0+r)*lda:][:k]
		s1 := a[(i0+r+1)*lda:][:k]
		for p := range k {
			d := dst[p*mr+r : p*mr+r+2 : p*mr+r+2]
			d[0], d[1] = s0[p], s1[p]
		}
	}
	for ; r < mm; r++ {
		src := a[(i0+r)*lda:][:k]
		for p, v := range src {
			dst[p*mr+r] = v
		}
	}
}

// packB writes columns [jp·nr, jp·nr+nr) of op(B) (k×n; B is n×k when trans) into dst,
// k-major: dst[p·nr+j] = op(B)[p, jp·nr+j], columns past n zero. nr is a multiple of 16.
func packB(trans bool, nr, jp, n, k int, b []float32, ldb int, dst []float32) {
	j0 := jp * nr
	nn := min(nr, n-j0)
	dst = dst[:nr*k]
	if nn < nr {
		clear(dst)
	}
	if !trans {
		if nn == nr {
			for p := range k {
				for q := 0; q < nr; q += 16 {
					*(*[16]float32)(dst[p*nr+q:]) = *(*[16]float32)(b[p*ldb+j0+q:])
				}
			}
			return
		}
		for p := range k {
			copy(dst[p*nr:p*nr+nn], b[p*ldb+j0:p*ldb+j0+nn])
		}
		return
	}
	// B's rows are op(B)'s columns: 8×8 blocks transposed in registers where there is
	// assembly for it, else each row read contiguously, 16 at once, so that each step
	// of k writes 64 contiguous bytes of dst.
	j := 0
	for ; j+8 <= nn; j += 8 {
		if !packBTrans8(dst[j:], nr, b[(j0+j)*ldb:], ldb, k) {
			break
		}
	}
	for ; j+16 <= nn; j += 16 {
		var s [16][]float32
		for q := range s {
			s[q] = b[(j0+j+q)*ldb:][:k]
		}
		for p := range k {
			d := (*[16]float32)(dst[p*nr+j:])
			d[0], d[1], d[2], d[3] = s[0][p], s[1][p], s[2][p], s[3][p]
			d[4], d[5], d[6], d[7] = s[4][p], s[5][p], s[6][p], s[7][p]
			d[8], d[9], d[10], d[11] = s[8][p], s[9][p], s[10][p], s[11][p]
			d[12], d[13], d[14], d[15] = s[12][p], s[13][p], s[14][p], s[15][p]
		}
	}
	for ; j+4 <= nn; j += 4 {
		s0 := b[(j0+j)*ldb:][:k]
		s1 := b[(j0+j+1)*ldb:][:k]
		s2 := b[(j0+j+2)*ldb:][:k]
		s3 := b[(j0+j+3)*ldb:][:k]
		for p := range k {
			d := dst[p*nr+j : p*nr+j+4 : p*nr+j+4]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
	for ; j < nn; j++ {
		src := b[(j0+j)*ldb:][:k]
		for p, v := range src {
			dst[p*nr+j] = v
		}
	}
}

// gemmKernelGo is the micro-kernels (mr×nr) in Go: each element a running sum of its k products in
// order, each product added with a fused multiply-add (in float64, rounded to float32:
// the same as the hardware's single-precision FMA but for rare double roundings).
func gemmKernelGo(mr, nr, k int, a, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, load bool) {
	as := unsafe.Slice(a, k*mr)
	bs := unsafe.Slice(b, max(0, (k-1)*ldb+nr))
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	for r := range mr {
		for j := range nr {
			var s float32
			for p := range k {
				s = float32(math.FMA(float64(as[p*mr+r]), float64(bs[p*ldb+j]), float64(s)))
			}
			s *= alpha
			if load {
				s = float32(math.FMA(float64(beta), float64(cs[r*ldc+j]), float64(s)))
			}
			cs[r*ldc+j] = s
		}
	}
}

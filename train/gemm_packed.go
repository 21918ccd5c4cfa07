package train

import (
	"math"
	"unsafe"
)

// The packed SGEMM (BLIS/OpenBLAS style) behind sgemm where gemmAsm holds.
//
// op(A) is copied into panels of gemmMR rows and op(B) into panels of gemmNR columns,
// each laid out k-major (gemmMR, resp. gemmNR, consecutive floats per step of k) and
// zero-padded at the ragged edge, whatever the transpose flags: the four transpose
// cases differ only in the packing. The micro-kernel (gemmKernel6x16) keeps a 6×16 tile
// of C in twelve 8-wide registers and, for each k, loads two 8-wide pieces of the B
// panel, broadcasts each of the 6 A values and issues 12 fused multiply-adds.
//
// The inner dimension is cut into slices of at most gemmKC (balanced: 784 is 3 slices
// of 262/262/260), so that a B micro-panel (16×kc floats, 24 KiB at most) stays in L1
// while the block's A panels (gemmMC rows × kc, ≤ 144 KiB) stay in L2. The first slice
// writes C = alpha·AB (+ beta·C), the next ones add. Within a slice each element of C
// is one running sum of its k products in order, in one register lane, with a fused
// multiply-add per product: the order of onnxruntime's MLAS kernels, which also sum
// each element in one lane over slices of k.
//
// Work is split into blocks of C (up to gemmMC rows × gemmNC columns), which goroutines
// take in turn (parallelDynamic); every element is computed by one goroutine, in an
// order fixed by its position only, so results do not depend on GOMAXPROCS.
const (
	gemmMR = 6
	gemmNR = 16
	gemmKC = 384
	gemmMC = 16 * gemmMR // rows of C per block
	gemmNC = 8 * gemmNR  // columns of C per block
)

func sgemmPacked(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mp := (m + gemmMR - 1) / gemmMR
	np := (n + gemmNR - 1) / gemmNR
	bufA := getScratch(mp * gemmMR * k)
	bufB := getScratch(np * gemmNR * k)
	pa, pb := *bufA, *bufB
	parallelFor(mp, gemmMR*k, func(lo, hi int) {
		for ip := lo; ip < hi; ip++ {
			packA(transA, ip, m, k, a, lda, pa[ip*gemmMR*k:(ip+1)*gemmMR*k])
		}
	})
	parallelFor(np, gemmNR*k, func(lo, hi int) {
		for jp := lo; jp < hi; jp++ {
			packB(transB, jp, n, k, b, ldb, pb[jp*gemmNR*k:(jp+1)*gemmNR*k])
		}
	})

	// Blocks of C: rb A panels × cb B panels, balanced.
	tr := (mp*gemmMR + gemmMC - 1) / gemmMC
	rb := (mp + tr - 1) / tr
	tc := (np*gemmNR + gemmNC - 1) / gemmNC
	cb := (np + tc - 1) / tc
	tr, tc = (mp+rb-1)/rb, (np+cb-1)/cb
	ns := (k + gemmKC - 1) / gemmKC
	kcs := (k + ns - 1) / ns // slice length
	parallelDynamic(tr*tc, 1, rb*gemmMR*cb*gemmNR*k, func(lo, hi int) {
		var tile [gemmMR * gemmNR]float32
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
					j0 := jp * gemmNR
					nr := min(gemmNR, n-j0)
					bp := &pb[jp*gemmNR*k+p0*gemmNR]
					for ip := ip0; ip < ip1; ip++ {
						i0 := ip * gemmMR
						mr := min(gemmMR, m-i0)
						ap := &pa[ip*gemmMR*k+p0*gemmMR]
						if mr == gemmMR && nr == gemmNR {
							_ = c[(i0+gemmMR-1)*ldc+j0+gemmNR-1] // the tile is inside c
							gemmKernel6x16(kc, ap, bp, &c[i0*ldc+j0], ldc, alpha, bet, bet != 0)
							continue
						}
						gemmKernel6x16(kc, ap, bp, &tile[0], gemmNR, alpha, 0, false)
						for r := range mr {
							row := c[(i0+r)*ldc+j0:][:nr]
							src := tile[r*gemmNR:][:nr]
							if bet == 0 {
								copy(row, src)
								continue
							}
							for j, v := range src {
								row[j] = bet*row[j] + v
							}
						}
					}
				}
			}
		}
	})
	putScratch(bufA)
	putScratch(bufB)
}

// packA writes rows [ip·gemmMR, ip·gemmMR+gemmMR) of op(A) (m×k; A is k×m when trans)
// into dst, k-major: dst[p·gemmMR+r] = op(A)[ip·gemmMR+r, p], rows past m zero.
func packA(trans bool, ip, m, k int, a []float32, lda int, dst []float32) {
	i0 := ip * gemmMR
	mr := min(gemmMR, m-i0)
	dst = dst[:gemmMR*k]
	if mr < gemmMR {
		clear(dst)
	}
	if trans {
		if mr == gemmMR {
			for p := range k {
				*(*[gemmMR]float32)(dst[p*gemmMR:]) = *(*[gemmMR]float32)(a[p*lda+i0:])
			}
			return
		}
		for p := range k {
			copy(dst[p*gemmMR:p*gemmMR+mr], a[p*lda+i0:p*lda+i0+mr])
		}
		return
	}
	if mr == gemmMR {
		r0 := a[i0*lda:][:k]
		r1 := a[(i0+1)*lda:][:k]
		r2 := a[(i0+2)*lda:][:k]
		r3 := a[(i0+3)*lda:][:k]
		r4 := a[(i0+4)*lda:][:k]
		r5 := a[(i0+5)*lda:][:k]
		for p := range k {
			d := dst[p*gemmMR : p*gemmMR+gemmMR : p*gemmMR+gemmMR]
			d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
		}
		return
	}
	for r := range mr {
		src := a[(i0+r)*lda:][:k]
		for p, v := range src {
			dst[p*gemmMR+r] = v
		}
	}
}

// packB writes columns [jp·gemmNR, jp·gemmNR+gemmNR) of op(B) (k×n; B is n×k when
// trans) into dst, k-major: dst[p·gemmNR+j] = op(B)[p, jp·gemmNR+j], columns past n zero.
func packB(trans bool, jp, n, k int, b []float32, ldb int, dst []float32) {
	j0 := jp * gemmNR
	nr := min(gemmNR, n-j0)
	dst = dst[:gemmNR*k]
	if nr < gemmNR {
		clear(dst)
	}
	if !trans {
		if nr == gemmNR {
			for p := range k {
				*(*[gemmNR]float32)(dst[p*gemmNR:]) = *(*[gemmNR]float32)(b[p*ldb+j0:])
			}
			return
		}
		for p := range k {
			copy(dst[p*gemmNR:p*gemmNR+nr], b[p*ldb+j0:p*ldb+j0+nr])
		}
		return
	}
	// B's rows are op(B)'s columns, each read contiguously: all 16 at once, so that
	// each step of k writes one whole cache line of dst.
	if nr == gemmNR {
		var s [gemmNR][]float32
		for j := range s {
			s[j] = b[(j0+j)*ldb:][:k]
		}
		for p := range k {
			d := (*[gemmNR]float32)(dst[p*gemmNR:])
			d[0], d[1], d[2], d[3] = s[0][p], s[1][p], s[2][p], s[3][p]
			d[4], d[5], d[6], d[7] = s[4][p], s[5][p], s[6][p], s[7][p]
			d[8], d[9], d[10], d[11] = s[8][p], s[9][p], s[10][p], s[11][p]
			d[12], d[13], d[14], d[15] = s[12][p], s[13][p], s[14][p], s[15][p]
		}
		return
	}
	j := 0
	for ; j+4 <= nr; j += 4 {
		s0 := b[(j0+j)*ldb:][:k]
		s1 := b[(j0+j+1)*ldb:][:k]
		s2 := b[(j0+j+2)*ldb:][:k]
		s3 := b[(j0+j+3)*ldb:][:k]
		for p := range k {
			d := dst[p*gemmNR+j : p*gemmNR+j+4 : p*gemmNR+j+4]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
	for ; j < nr; j++ {
		src := b[(j0+j)*ldb:][:k]
		for p, v := range src {
			dst[p*gemmNR+j] = v
		}
	}
}

// gemmKernelGo is gemmKernel6x16 in Go: each element a running sum of its k products in
// order, each product added with a fused multiply-add (in float64, rounded to float32:
// the same as the hardware's single-precision FMA but for rare double roundings).
func gemmKernelGo(k int, a, b, c *float32, ldc int, alpha, beta float32, load bool) {
	as := unsafe.Slice(a, k*gemmMR)
	bs := unsafe.Slice(b, k*gemmNR)
	cs := unsafe.Slice(c, (gemmMR-1)*ldc+gemmNR)
	for r := range gemmMR {
		for j := range gemmNR {
			var s float32
			for p := range k {
				s = float32(math.FMA(float64(as[p*gemmMR+r]), float64(bs[p*gemmNR+j]), float64(s)))
			}
			s *= alpha
			if load {
				s = float32(math.FMA(float64(beta), float64(cs[r*ldc+j]), float64(s)))
			}
			cs[r*ldc+j] = s
		}
	}
}

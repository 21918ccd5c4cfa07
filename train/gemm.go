package train

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

func init() { blas32.Use(gonum.Implementation{}) }

// sgemm computes C = alpha * op(A) * op(B) + beta * C for row-major matrices, where op(A)
// is m×k (A is k×m when transA) and op(B) is k×n (B is n×k when transB).
//
// It runs on gonum's Sgemm, which splits products of four 64×64 blocks or more over
// GOMAXPROCS goroutines. gonum's speed depends on the layout (BenchmarkGemm): with
// k >= 32 its A·Bᵀ case (dot products of contiguous rows) is 1.3 to 2.8 times as fast as
// the other three, and with short k its A·B case (row axpys) is the fastest. So when
// the product is big enough to pay for the copy, operands stored the other way round
// are first transposed into scratch memory.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleMat(m, n, beta, c, ldc)
		return
	}
	var bufA, bufB *[]float32
	if m*n >= 4096 {
		if transA {
			bufA = getScratch(m * k)
			transpose(k, m, a, lda, *bufA, k) // A is k×m: make it m×k
			a, lda, transA = *bufA, k, false
		}
		switch {
		case k >= 32 && !transB:
			bufB = getScratch(n * k)
			transpose(k, n, b, ldb, *bufB, k) // B is k×n: make it n×k
			b, ldb, transB = *bufB, k, true
		case k < 32 && transB:
			bufB = getScratch(k * n)
			transpose(n, k, b, ldb, *bufB, n) // B is n×k: make it k×n
			b, ldb, transB = *bufB, n, false
		}
	}
	if !transA && transB && k > 2*kBlock {
		sgemmLongK(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	} else {
		gemmCall(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
	putScratch(bufA)
	putScratch(bufB)
}

func gemmCall(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// kBlock is the slice of the inner dimension that sgemmLongK multiplies at a time.
const kBlock = 256

// sgemmLongK computes C = alpha·A·Bᵀ + beta·C for a long inner dimension k (the weight
// gradient of a convolution: k is samples × output positions). gonum walks the whole of
// k for each element of C, streaming A and B from memory m·n times, and does not split
// a C of fewer than four 64×64 blocks over goroutines. Here k is cut into kBlock slices
// that stay in cache, and, when C is small, the slices are shared out over goroutines
// that each sum into their own copy of C.
func sgemmLongK(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleMat(m, n, beta, c, ldc)
	nk := (k + kBlock - 1) / kBlock
	run := func(lo, hi int, dst []float32, ldd int) {
		for kb := lo; kb < hi; kb++ {
			k0 := kb * kBlock
			kk := min(kBlock, k-k0)
			gemmCall(false, true, m, n, kk, alpha, a[k0:], lda, b[k0:], ldb, 1, dst, ldd)
		}
	}
	if (m+63)/64*((n+63)/64) >= 4 || workers() == 1 {
		run(0, nk, c, ldc) // gonum splits each slice's product
		return
	}
	w := min(workers(), nk)
	parts := make([]*[]float32, w)
	for i := range parts {
		parts[i] = getScratch(m * n)
		clear(*parts[i])
	}
	parallelChunks(nk, 1<<15, func(chunk, lo, hi int) { run(lo, hi, *parts[chunk], n) })
	for _, p := range parts {
		for i := range m {
			row, src := c[i*ldc:i*ldc+n], (*p)[i*n:(i+1)*n]
			for j, v := range src {
				row[j] += v
			}
		}
		putScratch(p)
	}
}

var scratchPool sync.Pool

func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok {
		if cap(*p) >= n {
			*p = (*p)[:n]
			return p
		}
	}
	s := make([]float32, n)
	return &s
}

func putScratch(p *[]float32) {
	if p != nil {
		scratchPool.Put(p)
	}
}

// transpose writes the r×c matrix src (row stride lds) as the c×r matrix dst (row stride
// ldd), in 32×32 tiles, the rows split over goroutines when large.
func transpose(r, c int, src []float32, lds int, dst []float32, ldd int) {
	const tile = 32
	tilesR := (r + tile - 1) / tile
	parallelFor(tilesR, tile*c, func(lo, hi int) {
		for i0 := lo * tile; i0 < min(hi*tile, r); i0 += tile {
			i1 := min(i0+tile, r)
			for j0 := 0; j0 < c; j0 += tile {
				j1 := min(j0+tile, c)
				for i := i0; i < i1; i++ {
					row := src[i*lds+j0 : i*lds+j1]
					for j, v := range row {
						dst[(j0+j)*ldd+i] = v
					}
				}
			}
		}
	})
}

func scaleMat(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

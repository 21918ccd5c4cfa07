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
// Where the CPU has AVX2 and FMA (gemmAsm, amd64) every case goes to sgemmPacked
// (gemm_packed.go): operands packed into panels, an assembly micro-kernel (AVX-512 8×32
// or AVX2 6×16 tiles of C in registers), 4 to 6 times as fast per core as the pure-Go
// kernels below, which are the fallback elsewhere.
//
// Two kernels built on gonum's SSE level-1 and level-2 routines do the work, each on
// operands in its own layout; an operand stored the other way round is first packed
// (transposed) into scratch memory, which costs O(mk) or O(nk) against the product's
// O(mnk). sgemmDot wants A·Bᵀ (rows of both along k) and takes each element of C as one
// long dot product; sgemmGer wants Aᵀ·B (both stored k-major) and adds k rank-1 updates
// to tiles of C that stay in L1. gemmCost picks the cheaper with the packing counted
// (sgemmFwd, for forward passes, always takes sgemmDot).
// Both beat gonum's Sgemm, which cuts k into 64-long pieces and pays a call, a
// horizontal sum and a load and store of C for each (BenchmarkGemm: 1.4 to 2.7 times as
// fast on the MLP800 training shapes, per core). Short inner dimensions (convolutions
// with few channels) go to gonum's Sgemm, whose A·B case is a row axpy, the fastest
// there.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmPick(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false)
}

// sgemmFwd is sgemm for forward passes. The packed kernel sums each element in one
// lane over slices of k, as onnxruntime's MLAS does, and serves forward passes as it
// is (qat's and distill's parity tests against onnxruntime hold at 1e-5). The pure-Go
// path always takes sgemmDot (for k >= dotMinK), whatever the packing costs. A dot product sums in eight interleaved partial sums,
// whose rounding error grows more slowly with k than that of the rank-1 updates'
// running sum; a forward pass is compared with onnxruntime's, and in a quantized graph a
// rounding difference before a QuantizeLinear shows as a whole quantization step.
func sgemmFwd(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmPick(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true)
}

func sgemmPick(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, dotOnly bool) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleMat(m, n, beta, c, ldc)
		return
	}
	if gemmAsm {
		sgemmPacked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if k < dotMinK {
		sgemmShortK(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Elements each kernel would have to pack first.
	var packDot, packGer int
	if transA {
		packDot += m * k
	} else {
		packGer += m * k
	}
	if transB {
		packGer += n * k
	} else {
		packDot += n * k
	}
	useDot := dotOnly || gemmCost(m, n, k, packDot, true) <= gemmCost(m, n, k, packGer, false)
	var bufA, bufB *[]float32
	if useDot {
		if transA {
			bufA = getScratch(m * k)
			transpose(k, m, a, lda, *bufA, k) // A is k×m: make it m×k
			a, lda = *bufA, k
		}
		if !transB {
			bufB = getScratch(n * k)
			transpose(k, n, b, ldb, *bufB, k) // B is k×n: make it n×k
			b, ldb = *bufB, k
		}
		sgemmDot(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	} else {
		if !transA {
			bufA = getScratch(m * k)
			transpose(m, k, a, lda, *bufA, m) // A is m×k: make it k×m
			a, lda = *bufA, m
		}
		if transB {
			bufB = getScratch(n * k)
			transpose(n, k, b, ldb, *bufB, n) // B is n×k: make it k×n
			b, ldb = *bufB, n
		}
		sgemmGer(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
	putScratch(bufA)
	putScratch(bufB)
}

// gemmCost estimates the single-core time of an m×n×k product in picoseconds (from
// BenchmarkGemm on a Sapphire Rapids core): sgemmDot runs at about 28·k/(k+40) GFLOP/s
// (each dot product pays some 40 elements' worth of call and horizontal sum), sgemmGer
// at about 25 GFLOP/s, and packing costs about 1.3 ns an element.
func gemmCost(m, n, k, pack int, dot bool) float64 {
	flops := 2 * float64(m) * float64(n) * float64(k)
	rate := 25.0
	if dot {
		rate = 28 * float64(k) / float64(k+40)
	}
	return flops/rate*1e3 + 1300*float64(pack)
}

// dotMinK is the shortest inner dimension that sgemm computes with its own kernels.
const dotMinK = 32

// kc is the longest slice of the inner dimension that one dot product covers.
const kc = 1024

// dotL1 is the number of float32s of B that sgemmDot keeps in L1 (24 KiB, half of a
// 48 KiB L1 data cache) while it meets every row of A.
const dotL1 = 6 << 10

// gerMR×gerNR is the tile of C that sgemmGer keeps in L1 (16 KiB) while it adds the k
// rank-1 updates; gonum's Sger kernel works on 4×8 blocks.
const gerMR, gerNR = 32, 128

var blas32Impl gonum.Implementation

// sgemmDot computes C = alpha·A·Bᵀ + beta·C, A m×k and B n×k (both rows contiguous),
// each element a dot product over k (in kc slices when k is longer, the first slice
// with beta, the next ones adding). The work is split over goroutines by blocks of C's
// columns (the rows of B) or, when C is narrow, of rows, which goroutines take in turn
// (parallelDynamic). Each element is computed by one goroutine in the same order
// whatever GOMAXPROCS is, so results do not depend on it.
func sgemmDot(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	kk := min(k, kc)
	jb := max(2, dotL1/kk) // B rows per L1 block
	body := func(i0, i1, j0, j1 int) {
		for k0 := 0; k0 < k; k0 += kc {
			k1 := min(k0+kc, k)
			bet := beta
			if k0 > 0 {
				bet = 1
			}
			for jj := j0; jj < j1; jj += jb {
				je := min(jj+jb, j1)
				for i := i0; i < i1; i++ {
					ai := a[i*lda+k0 : i*lda+k1]
					crow := c[i*ldc+jj : i*ldc+je]
					for j := range crow {
						bj := b[(jj+j)*ldb+k0 : (jj+j)*ldb+k1]
						d := alpha * blas32Impl.Sdot(k1-k0, ai, 1, bj, 1)
						switch bet {
						case 0:
							crow[j] = d
						case 1:
							crow[j] += d
						default:
							crow[j] = bet*crow[j] + d
						}
					}
				}
			}
		}
	}
	if n >= 2*jb*workers() || n >= m {
		// Blocks of jb columns, handed out one at a time.
		nb := (n + jb - 1) / jb
		parallelDynamic(nb, 1, jb*m*k, func(lo, hi int) { body(0, m, lo*jb, min(hi*jb, n)) })
		return
	}
	parallelDynamic(m, 4, n*k, func(lo, hi int) { body(lo, hi, 0, n) })
}

// sgemmGer computes C = alpha·Aᵀ·B + beta·C, A k×m and B k×n, as k rank-1 updates
// (gonum's Sger) of each gerMR×gerNR tile of C in turn, so that the tile stays in L1.
// Goroutines take the tiles in turn (parallelDynamic) in column-major order, so that
// tiles in flight at once share a k×gerNR panel of B. Each element is computed by one
// goroutine in the same order whatever GOMAXPROCS is.
func sgemmGer(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	tm := (m + gerMR - 1) / gerMR
	tn := (n + gerNR - 1) / gerNR
	parallelDynamic(tm*tn, 1, gerMR*gerNR*k, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			i0, j0 := (t%tm)*gerMR, (t/tm)*gerNR
			i1, j1 := min(i0+gerMR, m), min(j0+gerNR, n)
			for i := i0; i < i1; i++ {
				row := c[i*ldc+j0 : i*ldc+j1]
				if beta == 0 {
					clear(row)
				} else if beta != 1 {
					for j := range row {
						row[j] *= beta
					}
				}
			}
			for p := range k {
				blas32Impl.Sger(i1-i0, j1-j0, alpha, a[p*lda+i0:p*lda+i1], 1, b[p*ldb+j0:p*ldb+j1], 1, c[i0*ldc+j0:], ldc)
			}
		}
	})
}

// sgemmShortK is sgemm for short inner dimensions, on gonum's Sgemm. gonum's speed
// depends on the layout (BenchmarkGemm): with short k its A·B case (row axpys) is the
// fastest, so when the product is big enough to pay for the copy, a transposed B is
// first transposed into scratch memory, and so is a transposed A.
func sgemmShortK(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	var bufA, bufB *[]float32
	if m*n >= 4096 {
		if transA {
			bufA = getScratch(m * k)
			transpose(k, m, a, lda, *bufA, k) // A is k×m: make it m×k
			a, lda, transA = *bufA, k, false
		}
		if transB {
			bufB = getScratch(k * n)
			transpose(n, k, b, ldb, *bufB, n) // B is n×k: make it k×n
			b, ldb, transB = *bufB, n, false
		}
	}
	gemmCall(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
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

package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// naiveGemm is C = alpha·op(A)·op(B) + beta·C in float64.
func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = float64(alpha)*s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

// TestSgemmKernels checks sgemm and sgemmFwd against a float64 product in every
// transpose case, on shapes that exercise both kernels (sgemmDot, sgemmGer) and the
// short-k path, ragged tile edges, inner dimensions longer than kc, row strides wider
// than the matrix, and alpha and beta; and that sgemmDot and sgemmGer agree with each
// other on each shape.
func TestSgemmKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := []struct{ m, n, k int }{{1, 1, 40}, {5, 7, 33}, {37, 29, 71}, {10, 130, 128}, {130, 10, 200},
		{67, 259, 64}, {3, 300, 2100}, {33, 131, 5}, {64, 64, 31}}
	for _, s := range shapes {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}} {
				name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/alpha=%v/beta=%v", s.m, s.n, s.k, tr[0], tr[1], ab[0], ab[1])
				ta, tb := tr[0], tr[1]
				lda, ldb, ldc := s.k+3, s.n+1, s.n+2
				ar, br := s.m, s.k
				if ta {
					lda, ar = s.m+3, s.k
				}
				if tb {
					ldb, br = s.k+1, s.n
				}
				a, b := randSlice(r, ar*lda), randSlice(r, br*ldb)
				c0 := randSlice(r, s.m*ldc)
				want := naiveGemm(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c0, ldc)
				tol := 1e-5 * math.Sqrt(float64(s.k)) * 4
				for fi, f := range []func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int){sgemm, sgemmFwd} {
					c := append([]float32(nil), c0...)
					f(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c, ldc)
					for i := range s.m {
						for j := range s.n {
							if d := math.Abs(float64(c[i*ldc+j]) - want[i*s.n+j]); d > tol*(1+math.Abs(want[i*s.n+j])) {
								t.Fatalf("%s (variant %d): C[%d,%d] = %v, want %v", name, fi, i, j, c[i*ldc+j], want[i*s.n+j])
							}
						}
						for j := s.n; j < ldc; j++ { // the padding between rows is not touched
							if c[i*ldc+j] != c0[i*ldc+j] {
								t.Fatalf("%s (variant %d): C[%d,%d] beyond n was written", name, fi, i, j)
							}
						}
					}
				}
			}
		}
	}
	// Both kernels directly, on packed operands.
	for _, s := range shapes {
		if s.k < dotMinK {
			continue
		}
		a, b := randSlice(r, s.m*s.k), randSlice(r, s.n*s.k)
		at, bt := make([]float32, s.m*s.k), make([]float32, s.n*s.k)
		transpose(s.m, s.k, a, s.k, at, s.m)
		transpose(s.n, s.k, b, s.k, bt, s.n)
		c1, c2 := make([]float32, s.m*s.n), make([]float32, s.m*s.n)
		sgemmDot(s.m, s.n, s.k, 1, a, s.k, b, s.k, 0, c1, s.n)
		sgemmGer(s.m, s.n, s.k, 1, at, s.m, bt, s.n, 0, c2, s.n)
		for i := range c1 {
			if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-4*(1+math.Abs(float64(c1[i]))) {
				t.Fatalf("%dx%dx%d: sgemmDot %v, sgemmGer %v at %d", s.m, s.n, s.k, c1[i], c2[i], i)
			}
		}
	}
}

// TestSgemmDeterministic checks that sgemm gives the same bits whatever GOMAXPROCS is
// and from run to run (the blocks are handed out dynamically), on every path (packed
// assembly kernels, pure-Go kernels) and in every transpose case.
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 97, 301, 1500
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	run := func(procs int, ta, tb bool) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c := make([]float32, m*n)
		lda, ldb := k, n
		if ta {
			lda = m
		}
		if tb {
			ldb = k
		}
		sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n)
		return c
	}
	for _, path := range gemmPathsHere() {
		restore := path.use()
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			ta, tb := tr[0], tr[1]
			ref := run(1, ta, tb)
			for _, procs := range []int{2, 3, 4, 2} {
				got := run(procs, ta, tb)
				for i := range ref {
					if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
						restore()
						t.Fatalf("%s transA=%v transB=%v GOMAXPROCS=%d: element %d is %v, with 1 it is %v", path.name, ta, tb, procs, i, got[i], ref[i])
					}
				}
			}
		}
		restore()
	}
}

// gemmPath is one of sgemm's paths: the packed assembly kernel (AVX-512 or AVX2) or
// the pure-Go kernels.
type gemmPath struct {
	name        string
	asm, avx512 bool
}

// gemmPathsHere lists the paths this machine can run, the pure-Go one last.
func gemmPathsHere() []gemmPath {
	var ps []gemmPath
	for _, k := range gemmAsmKernels() {
		ps = append(ps, gemmPath{fmt.Sprintf("asm%dx%d", k.mr, k.nr), true, k.nr == 32})
	}
	return append(ps, gemmPath{"go", false, false})
}

// use switches sgemm to the path and returns a function that switches it back.
func (p gemmPath) use() func() {
	asm, w := gemmAsm, gemm512
	gemmAsm, gemm512 = p.asm, p.avx512
	return func() { gemmAsm, gemm512 = asm, w }
}

// absGemm is naiveGemm's bound on rounding: |alpha|·|op(A)|·|op(B)| + |beta|·|C|.
func absGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	abs := func(s []float32) []float32 {
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = float32(math.Abs(float64(v)))
		}
		return out
	}
	al, be := float32(math.Abs(float64(alpha))), float32(math.Abs(float64(beta)))
	return naiveGemm(transA, transB, m, n, k, al, abs(a), lda, abs(b), ldb, be, abs(c), ldc)
}

// TestSgemmPacked checks sgemm on every path this machine has (the packed AVX-512 and
// AVX2/FMA kernels, the pure-Go fallback) against a float64 product, with an error bound of float32 rounding
// (k+2 roundings of the sum of absolute products), in every transpose case: shapes with
// ragged edges in m, n and k (not multiples of the 6×16 tile or of the k slices), k
// longer than gemmKC, single rows and columns, row strides wider than the matrices,
// alpha and beta (beta 0 over a C full of NaN, which must not be read), and the padding
// between C's rows left alone. It also checks that each assembly path agrees with the
// pure-Go one within the sum of their bounds, and that the two assembly kernels (same
// slices of k, one lane per element) give the same bits.
func TestSgemmPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	shapes := []struct{ m, n, k int }{{1, 1, 1}, {1, 17, 3}, {6, 16, 1}, {7, 15, 5}, {12, 32, 64}, {13, 33, 100},
		{100, 10, 385}, {5, 300, 800}, {97, 130, 1000}, {128, 50, 784}, {25, 3, 2000}}
	for _, s := range shapes {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.75}} {
				ta, tb := tr[0], tr[1]
				name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/alpha=%v/beta=%v", s.m, s.n, s.k, ta, tb, ab[0], ab[1])
				lda, ldb, ldc := s.k+5, s.n+3, s.n+7
				ar, br := s.m, s.k
				if ta {
					lda, ar = s.m+2, s.k
				}
				if tb {
					ldb, br = s.k+1, s.n
				}
				a, b := randSlice(r, ar*lda), randSlice(r, br*ldb)
				c0 := randSlice(r, s.m*ldc)
				if ab[1] == 0 {
					for i := range s.m {
						for j := range s.n {
							c0[i*ldc+j] = float32(math.NaN())
						}
					}
				}
				want := naiveGemm(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c0, ldc)
				bound := absGemm(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c0, ldc)
				if ab[1] == 0 {
					want = naiveGemm(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, 0, make([]float32, s.m*ldc), ldc)
					bound = absGemm(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, 0, make([]float32, s.m*ldc), ldc)
				}
				eps := float64(s.k+2) * 0x1p-24
				paths := gemmPathsHere()
				got := make([][]float32, len(paths))
				for pi, path := range paths {
					asm := path.name
					restore := path.use()
					c := append([]float32(nil), c0...)
					sgemm(ta, tb, s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c, ldc)
					restore()
					got[pi] = c
					for i := range s.m {
						for j := range s.n {
							w, g := want[i*s.n+j], float64(c[i*ldc+j])
							if math.IsNaN(g) || math.Abs(g-w) > eps*bound[i*s.n+j]+1e-30 {
								t.Fatalf("%s %s: C[%d,%d] = %v, want %v (bound %g)", name, asm, i, j, g, w, eps*bound[i*s.n+j])
							}
						}
						for j := s.n; j < ldc; j++ {
							if math.Float32bits(c[i*ldc+j]) != math.Float32bits(c0[i*ldc+j]) {
								t.Fatalf("%s %s: C[%d,%d] beyond n was written", name, asm, i, j)
							}
						}
					}
				}
				last := len(paths) - 1
				for pi := range last {
					for i := range s.m {
						for j := range s.n {
							x, y := got[pi][i*ldc+j], got[last][i*ldc+j]
							if d := math.Abs(float64(x - y)); d > 2*eps*bound[i*s.n+j]+1e-30 {
								t.Fatalf("%s: C[%d,%d] %s %v, Go %v", name, i, j, paths[pi].name, x, y)
							}
							// Both assembly kernels compute the same sums in the same order.
							if pi > 0 && math.Float32bits(x) != math.Float32bits(got[0][i*ldc+j]) {
								t.Fatalf("%s: C[%d,%d] %s %v, %s %v", name, i, j, paths[pi].name, x, paths[0].name, got[0][i*ldc+j])
							}
						}
					}
				}
			}
		}
	}
}

// TestGemmKernelAsm checks each assembly micro-kernel against gemmKernelGo (the same
// sums in the same order with fused multiply-adds; the Go version's FMA is float64
// rounded to float32, so a rare double rounding may differ by an ulp of a partial sum):
// all k from 0 to 40 (the 4-way unrolled loop and its tail), B's rows packed or further
// apart, with and without loading C, and columns past the tile left alone.
func TestGemmKernelAsm(t *testing.T) {
	ks := gemmAsmKernels()
	if len(ks) == 0 {
		t.Skip("no assembly micro-kernel on this machine")
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, kern := range ks {
		mr, nr, ldc := kern.mr, kern.nr, kern.nr+4
		for k := range 41 {
			ldb := nr + k%3*5 // packed, and B read in place
			a, b := randSlice(r, k*mr), randSlice(r, k*ldb)
			c0 := randSlice(r, mr*ldc)
			bound := make([]float64, mr*nr)
			for i := range mr {
				for j := range nr {
					for p := range k {
						bound[i*nr+j] += math.Abs(float64(a[p*mr+i]) * float64(b[p*ldb+j]))
					}
				}
			}
			for _, load := range []bool{false, true} {
				c1, c2 := append([]float32(nil), c0...), append([]float32(nil), c0...)
				var ap, bp *float32
				if k > 0 {
					ap, bp = &a[0], &b[0]
				}
				gemmMicro(nr, k, ap, bp, ldb, &c1[0], ldc, 1.5, -0.5, load)
				gemmKernelGo(mr, nr, k, ap, bp, ldb, &c2[0], ldc, 1.5, -0.5, load)
				for i := range mr {
					for j := range ldc {
						x, y := c1[i*ldc+j], c2[i*ldc+j]
						if j >= nr {
							if x != c0[i*ldc+j] {
								t.Fatalf("%dx%d k=%d: column %d beyond the tile was written", mr, nr, k, j)
							}
							continue
						}
						tol := 4*0x1p-24*(1.5*bound[i*nr+j]+0.5*math.Abs(float64(c0[i*ldc+j]))) + 1e-30
						if math.Abs(float64(x-y)) > tol {
							t.Fatalf("%dx%d k=%d load=%v: C[%d,%d] asm %v, Go %v", mr, nr, k, load, i, j, x, y)
						}
					}
				}
			}
		}
	}
}

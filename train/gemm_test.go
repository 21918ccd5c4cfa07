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
// and from run to run (the blocks are handed out dynamically).
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 96, 300, 1500
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	run := func(procs int, ta bool) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c := make([]float32, m*n)
		lda := k
		if ta {
			lda = m
		}
		sgemm(ta, false, m, n, k, 1, a, lda, b, n, 0, c, n)
		return c
	}
	for _, ta := range []bool{false, true} {
		ref := run(1, ta)
		for _, procs := range []int{2, 3, 4, 2} {
			got := run(procs, ta)
			for i := range ref {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("transA=%v GOMAXPROCS=%d: element %d is %v, with 1 it is %v", ta, procs, i, got[i], ref[i])
				}
			}
		}
	}
}

package train

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// blockedGemm is a hand-written cache-blocked, 4×4 register-blocked kernel for
// C += A·B (row-major, no transposes), kept only to compare against gonum.
func blockedGemm(m, n, k int, a, b, c []float32) {
	const mc, kc = 64, 256
	for p0 := 0; p0 < k; p0 += kc {
		p1 := min(p0+kc, k)
		for i0 := 0; i0 < m; i0 += mc {
			i1 := min(i0+mc, m)
			i := i0
			for ; i+4 <= i1; i += 4 {
				j := 0
				for ; j+4 <= n; j += 4 {
					var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
					for p := p0; p < p1; p++ {
						bp := b[p*n+j : p*n+j+4 : p*n+j+4]
						b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
						a0, a1, a2, a3 := a[i*k+p], a[(i+1)*k+p], a[(i+2)*k+p], a[(i+3)*k+p]
						c00 += a0 * b0
						c01 += a0 * b1
						c02 += a0 * b2
						c03 += a0 * b3
						c10 += a1 * b0
						c11 += a1 * b1
						c12 += a1 * b2
						c13 += a1 * b3
						c20 += a2 * b0
						c21 += a2 * b1
						c22 += a2 * b2
						c23 += a2 * b3
						c30 += a3 * b0
						c31 += a3 * b1
						c32 += a3 * b2
						c33 += a3 * b3
					}
					c[i*n+j] += c00
					c[i*n+j+1] += c01
					c[i*n+j+2] += c02
					c[i*n+j+3] += c03
					c[(i+1)*n+j] += c10
					c[(i+1)*n+j+1] += c11
					c[(i+1)*n+j+2] += c12
					c[(i+1)*n+j+3] += c13
					c[(i+2)*n+j] += c20
					c[(i+2)*n+j+1] += c21
					c[(i+2)*n+j+2] += c22
					c[(i+2)*n+j+3] += c23
					c[(i+3)*n+j] += c30
					c[(i+3)*n+j+1] += c31
					c[(i+3)*n+j+2] += c32
					c[(i+3)*n+j+3] += c33
				}
				for ; j < n; j++ {
					for r := i; r < i+4; r++ {
						var s float32
						for p := p0; p < p1; p++ {
							s += a[r*k+p] * b[p*n+j]
						}
						c[r*n+j] += s
					}
				}
			}
			for ; i < i1; i++ {
				for p := p0; p < p1; p++ {
					av := a[i*k+p]
					for j := range n {
						c[i*n+j] += av * b[p*n+j]
					}
				}
			}
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func TestBlockedGemmMatchesGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m, n, k := 37, 29, 71
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	c1, c2 := make([]float32, m*n), make([]float32, m*n)
	sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c1, n)
	blockedGemm(m, n, k, a, b, c2)
	for i := range c1 {
		if d := c1[i] - c2[i]; d > 1e-3 || d < -1e-3 {
			t.Fatalf("element %d: gonum %v, blocked %v", i, c1[i], c2[i])
		}
	}
}

// BenchmarkGemm reports GFLOP/s of sgemm on each path this machine has (asm8x32: the
// packed AVX-512 kernel, asm6x16: the packed AVX2/FMA kernel, go: the pure-Go kernels,
// our dot-product and rank-1-update kernels or gonum's Sgemm for short inner
// dimensions) and of gonum's Sgemm called directly, in three transpose cases, on the
// MLP800 training shapes, a square one and convolution shapes (mnist_cnn's second Conv
// over a block of samples), and of the hand-written blocked kernel (rows split over
// goroutines) for comparison. Run it with GOMAXPROCS=1 for per-core rates; on a shared
// machine cpu-GFLOP/s (by CPU time) is the one to read.
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := []struct{ m, n, k int }{{128, 800, 784}, {800, 784, 128}, {128, 784, 800}, {512, 512, 512},
		{32, 8192, 144}, {144, 8192, 32}, {32, 144, 8192}}
	for _, s := range shapes {
		a := randSlice(r, s.m*s.k)
		bb := randSlice(r, s.k*s.n)
		c := make([]float32, s.m*s.n)
		flops := 2 * float64(s.m*s.n*s.k)
		for _, tr := range []struct {
			name   string
			ta, tb bool
		}{{"NN", false, false}, {"NT", false, true}, {"TN", true, false}} {
			lda, ldb := s.k, s.n
			if tr.ta {
				lda = s.m
			}
			if tr.tb {
				ldb = s.k
			}
			for _, path := range gemmPathsHere() {
				b.Run(fmt.Sprintf("%s_%s_%dx%dx%d", path.name, tr.name, s.m, s.n, s.k), func(b *testing.B) {
					defer path.use()()
					cpu0 := processCPU()
					for b.Loop() {
						sgemm(tr.ta, tr.tb, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
					}
					reportGFLOPS(b, flops, cpu0)
				})
			}
			b.Run(fmt.Sprintf("gonum_%s_%dx%dx%d", tr.name, s.m, s.n, s.k), func(b *testing.B) {
				cpu0 := processCPU()
				for b.Loop() {
					gemmCall(tr.ta, tr.tb, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				reportGFLOPS(b, flops, cpu0)
			})
		}
		b.Run(fmt.Sprintf("blocked_NN_%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			cpu0 := processCPU()
			for b.Loop() {
				clear(c)
				parallelFor(s.m/4, s.n*s.k*4, func(lo, hi int) {
					blockedGemm((hi-lo)*4, s.n, s.k, a[lo*4*s.k:], bb, c[lo*4*s.n:])
				})
			}
			reportGFLOPS(b, flops, cpu0)
		})
	}
}

// reportGFLOPS reports a benchmark's GFLOP/s by wall time and, where the CPU time is
// measured, by the process's CPU time since cpu0 (cpu-GFLOP/s): with GOMAXPROCS=1 that
// is the rate per core, which another process on the machine does not lower.
func reportGFLOPS(b *testing.B, flops float64, cpu0 time.Duration) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GFLOP/s")
	}
}

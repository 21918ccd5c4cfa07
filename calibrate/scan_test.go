package calibrate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// scanInput is n values of a mix: normal, with ±0, and NaN/±Inf at rate bad.
func scanInput(rng *rand.Rand, n int, bad float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r := rng.Float64(); {
		case r < bad:
			x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[rng.IntN(3)]
		case r < bad+0.1:
			x[i] = float32(math.Copysign(0, rng.Float64()-0.5))
		default:
			x[i] = float32(rng.NormFloat64()*3 + 100)
		}
	}
	return x
}

// withKernel runs f with the assembly kernel on or off.
func withKernel(t testing.TB, on bool, f func()) {
	old := scanAVX2
	scanAVX2 = on
	defer func() { scanAVX2 = old }()
	f()
}

// The assembly kernel and the pure-Go scan give bit-identical results: every length
// (whole blocks, tails, blocks cut by non-finite values), all-finite and not.
func TestScanKernelMatchesGo(t *testing.T) {
	if !scanAVX2 {
		t.Skip("no AVX2 kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bad := range []float64{0, 0.001, 0.2, 1} {
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4099} {
			x := scanInput(rng, n, bad)
			var asm, pure batchStats
			withKernel(t, true, func() { asm = scan(x) })
			withKernel(t, false, func() { pure = scan(x) })
			if fmt.Sprintf("%#v", asm) != fmt.Sprintf("%#v", pure) ||
				math.Float32bits(asm.min) != math.Float32bits(pure.min) || math.Float32bits(asm.max) != math.Float32bits(pure.max) {
				t.Errorf("n=%d bad=%g: kernel %+v, Go %+v", n, bad, asm, pure)
			}
		}
	}
}

// scan against a float64 reference: exact extremes and counts, mean and variance to
// float64 rounding.
func TestScanAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bad := range []float64{0, 0.01, 1} {
		for _, n := range []int{1, 7, 16, 50, 1 << 16} {
			x := scanInput(rng, n, bad)
			var mn, mx float32 = float32(math.Inf(1)), float32(math.Inf(-1))
			var cnt, nonFinite int64
			var sum float64
			for _, v := range x {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					nonFinite++
					continue
				}
				mn, mx = min(mn, v), max(mx, v)
				sum += float64(v)
				cnt++
			}
			var m2 float64
			for _, v := range x {
				if d := float64(v) - sum/float64(cnt); !math.IsNaN(d) && !math.IsInf(d, 0) {
					m2 += d * d
				}
			}
			b := scan(x)
			if b.n != cnt || b.bad != nonFinite || b.min != mn || b.max != mx {
				t.Errorf("n=%d bad=%g: got n %d bad %d [%g, %g], want %d %d [%g, %g]", n, bad, b.n, b.bad, b.min, b.max, cnt, nonFinite, mn, mx)
			}
			if cnt == 0 {
				continue
			}
			mean := b.shift + b.s1/float64(b.n)
			vr := b.s2/float64(b.n) - (b.s1/float64(b.n))*(b.s1/float64(b.n))
			if math.Abs(mean-sum/float64(cnt)) > 1e-9*math.Abs(mean) || math.Abs(vr-m2/float64(cnt)) > 1e-7*(m2/float64(cnt))+1e-12 {
				t.Errorf("n=%d bad=%g: mean %g var %g, want %g %g", n, bad, mean, vr, sum/float64(cnt), m2/float64(cnt))
			}
		}
	}
}

// BenchmarkScan is the scan of a 1 MiB activation (a resnet_small batch of 16), with the
// assembly kernel and in pure Go.
func BenchmarkScan(b *testing.B) {
	x := scanInput(rand.New(rand.NewPCG(5, 6)), 1<<18, 0)
	for _, on := range []bool{true, false} {
		if on && !scanAVX2 {
			continue
		}
		b.Run(map[bool]string{true: "avx2", false: "go"}[on], func(b *testing.B) {
			withKernel(b, on, func() {
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					scan(x)
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/value")
		})
	}
}

// The AVX2 binning kernel counts every bin, zero and smallest |x| as the Go loop does:
// signed and |x| histograms; scales from subnormal to huge (bin widths from 2^-150 up);
// windows far from 0; zeros of both signs.
func TestBinKernelMatchesGo(t *testing.T) {
	if !scanAVX2 {
		t.Skip("no AVX2 kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, abs := range []bool{false, true} {
		for _, scale := range []float64{1e-41, 1e-30, 1e-3, 1, 1e3, 1e30} {
			for _, shift := range []float64{0, 1000} {
				var batches [][]float32
				for range 3 {
					x := make([]float32, 3*splitMin+13)
					for i := range x {
						switch r := rng.Float64(); {
						case r < 0.2:
							x[i] = float32(math.Copysign(0, rng.Float64()-0.5))
						default:
							x[i] = float32((rng.NormFloat64() + shift) * scale)
						}
					}
					batches = append(batches, x)
				}
				var hs [2]*Histogram
				for j, on := range []bool{true, false} {
					withKernel(t, on, func() {
						hs[j] = NewHistogram(2048, abs)
						for _, x := range batches {
							hs[j].Observe(x)
						}
					})
				}
				lo0, w0, c0 := hs[0].Bins()
				lo1, w1, c1 := hs[1].Bins()
				if lo0 != lo1 || w0 != w1 || fmt.Sprint(c0) != fmt.Sprint(c1) || hs[0].Zeros() != hs[1].Zeros() ||
					math.Float32bits(hs[0].amin) != math.Float32bits(hs[1].amin) || hs[0].Count() != hs[1].Count() {
					t.Errorf("abs %v scale %g shift %g: kernel and Go histograms differ (zeros %d/%d, amin %g/%g)",
						abs, scale, shift, hs[0].Zeros(), hs[1].Zeros(), hs[0].amin, hs[1].amin)
				}
			}
		}
	}
}

// The binning kernel never counts outside the histogram: it stops before the block of a
// value outside the window and leaves that block's zeros and smallest |x| alone.
func TestBinKernelStopsOutsideWindow(t *testing.T) {
	if !scanAVX2 {
		t.Skip("no AVX2 kernel on this machine")
	}
	const n = 64
	for _, abs := range []bool{false, true} {
		x := make([]float32, 40) // 5 blocks; blocks 0 and 1 in the window, block 2 not
		for i := range x {
			x[i] = 1
		}
		x[3], x[20], x[21] = 0, 0, 1e9
		part := make([]uint32, 4*n)
		amin := float32(math.Inf(1))
		done, zeros := binBlocks(x, abs, 0, 0, part, n, &amin)
		var total uint32
		for _, c := range part {
			total += c
		}
		if done != 16 || zeros != 1 || total != 16 || abs && amin != 0 {
			t.Errorf("abs %v: binned %d values (%d counted, %d zeros, amin %g); want 16, 16, 1, 0", abs, done, total, zeros, amin)
		}
	}
}

package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX2 Adam kernel gives bit-identical weights and moments to the Go loop, for Adam
// (L2) and AdamW (decay), across lengths with and without a tail, over several steps.
func TestAdamKernelMatchesGo(t *testing.T) {
	if !adamAsm {
		t.Skip("no Adam kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{8, 9, 63, 1000} {
		for _, cfg := range []struct{ l2, decay float32 }{{0, 1}, {1e-4, 1}, {0, 0.9999}} {
			w, g := make([]float32, n), make([]float32, n)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			state := func() ([]float32, []float32, []float32) {
				return append([]float32(nil), w...), make([]float32, n), make([]float32, n)
			}
			wa, ma, va := state()
			wg, mg, vg := state()
			for step := 1; step <= 5; step++ {
				for i := range g {
					g[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(6)-3)))
				}
				bc2 := 1 - math.Pow(0.999, float64(step))
				args := func(w, m, v []float32) {
					adamUpdate(w, g, m, v, 0.5, cfg.l2, 0.9, 0.999, float32(1/math.Sqrt(bc2)), 1e-8, cfg.decay, 1e-3)
				}
				args(wa, ma, va)
				adamAsm = false
				args(wg, mg, vg)
				adamAsm = true
			}
			for i := range w {
				if math.Float32bits(wa[i]) != math.Float32bits(wg[i]) || math.Float32bits(ma[i]) != math.Float32bits(mg[i]) || math.Float32bits(va[i]) != math.Float32bits(vg[i]) {
					t.Fatalf("n=%d %+v, element %d: kernel w %g m %g v %g, Go %g %g %g", n, cfg, i, wa[i], ma[i], va[i], wg[i], mg[i], vg[i])
				}
			}
		}
	}
}

// BenchmarkAdamUpdate is one Adam update of 1M parameters, kernel and Go.
func BenchmarkAdamUpdate(b *testing.B) {
	n := 1 << 20
	w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%7) - 3
	}
	for _, asm := range []bool{true, false} {
		if asm && !adamAsm {
			continue
		}
		b.Run(map[bool]string{true: "avx2", false: "go"}[asm], func(b *testing.B) {
			old := adamAsm
			adamAsm = asm
			defer func() { adamAsm = old }()
			for b.Loop() {
				adamUpdate(w, g, m, v, 1, 0, 0.9, 0.999, 1.2, 1e-8, 1, 1e-3)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/param")
		})
	}
}

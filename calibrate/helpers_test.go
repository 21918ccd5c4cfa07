package calibrate

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// rng is a seeded source for reproducible tests.
func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// normals returns n samples of N(mu, sigma²) as float32.
func normals(r *rand.Rand, n int, mu, sigma float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(mu + sigma*r.NormFloat64())
	}
	return x
}

// uniforms returns n samples of U(lo, hi) as float32.
func uniforms(r *rand.Rand, n int, lo, hi float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return x
}

// batches splits x into batches of size n.
func batches(x []float32, n int) [][]float32 {
	var out [][]float32
	for len(x) > n {
		out = append(out, x[:n])
		x = x[n:]
	}
	return append(out, x)
}

// mustPanic fails t unless f panics with a message starting "calibrate: ".
func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic", name)
			return
		}
		if s, ok := r.(string); !ok || !strings.HasPrefix(s, "calibrate: ") {
			t.Errorf("%s: panic %v, want a \"calibrate: ...\" string", name, r)
		}
	}()
	f()
}

// closeRel reports whether a and b agree to a relative tolerance (absolute near 0).
func closeRel(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// refBins is the reference histogram: every finite value's absolute bin at width 2^k
// on the sign-magnitude grid (of |x| when abs), counted directly.
func refBins(values [][]float32, k int, abs bool) map[int64]int64 {
	m := map[int64]int64{}
	w := math.Ldexp(1, k)
	for _, b := range values {
		for _, v := range b {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				continue
			}
			x := float64(v)
			if abs {
				x = math.Abs(x)
			}
			var a int64
			if x >= 0 {
				a = int64(math.Floor(x / w))
			} else {
				a = -int64(math.Floor(-x/w)) - 1
			}
			m[a]++
		}
	}
	return m
}

// binsOf returns h's counts by absolute bin index, and its k.
func binsOf(h *Histogram) (map[int64]int64, int) {
	lo, w, counts := h.Bins()
	m := map[int64]int64{}
	if len(counts) == 0 {
		return m, 0
	}
	first := int64(math.Round(lo / w))
	for i, c := range counts {
		if c != 0 {
			m[first+int64(i)] = c
		}
	}
	_, e := math.Frexp(w)
	return m, e - 1
}

// equalBins compares two bin maps.
func equalBins(t *testing.T, what string, got, want map[int64]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d occupied bins, want %d", what, len(got), len(want))
	}
	bad := 0
	for a, c := range want {
		if got[a] != c {
			if bad < 5 {
				t.Errorf("%s: bin %d holds %d, want %d", what, a, got[a], c)
			}
			bad++
		}
	}
}

package calibrate

import (
	"fmt"
	"testing"
)

const benchValues = 1 << 20

// perValue reports the time per folded value.
func perValue(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/value")
	b.SetBytes(int64(4 * n))
}

func BenchmarkObserveMinMax(b *testing.B) {
	x := normals(rng(30), benchValues, 0, 1)
	m := NewMinMaxCollector(DefaultAveragingConstant)
	for b.Loop() {
		m.Observe(x)
	}
	perValue(b, len(x))
}

func BenchmarkObserveHistogram(b *testing.B) {
	x := normals(rng(31), benchValues, 0, 1)
	// After a ReLU about half the values are 0: back-to-back increments of one bin.
	relu := make([]float32, len(x))
	for i, v := range x {
		relu[i] = max(v, 0)
	}
	for _, data := range []struct {
		name string
		x    []float32
	}{{"normal", x}, {"relu", relu}} {
		for _, abs := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/abs=%v", data.name, abs), func(b *testing.B) {
				h := NewHistogram(DefaultBins, abs)
				for b.Loop() {
					h.Observe(data.x)
				}
				perValue(b, len(data.x))
			})
		}
	}
}

// BenchmarkSetObserve is what collect.Run pays per value: minmax alone, or the moments
// pass plus the histogram pass.
func BenchmarkSetObserve(b *testing.B) {
	x := normals(rng(32), benchValues, 0, 1)
	for _, m := range Methods {
		b.Run(string(m), func(b *testing.B) {
			s := NewSet([]string{"t"}, SetOptions{Method: m})
			for b.Loop() {
				s.Observe("t", x)
			}
			perValue(b, len(x))
		})
	}
}

// BenchmarkRange is the cost of choosing one tensor's range from a full 2048-bin
// histogram (the entropy search dominates Table).
func BenchmarkRange(b *testing.B) {
	x := normals(rng(33), benchValues, 0, 1)
	for _, o := range []SetOptions{
		{Method: Percentile}, {Method: Percentile, Symmetric: true},
		{Method: Entropy, Symmetric: true},
		{Method: MSE}, {Method: MSE, Symmetric: true},
	} {
		b.Run(fmt.Sprintf("%s/symmetric=%v", o.Method, o.Symmetric), func(b *testing.B) {
			s := NewSet([]string{"t"}, o)
			s.Observe("t", x)
			for b.Loop() {
				s.Range("t")
			}
		})
	}
}

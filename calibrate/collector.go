package calibrate

import (
	"fmt"
	"math"
)

// Collector folds batches of activation values into per-tensor statistics whose size does
// not depend on the number of values or batches: each call of Observe folds one batch at
// once and keeps nothing of it.
//
// Non-finite values (NaN, ±Inf) never reach the statistics: they are counted, and the
// count is reported by NonFinite so the caller can name the tensor.
type Collector interface {
	// Observe folds one batch. An empty batch, or one with no finite value, changes
	// nothing but the non-finite count.
	Observe(x []float32)
	// Merge folds in the state of other, a collector of the same concrete type and
	// configuration that saw other batches; the batches of other count as coming after
	// those of the receiver (this matters only for the moving average). Merge panics when
	// the collectors are not compatible.
	Merge(other Collector)
	// Count is the number of finite values folded.
	Count() int64
	// NonFinite is the number of NaN and ±Inf values seen and left out.
	NonFinite() int64
	// MemoryBytes approximates the collector's state size in bytes.
	MemoryBytes() int
}

// MinMaxCollector tracks the extremes, count, mean and standard deviation of the finite
// values, and, when an averaging constant c is set, moving averages of the per-batch
// minimum and maximum:
//
//	ema₁ = batch₁,  emaⱼ = c·batchⱼ + (1-c)·emaⱼ₋₁
//
// (onnxruntime's MinMaxCalibrater moving_average update, old + c·(new-old)). Batches
// without finite values do not move the averages.
//
// The mean and variance are folded with Chan et al.'s pairwise update: each batch's
// mean and sum of squared deviations are computed in float64 with the batch's first
// finite value as shift, then combined, so a large mean does not cancel the variance.
type MinMaxCollector struct {
	c        float64 // averaging constant; 0: no moving average
	n, bad   int64
	min, max float32
	mean, m2 float64

	batches            int64   // batches with finite values
	emaMin, emaMax     float64 // moving averages
	firstMin, firstMax float64 // the first batch's extremes, for an exact Merge of the averages
}

// DefaultAveragingConstant is onnxruntime's default constant for the moving average of
// batch minima and maxima (CalibMovingAverageConstant).
const DefaultAveragingConstant = 0.01

// NewMinMaxCollector returns an empty collector. averagingConstant c in (0, 1] turns the
// moving average of batch extremes on (DefaultAveragingConstant is onnxruntime's
// default); 0 leaves it off. Other values panic.
func NewMinMaxCollector(averagingConstant float64) *MinMaxCollector {
	if !(averagingConstant >= 0 && averagingConstant <= 1) {
		panic(fmt.Sprintf("calibrate: averaging constant %g outside [0, 1]", averagingConstant))
	}
	return &MinMaxCollector{c: averagingConstant, min: float32(math.Inf(1)), max: float32(math.Inf(-1))}
}

// Observe folds the batch x.
func (m *MinMaxCollector) Observe(x []float32) { m.fold(scan(x)) }

// fold adds one scanned batch.
func (m *MinMaxCollector) fold(b batchStats) {
	m.bad += b.bad
	if b.n == 0 {
		return
	}
	bn := float64(b.n)
	bmean := b.shift + b.s1/bn
	bm2 := math.Max(0, b.s2-b.s1*b.s1/bn)
	m.combine(b.n, bmean, bm2)
	m.min, m.max = min32(m.min, b.min), max32(m.max, b.max)
	lo, hi := float64(b.min), float64(b.max)
	if m.batches == 0 {
		m.emaMin, m.emaMax = lo, hi
		m.firstMin, m.firstMax = lo, hi
	} else {
		m.emaMin += m.c * (lo - m.emaMin)
		m.emaMax += m.c * (hi - m.emaMax)
	}
	m.batches++
}

// combine merges (n, mean, m2) of another part into m (Chan, Golub and LeVeque):
//
//	δ = mean_b - mean_a,  mean = mean_a + δ·n_b/n,  M2 = M2_a + M2_b + δ²·n_a·n_b/n
func (m *MinMaxCollector) combine(n int64, mean, m2 float64) {
	if m.n == 0 {
		m.n, m.mean, m.m2 = n, mean, m2
		return
	}
	na, nb := float64(m.n), float64(n)
	tot := na + nb
	d := mean - m.mean
	m.mean += d * nb / tot
	m.m2 += m2 + d*d*na*nb/tot
	m.n += n
}

// Merge folds in o, a *MinMaxCollector with the same averaging constant, whose batches
// come after the receiver's. The moving averages merge exactly for that order:
//
//	ema_ab = ema_b + (1-c)^batches_b · (ema_a - first_b)
//
// where first_b is o's first batch extreme. Batches folded in interleaved order by two
// collectors cannot be reproduced and get this formula too.
func (m *MinMaxCollector) Merge(other Collector) {
	o, ok := other.(*MinMaxCollector)
	if !ok {
		panic(fmt.Sprintf("calibrate: cannot merge %T into *MinMaxCollector", other))
	}
	if o == m {
		panic("calibrate: cannot merge a collector into itself")
	}
	if o.c != m.c {
		panic(fmt.Sprintf("calibrate: cannot merge collectors with averaging constants %g and %g", m.c, o.c))
	}
	m.bad += o.bad
	if o.n == 0 {
		return
	}
	m.combine(o.n, o.mean, o.m2)
	m.min, m.max = min32(m.min, o.min), max32(m.max, o.max)
	if m.batches == 0 {
		m.emaMin, m.emaMax = o.emaMin, o.emaMax
		m.firstMin, m.firstMax = o.firstMin, o.firstMax
	} else {
		f := math.Pow(1-m.c, float64(o.batches))
		m.emaMin = o.emaMin + f*(m.emaMin-o.firstMin)
		m.emaMax = o.emaMax + f*(m.emaMax-o.firstMax)
	}
	m.batches += o.batches
}

// Count is the number of finite values folded.
func (m *MinMaxCollector) Count() int64 { return m.n }

// NonFinite is the number of NaN and ±Inf values left out.
func (m *MinMaxCollector) NonFinite() int64 { return m.bad }

// Batches is the number of batches that had finite values.
func (m *MinMaxCollector) Batches() int64 { return m.batches }

// Min is the smallest finite value (0 before any).
func (m *MinMaxCollector) Min() float32 {
	if m.n == 0 {
		return 0
	}
	return m.min
}

// Max is the largest finite value (0 before any).
func (m *MinMaxCollector) Max() float32 {
	if m.n == 0 {
		return 0
	}
	return m.max
}

// Mean is the mean of the finite values (0 before any).
func (m *MinMaxCollector) Mean() float64 { return m.mean }

// Sum is the sum of the finite values, Count·Mean.
func (m *MinMaxCollector) Sum() float64 { return m.mean * float64(m.n) }

// Std is the population standard deviation of the finite values, sqrt(M2/Count) (0
// before any).
func (m *MinMaxCollector) Std() float64 {
	if m.n == 0 {
		return 0
	}
	return math.Sqrt(m.m2 / float64(m.n))
}

// AveragingConstant is the moving average's constant (0: off).
func (m *MinMaxCollector) AveragingConstant() float64 { return m.c }

// Moving returns the moving averages of the batch minima and maxima; ok is false when the
// moving average is off or no batch had finite values.
func (m *MinMaxCollector) Moving() (min, max float32, ok bool) {
	if m.c == 0 || m.batches == 0 {
		return 0, 0, false
	}
	return float32(m.emaMin), float32(m.emaMax), true
}

// MemoryBytes is the collector's size: a fixed struct.
func (m *MinMaxCollector) MemoryBytes() int { return 112 }

package calibrate

import (
	"fmt"
	"maps"
	"runtime"
	"sync"
)

// SetOptions configures a Set. Zero fields take the defaults.
type SetOptions struct {
	// Method chooses the ranges (required).
	Method Method
	// Percentile is the percentile method's p in [50, 100] (0: DefaultPercentile).
	Percentile float64
	// Symmetric makes every range ±max(|min|, |max|); symmetric methods work on the |x|
	// histogram, asymmetric ones on the signed histogram (the entropy method always on
	// |x|, as TensorRT's).
	Symmetric bool
	// MovingAverage, in (0, 1], is the constant c of the moving average of batch extremes
	// the minmax method uses instead of the global extremes (DefaultAveragingConstant is
	// onnxruntime's); 0 leaves it off.
	MovingAverage float64
	// Bins is the number of histogram bins (0: DefaultBins).
	Bins int
	// QuantizedBins is the entropy method's number of levels (0: DefaultQuantizedBins).
	QuantizedBins int
	// Bits is the integer width the mse method optimises for (0: DefaultBits).
	Bits int
	// Bounded gives tensors whose range is the bound of the op that makes them, whatever
	// the method: outputs of ops bounded by construction (collect.BoundedOutputs), which
	// have no outlier tail for percentile, entropy or mse to cut; cutting one clips real
	// values (a sigmoid gate's [0.17, 0.83] cut to [0.17, 0.19] by entropy on its few
	// values per sample), and calibration data may not reach the top of the bound.
	Bounded map[string][2]float32
}

// same reports whether o and p are the same options.
func (o SetOptions) same(p SetOptions) bool {
	return o.Method == p.Method && o.Percentile == p.Percentile && o.Symmetric == p.Symmetric &&
		o.MovingAverage == p.MovingAverage && o.Bins == p.Bins && o.QuantizedBins == p.QuantizedBins &&
		o.Bits == p.Bits && maps.Equal(o.Bounded, p.Bounded)
}

// withDefaults fills the zero fields and panics on invalid ones.
func (o SetOptions) withDefaults() SetOptions {
	m, err := ParseMethod(string(o.Method))
	if err != nil {
		panic("calibrate: " + err.Error())
	}
	o.Method = m
	if o.Percentile == 0 {
		o.Percentile = DefaultPercentile
	}
	if !(o.Percentile >= 50 && o.Percentile <= 100) {
		panic(fmt.Sprintf("calibrate: percentile %g outside [50, 100]", o.Percentile))
	}
	if !(o.MovingAverage >= 0 && o.MovingAverage <= 1) {
		panic(fmt.Sprintf("calibrate: moving average constant %g outside [0, 1]", o.MovingAverage))
	}
	if o.Bins == 0 {
		o.Bins = DefaultBins
	}
	if o.Bins < minBins || o.Bins > maxBins {
		panic(fmt.Sprintf("calibrate: %d histogram bins (want %d to %d)", o.Bins, minBins, maxBins))
	}
	if o.QuantizedBins == 0 {
		o.QuantizedBins = DefaultQuantizedBins
	}
	if o.QuantizedBins < 2 {
		panic(fmt.Sprintf("calibrate: %d quantized bins (want at least 2)", o.QuantizedBins))
	}
	if o.Bits == 0 {
		o.Bits = DefaultBits
	}
	if o.Bits < 2 || o.Bits > 16 {
		panic(fmt.Sprintf("calibrate: %d bits (want 2 to 16)", o.Bits))
	}
	return o
}

// Set holds the collectors of a list of tensors, as collect.Run feeds them: per tensor a
// MinMaxCollector (extremes, mean, std, non-finite count, moving average), and for the
// histogram methods a Histogram of DefaultBins bins, over |x| for symmetric methods and
// for entropy, over x otherwise.
//
// Observe may be called concurrently, for different tensors or the same one (calls on one
// tensor are serialised by a lock; for the moving average the batches of a tensor should
// come in order). Merge and Table must not run concurrently with Observe.
type Set struct {
	opts    SetOptions
	names   []string
	tensors map[string]*tensorStats
}

// tensorStats is one tensor's collectors.
type tensorStats struct {
	mu sync.Mutex
	mm *MinMaxCollector
	h  *Histogram // nil for minmax
}

// NewSet returns empty collectors for names under the options. Duplicate names and
// invalid options panic.
func NewSet(names []string, opts SetOptions) *Set {
	opts = opts.withDefaults()
	s := &Set{opts: opts, names: append([]string(nil), names...), tensors: make(map[string]*tensorStats, len(names))}
	for _, n := range names {
		if _, dup := s.tensors[n]; dup {
			panic(fmt.Sprintf("calibrate: tensor %q listed twice", n))
		}
		s.tensors[n] = s.newStats()
	}
	return s
}

func (s *Set) newStats() *tensorStats {
	t := &tensorStats{mm: NewMinMaxCollector(s.opts.MovingAverage)}
	if s.opts.Method != MinMax {
		// A symmetric range needs only |x|; an asymmetric one keeps the sign (the entropy
		// method then searches each side).
		t.h = NewHistogram(s.opts.Bins, s.opts.Symmetric)
	}
	return t
}

// Options returns the options with defaults filled in.
func (s *Set) Options() SetOptions { return s.opts }

// Names returns the tensors' names in the order given to NewSet.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// stats returns the named tensor's collectors; an unknown name panics.
func (s *Set) stats(name string) *tensorStats {
	t := s.tensors[name]
	if t == nil {
		panic(fmt.Sprintf("calibrate: tensor %q is not in the set", name))
	}
	return t
}

// Observe folds one batch of the named tensor's values (a name not given to NewSet
// panics): one scan for the extremes and moments, then, for the histogram methods, the
// histogram (its window grown to the batch's extremes first).
func (s *Set) Observe(name string, x []float32) {
	t := s.stats(name)
	b := scan(x) // reads only x: outside the lock
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mm.fold(b)
	if t.h != nil {
		t.h.observe(x, b)
	}
}

// Merge folds o, a set of the same tensors and options fed other batches, into s (o's
// batches counting as after s's). Sets that differ panic.
func (s *Set) Merge(o *Set) {
	if s == o {
		panic("calibrate: cannot merge a set into itself")
	}
	if !s.opts.same(o.opts) || len(s.tensors) != len(o.tensors) {
		panic("calibrate: cannot merge sets of different tensors or options")
	}
	for name, t := range s.tensors {
		u := o.tensors[name]
		if u == nil {
			panic(fmt.Sprintf("calibrate: cannot merge sets of different tensors (%q)", name))
		}
		t.mu.Lock()
		u.mu.Lock()
		t.mm.Merge(u.mm)
		if t.h != nil {
			t.h.Merge(u.h)
		}
		u.mu.Unlock()
		t.mu.Unlock()
	}
}

// NonFinite returns the named tensor's count of NaN and ±Inf values.
func (s *Set) NonFinite(name string) int64 {
	t := s.stats(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mm.NonFinite()
}

// Histogram returns the named tensor's histogram (nil for the minmax method). It is the
// set's own: read it only while nothing observes.
func (s *Set) Histogram(name string) *Histogram { return s.stats(name).h }

// Collector returns the named tensor's MinMaxCollector (the set's own, as Histogram).
func (s *Set) Collector(name string) *MinMaxCollector { return s.stats(name).mm }

// Range chooses the named tensor's range with the set's method; see TensorRange for the
// fields. A tensor without finite values gets Count 0 and the range [0, 0].
func (s *Set) Range(name string) *TensorRange {
	t := s.stats(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.rangeOf(name, t)
}

func (s *Set) rangeOf(name string, t *tensorStats) *TensorRange {
	m := t.mm
	r := &TensorRange{Count: m.Count(), NonFinite: m.NonFinite()}
	if m.Count() == 0 {
		return r
	}
	r.ObservedMin, r.ObservedMax = m.Min(), m.Max()
	r.Mean, r.Std = m.Mean(), m.Std()
	o := s.opts
	bound, bounded := o.Bounded[name]
	switch {
	case bounded:
		r.Min, r.Max = min(bound[0], m.Min()), max(bound[1], m.Max())
		r.Rule = "bounded"
	case o.Method == MinMax:
		r.Min, r.Max = MinMaxRange(m, o.Symmetric)
	case o.Method == Percentile:
		r.Min, r.Max = PercentileRange(t.h, o.Percentile, o.Symmetric)
	case o.Method == Entropy:
		r.Min, r.Max = EntropyRange(t.h, o.QuantizedBins, o.Symmetric)
	case o.Method == MSE:
		r.Min, r.Max = MSERange(t.h, o.Bits, o.Symmetric)
	}
	if o.Symmetric {
		r.Min, r.Max = symmetricRange(r.Min, r.Max)
	}
	return r
}

// Table chooses every tensor's range (the tensors in parallel, the entropy search being
// the costly part) and returns the table, SchemaVersion, Method, Percentile (percentile
// method only), Symmetric, MovingAverage (minmax only) and Tensors filled; the caller
// sets GraphSHA256, Dataset and Samples.
func (s *Set) Table() *Table {
	t := &Table{
		SchemaVersion: SchemaVersion,
		Method:        string(s.opts.Method),
		Symmetric:     s.opts.Symmetric,
		Tensors:       make(map[string]*TensorRange, len(s.names)),
	}
	if s.opts.Method == Percentile {
		t.Percentile = s.opts.Percentile
	}
	if s.opts.Method == MinMax {
		t.MovingAverage = s.opts.MovingAverage
	}
	ranges := make([]*TensorRange, len(s.names))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), max(1, len(s.names))) {
		wg.Go(func() {
			for i := range next {
				ranges[i] = s.Range(s.names[i])
			}
		})
	}
	for i := range s.names {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, n := range s.names {
		t.Tensors[n] = ranges[i]
	}
	return t
}

// MemoryBytes approximates the state the set holds: the collectors (a histogram is 8
// bytes a bin) and the names. It does not depend on how many values were observed.
func (s *Set) MemoryBytes() int {
	b := 64
	for name, t := range s.tensors {
		b += len(name) + 16 + 48 + t.mm.MemoryBytes()
		if t.h != nil {
			b += t.h.MemoryBytes()
		}
	}
	return b
}

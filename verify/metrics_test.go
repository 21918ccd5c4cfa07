package verify

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// approx reports whether got is want to 1e-12 relative (or both the same infinity).
func approx(got, want float64) bool {
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return got == want || (math.IsNaN(got) && math.IsNaN(want))
	}
	return math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))
}

// TestAccumulatorFigures checks every figure of Metrics against values computed by hand
// from the formulas in Metrics' doc comment, on small batches whose values float32 holds
// exactly.
func TestAccumulatorFigures(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name                       string
		ref, cand                  []float32
		elements                   int64
		maxAbs, meanAbs, rmse, cos float64
		sqnr                       float64
		nan, refNaN                int64
	}{
		{
			// d = [0 0 1]; Σref² = 14, Σcand² = 21, Σref·cand = 17, Σd² = 1
			name: "one element off by one",
			ref:  []float32{1, 2, 3}, cand: []float32{1, 2, 4},
			elements: 3, maxAbs: 1, meanAbs: 1.0 / 3, rmse: math.Sqrt(1.0 / 3),
			cos: 17 / math.Sqrt(14*21), sqnr: 10 * math.Log10(14),
		},
		{
			// d = [0.5 0.5 1 2]; Σd = 4, Σd² = 5.5; Σref² = 1+4+9+16 = 30;
			// cand = [1.5 1.5 2 6]: Σcand² = 2.25+2.25+4+36 = 44.5; Σref·cand = 1.5+3+6+24 = 34.5
			name: "errors of both signs",
			ref:  []float32{1, 2, 3, 4}, cand: []float32{1.5, 1.5, 2, 6},
			elements: 4, maxAbs: 2, meanAbs: 1, rmse: math.Sqrt(5.5 / 4),
			cos: 34.5 / math.Sqrt(30*44.5), sqnr: 10 * math.Log10(30/5.5),
		},
		{
			name: "identical outputs: SQNR +Inf, cosine 1",
			ref:  []float32{-1, 0.25, 8}, cand: []float32{-1, 0.25, 8},
			elements: 3, cos: 1, sqnr: inf,
		},
		{
			// the candidate is the reference negated: cosine -1; Σd² = 4Σref² → SQNR = -10·log10(4)
			name: "negated output",
			ref:  []float32{1, -2, 2}, cand: []float32{-1, 2, -2},
			elements: 3, maxAbs: 4, meanAbs: 10.0 / 3, rmse: math.Sqrt(36.0 / 3),
			cos: -1, sqnr: -10 * math.Log10(4),
		},
		{
			// a scaled copy is parallel: cosine exactly 1, though the errors are not 0
			name: "scaled copy",
			ref:  []float32{1, 2, 2}, cand: []float32{2, 4, 4},
			elements: 3, maxAbs: 2, meanAbs: 5.0 / 3, rmse: math.Sqrt(9.0 / 3),
			cos: 1, sqnr: 0,
		},
		{
			name: "both all zero: SQNR +Inf, cosine 1",
			ref:  []float32{0, 0, 0}, cand: []float32{0, 0, 0},
			elements: 3, cos: 1, sqnr: inf,
		},
		{
			// no signal in the reference, an error in the candidate: SQNR -Inf, cosine 0
			name: "reference all zero",
			ref:  []float32{0, 0}, cand: []float32{3, 4},
			elements: 2, maxAbs: 4, meanAbs: 3.5, rmse: math.Sqrt(25.0 / 2),
			cos: 0, sqnr: math.Inf(-1),
		},
		{
			// Σd² = Σref² = 5 → SQNR 0 dB; the candidate has no energy → cosine 0
			name: "candidate all zero",
			ref:  []float32{1, -2}, cand: []float32{0, 0},
			elements: 2, maxAbs: 2, meanAbs: 1.5, rmse: math.Sqrt(5.0 / 2),
			cos: 0, sqnr: 0,
		},
		{
			name: "empty batch", ref: []float32{}, cand: []float32{},
			cos: 1, sqnr: inf,
		},
		{
			// non-finite candidate values are counted and left out of every figure
			name: "NaN and ±Inf in the candidate",
			ref:  []float32{1, 2, 3, 4}, cand: []float32{float32(math.NaN()), 2, float32(math.Inf(1)), float32(math.Inf(-1))},
			elements: 1, cos: 1, sqnr: inf, nan: 3,
		},
		{
			// non-finite reference values are counted apart and left out too; a value
			// non-finite on both sides counts as the candidate's
			name:     "non-finite reference values",
			ref:      []float32{float32(math.NaN()), float32(math.Inf(-1)), float32(math.NaN()), 2},
			cand:     []float32{1, 1, float32(math.NaN()), 3},
			elements: 1, maxAbs: 1, meanAbs: 1, rmse: 1,
			cos: 1, sqnr: 10 * math.Log10(4), nan: 1, refNaN: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAccumulator("y", 0)
			a.Add(tc.ref, tc.cand, 1, nil)
			m := a.Metrics()
			if m.Output != "y" || m.Samples != 1 || m.Elements != tc.elements || m.NaN != tc.nan || m.RefNaN != tc.refNaN {
				t.Errorf("output %q samples %d elements %d nan %d ref_nan %d, want y 1 %d %d %d",
					m.Output, m.Samples, m.Elements, m.NaN, m.RefNaN, tc.elements, tc.nan, tc.refNaN)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"max_abs", m.MaxAbs, tc.maxAbs},
				{"mean_abs", m.MeanAbs, tc.meanAbs},
				{"rmse", m.RMSE, tc.rmse},
				{"cosine", m.Cosine, tc.cos},
				{"sqnr_db", float64(m.SQNRdB), tc.sqnr},
			} {
				if !approx(f.got, f.want) {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
			if m.Top1Agreement != nil || m.Top5Agreement != nil || m.RefAccuracy != nil || m.CandAccuracy != nil {
				t.Errorf("classifier figures on a non-classifier output: %+v", m)
			}
		})
	}
}

// TestAccumulatorNoBatch: an accumulator that saw nothing reports zero elements and no
// classifier figures, without dividing by zero.
func TestAccumulatorNoBatch(t *testing.T) {
	m := NewAccumulator("out", 10).Metrics()
	if m.Output != "out" || m.Samples != 0 || m.Elements != 0 || m.MeanAbs != 0 || m.RMSE != 0 || m.MaxAbs != 0 {
		t.Errorf("empty accumulator: %+v", m)
	}
	if math.IsNaN(m.Cosine) || math.IsNaN(float64(m.SQNRdB)) {
		t.Errorf("cosine %v, SQNR %v: NaN from an empty accumulator", m.Cosine, m.SQNRdB)
	}
	if m.Top1Agreement != nil || m.Top5Agreement != nil || m.RefAccuracy != nil {
		t.Errorf("classifier figures without rows: %+v", m)
	}
}

// TestAccumulatorBatchesFold: figures over several Add calls are those over one call on
// the concatenated data (Add folds batches without keeping them), samples add up.
func TestAccumulatorBatchesFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const classes = 7
	ref := make([]float32, 12*classes)
	cand := make([]float32, len(ref))
	for i := range ref {
		ref[i] = float32(rng.NormFloat64())
		cand[i] = ref[i] + float32(rng.NormFloat64()*0.3)
	}
	labels := make([]int64, 12)
	for i := range labels {
		labels[i] = int64(rng.IntN(classes))
	}
	whole := NewAccumulator("logits", classes)
	whole.Add(ref, cand, 12, labels)
	parts := NewAccumulator("logits", classes)
	for _, cut := range [][2]int{{0, 5}, {5, 6}, {6, 12}} {
		lo, hi := cut[0]*classes, cut[1]*classes
		parts.Add(ref[lo:hi], cand[lo:hi], cut[1]-cut[0], labels[cut[0]:cut[1]])
	}
	w, p := whole.Metrics(), parts.Metrics()
	if p.Samples != 12 || p.Elements != int64(len(ref)) {
		t.Errorf("samples %d, elements %d; want 12, %d", p.Samples, p.Elements, len(ref))
	}
	for _, f := range []struct {
		name string
		w, p float64
	}{
		{"max_abs", w.MaxAbs, p.MaxAbs}, {"mean_abs", w.MeanAbs, p.MeanAbs}, {"rmse", w.RMSE, p.RMSE},
		{"cosine", w.Cosine, p.Cosine}, {"sqnr_db", float64(w.SQNRdB), float64(p.SQNRdB)},
		{"top1", *w.Top1Agreement, *p.Top1Agreement}, {"top5", *w.Top5Agreement, *p.Top5Agreement},
		{"ref_acc", *w.RefAccuracy, *p.RefAccuracy}, {"acc", *w.CandAccuracy, *p.CandAccuracy},
	} {
		if math.Abs(f.w-f.p) > 1e-9*math.Max(1, math.Abs(f.w)) {
			t.Errorf("%s: %v in one batch, %v in three", f.name, f.w, f.p)
		}
	}
	// And the folded figures are the direct ones.
	var maxAbs, sumSq float64
	for i := range ref {
		d := math.Abs(float64(ref[i]) - float64(cand[i]))
		maxAbs = math.Max(maxAbs, d)
		sumSq += d * d
	}
	if p.MaxAbs != maxAbs || !approx(p.RMSE, math.Sqrt(sumSq/float64(len(ref)))) {
		t.Errorf("max_abs %v rmse %v, want %v %v", p.MaxAbs, p.RMSE, maxAbs, math.Sqrt(sumSq/float64(len(ref))))
	}
}

// TestAccumulatorClassifier checks top-1 and top-5 agreement and the accuracies, row by
// row, on hand-made [N, C] outputs.
func TestAccumulatorClassifier(t *testing.T) {
	f := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for _, tc := range []struct {
		name                    string
		classes                 int
		ref, cand               []float32
		labels                  []int64
		top1, top5, refAcc, acc any // nil: absent
	}{
		{
			name: "all agree", classes: 3,
			ref:  []float32{0, 1, 0, 2, 0, 0},
			cand: []float32{0, 0.9, 0.1, 1.5, 0, 0.2},
			top1: 1.0, top5: 1.0,
		},
		{
			// row 0 agrees; row 1: ref argmax 0, cand argmax 2 (but 0 is in the top 5 of 3)
			name: "one of two rows disagrees", classes: 3,
			ref:  []float32{0, 5, 1, 9, 1, 2},
			cand: []float32{0, 5, 1, 1, 1, 9},
			top1: 0.5, top5: 1.0,
		},
		{
			// ref argmax 0; in cand, 0 is the smallest of 7 (6 above it): not in the top 5;
			// row 1: ref argmax 6, cand has 5 values above index 6: not in the top 5 either;
			// row 2: ref argmax 3, 4 values above it in cand: in the top 5
			name: "top-5 boundary", classes: 7,
			ref: []float32{
				9, 0, 0, 0, 0, 0, 0,
				0, 0, 0, 0, 0, 0, 9,
				0, 0, 0, 9, 0, 0, 0,
			},
			cand: []float32{
				0, 1, 2, 3, 4, 5, 6,
				6, 5, 4, 3, 2, 0, 1,
				6, 5, 4, 2, 3, 0, 1,
			},
			top1: 0.0, top5: 1.0 / 3,
		},
		{
			// ties: argmax is the first maximum, on both sides; top-5 counts ties for the
			// reference class (only strictly larger values push it out)
			name: "ties", classes: 6,
			ref: []float32{
				3, 3, 0, 0, 0, 0, // argmax 0
				0, 0, 0, 0, 0, 0, // all equal: argmax 0
			},
			cand: []float32{
				1, 1, 1, 1, 1, 1, // all equal: argmax 0 = ref's
				0, 2, 2, 2, 2, 2, // argmax 1; 5 values above class 0: out of the top 5
			},
			top1: 0.5, top5: 0.5,
		},
		{
			// labels [1, 0, 2]: ref argmaxes 1, 1, 2 (2 right); cand 1, 0, 0 (2 right)
			name: "accuracy", classes: 3,
			ref:    []float32{0, 1, 0, 0, 1, 0, 0, 0, 1},
			cand:   []float32{0, 1, 0, 1, 0, 0, 1, 0, 0},
			labels: []int64{1, 0, 2},
			top1:   1.0 / 3, top5: 1.0, refAcc: 2.0 / 3, acc: 2.0 / 3,
		},
		{
			// fewer labels than rows: only the labelled rows count for accuracy
			name: "short labels", classes: 2,
			ref:    []float32{1, 0, 0, 1, 1, 0},
			cand:   []float32{1, 0, 1, 0, 1, 0},
			labels: []int64{1},
			top1:   2.0 / 3, top5: 1.0, refAcc: 0.0, acc: 0.0,
		},
		{
			// a label outside the classes matches no row
			name: "label outside the classes", classes: 2,
			ref:    []float32{1, 0},
			cand:   []float32{1, 0},
			labels: []int64{5},
			top1:   1.0, top5: 1.0, refAcc: 0.0, acc: 0.0,
		},
		{
			// a batch whose length is no multiple of the classes gets no classifier figures
			name: "ragged batch", classes: 4,
			ref:    []float32{1, 0, 0, 0, 1, 0},
			cand:   []float32{1, 0, 0, 0, 1, 0},
			labels: []int64{0},
		},
		{
			// classes 1 is not classifier-shaped
			name: "one class", classes: 1,
			ref: []float32{1, 2}, cand: []float32{2, 1},
			labels: []int64{0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAccumulator("logits", tc.classes)
			a.Add(tc.ref, tc.cand, len(tc.ref)/max(tc.classes, 1), tc.labels)
			m := a.Metrics()
			for _, c := range []struct {
				name      string
				got, want any
			}{
				{"top1_agreement", f(m.Top1Agreement), tc.top1},
				{"top5_agreement", f(m.Top5Agreement), tc.top5},
				{"reference_accuracy", f(m.RefAccuracy), tc.refAcc},
				{"accuracy", f(m.CandAccuracy), tc.acc},
			} {
				g, gok := c.got.(float64)
				w, wok := c.want.(float64)
				if gok != wok || (gok && !approx(g, w)) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		v    []float32
		want int
	}{
		{[]float32{1}, 0},
		{[]float32{1, 3, 2}, 1},
		{[]float32{-5, -1, -3}, 1},
		{[]float32{0, 0, 0}, 0},       // all tied: the first
		{[]float32{1, 4, 2, 4, 4}, 1}, // tied maxima: the first of them
		{[]float32{float32(math.Inf(-1)), -1e30}, 1},
		{[]float32{2, float32(math.Inf(1)), 3}, 1},
		{[]float32{1, nan, 3}, 2}, // a NaN is never the maximum...
		{[]float32{nan, 5, 7}, 0}, // ...but one in front stays: nothing compares above NaN
	} {
		if got := argmax(tc.v); got != tc.want {
			t.Errorf("argmax(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

func TestInTopK(t *testing.T) {
	v := []float32{0, 1, 2, 3, 4, 5, 6} // index i has 6-i values above it
	for idx := range v {
		for k := 1; k <= 7; k++ {
			want := 6-idx < k
			if got := inTopK(v, idx, k); got != want {
				t.Errorf("inTopK(%v, %d, %d) = %v, want %v", v, idx, k, got, want)
			}
		}
	}
	for _, tc := range []struct {
		v      []float32
		idx, k int
		want   bool
	}{
		{[]float32{1, 1, 1, 1, 1, 1, 1, 1}, 7, 1, true}, // ties count for idx
		{[]float32{2, 2, 2, 2, 2, 1}, 5, 5, false},      // 5 strictly larger
		{[]float32{2, 2, 2, 2, 1, 1}, 5, 5, true},       // 4 strictly larger
		{[]float32{3, 9}, 0, 5, true},                   // fewer classes than k
		{[]float32{3, 9}, 0, 1, false},
		{[]float32{-1, -2, -3}, 0, 1, true},
	} {
		if got := inTopK(tc.v, tc.idx, tc.k); got != tc.want {
			t.Errorf("inTopK(%v, %d, %d) = %v, want %v", tc.v, tc.idx, tc.k, got, tc.want)
		}
	}
}

// TestPercentiles: nearest rank — the value at rank ceil(p/100·n) of the sorted
// durations; the input is left as it was.
func TestPercentiles(t *testing.T) {
	seq := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = float64(i + 1)
		}
		return s
	}
	for _, tc := range []struct {
		name          string
		ms            []float64
		p50, p90, p99 float64
	}{
		{"empty", nil, 0, 0, 0},
		{"one", []float64{7.5}, 7.5, 7.5, 7.5},
		{"two", []float64{2, 1}, 1, 2, 2},
		{"three", []float64{30, 10, 20}, 20, 30, 30},
		{"ten", seq(10), 5, 9, 10},
		{"eleven", seq(11), 6, 10, 11},
		{"hundred", seq(100), 50, 90, 99},
		{"hundred and one", seq(101), 51, 91, 100},
		{"duplicates", []float64{1, 1, 1, 1, 9}, 1, 9, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.ms)
			rand.New(rand.NewPCG(3, 4)).Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
			before := slices.Clone(in)
			p50, p90, p99 := Percentiles(in)
			if p50 != tc.p50 || p90 != tc.p90 || p99 != tc.p99 {
				t.Errorf("Percentiles(%v) = %v %v %v, want %v %v %v", in, p50, p90, p99, tc.p50, tc.p90, tc.p99)
			}
			if !slices.Equal(in, before) {
				t.Errorf("Percentiles reordered its input: %v, was %v", in, before)
			}
		})
	}
	// Against the nearest rank computed in integers, for every n up to 1000.
	for n := 1; n <= 1000; n++ {
		s := seq(n)
		p50, p90, p99 := Percentiles(s)
		for _, c := range []struct {
			p   int
			got float64
		}{{50, p50}, {90, p90}, {99, p99}} {
			rank := (c.p*n + 99) / 100 // ceil(p·n/100)
			if c.got != float64(rank) {
				t.Fatalf("n=%d: p%d = %v, want rank %d", n, c.p, c.got, rank)
			}
		}
	}
}

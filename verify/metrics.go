// Package verify compares a candidate model with a reference on real data, output by
// output and provider by provider, measures latency, and judges the result against
// thresholds.
package verify

import (
	"math"
	"sort"

	"github.com/onnxpipe/onnxpipe/report"
)

// Metrics are the comparison figures of one output over a whole dataset.
type Metrics struct {
	Output   string       `json:"output"`
	Samples  int          `json:"samples"`
	Elements int64        `json:"elements"`
	MaxAbs   float64      `json:"max_abs"`
	MeanAbs  float64      `json:"mean_abs"`
	RMSE     float64      `json:"rmse"`
	Cosine   float64      `json:"cosine"`
	SQNRdB   report.Float `json:"sqnr_db"`       // +Inf when the outputs are identical
	NaN      int64        `json:"nan,omitempty"` // non-finite values in the candidate
	RefNaN   int64        `json:"ref_nan,omitempty"`
	// Classifier-shaped outputs ([N, C], C >= 2) only:
	Top1Agreement *float64 `json:"top1_agreement,omitempty"`
	Top5Agreement *float64 `json:"top5_agreement,omitempty"`
	// With labels, on the first classifier-shaped output:
	RefAccuracy  *float64 `json:"reference_accuracy,omitempty"`
	CandAccuracy *float64 `json:"accuracy,omitempty"`
	// Task is what the output means (see TaskKind); the task metrics below are set for
	// its kind only.
	Task TaskKind `json:"task,omitempty"`
	// DecisionAgreement is the share of decision or mask values on the same side of the
	// task's threshold in both models.
	DecisionAgreement *float64 `json:"decision_agreement,omitempty"`
	// ReferencePositive and CandidatePositive are the shares of decision or mask values
	// at or above the threshold in each model.
	ReferencePositive *float64 `json:"reference_positive,omitempty"`
	CandidatePositive *float64 `json:"candidate_positive,omitempty"`
	// MaskIoU is |ref ∩ cand| / |ref ∪ cand| of the masks at the threshold, over the
	// dataset (1 when both are empty).
	MaskIoU *float64 `json:"mask_iou,omitempty"`
	// StepAgreement is the per-step argmax agreement of a sequence output.
	StepAgreement *float64 `json:"step_agreement,omitempty"`
	// SequenceAgreement is the share of samples whose CTC-decoded sequences are equal.
	SequenceAgreement *float64 `json:"sequence_agreement,omitempty"`
}

// Accumulator folds batches of one output into Metrics without keeping them.
type Accumulator struct {
	name                        string
	n                           int64
	samples                     int
	maxAbs, sumAbs, sumSq       float64
	sumRef2, sumCand2, sumCross float64
	nan, refNaN                 int64
	classes                     int // > 0 for classifier-shaped outputs
	top1, top5, rows            int64
	refCorrect, candCorrect     int64
	labeled                     int64
	task                        *taskAcc // decision, mask and sequence outputs
	lastDim                     int      // a sequence's classes
}

// NewAccumulator starts the metrics of an output; classes > 1 marks a classifier-shaped
// output with that many classes per row.
func NewAccumulator(name string, classes int) *Accumulator {
	return &Accumulator{name: name, classes: classes}
}

// SetTask makes the accumulator compute task's metrics too; lastDim is the size of the
// output's last axis (a sequence's classes). Scores and none need nothing beyond the
// classes given to NewAccumulator.
func (a *Accumulator) SetTask(t Task, lastDim int) {
	a.lastDim = lastDim
	switch t.Kind {
	case TaskDecision, TaskMask, TaskSequence:
		a.task = &taskAcc{task: t}
	}
}

// Add folds one batch: ref and cand hold the same number of values, samples rows;
// labels (optional) give the class of each row.
func (a *Accumulator) Add(ref, cand []float32, samples int, labels []int64) {
	a.samples += samples
	for i := range ref {
		r, c := float64(ref[i]), float64(cand[i])
		if math.IsNaN(c) || math.IsInf(c, 0) {
			a.nan++
			continue
		}
		if math.IsNaN(r) || math.IsInf(r, 0) {
			a.refNaN++
			continue
		}
		d := math.Abs(r - c)
		a.maxAbs = math.Max(a.maxAbs, d)
		a.sumAbs += d
		a.sumSq += d * d
		a.sumRef2 += r * r
		a.sumCand2 += c * c
		a.sumCross += r * c
		a.n++
	}
	if a.task != nil {
		a.task.add(ref, cand, samples, a.lastDim)
	}
	if a.classes < 2 || len(ref)%a.classes != 0 {
		return
	}
	rows := len(ref) / a.classes
	for row := 0; row < rows; row++ {
		rr := ref[row*a.classes : (row+1)*a.classes]
		cr := cand[row*a.classes : (row+1)*a.classes]
		rt, ct := argmax(rr), argmax(cr)
		if rt == ct {
			a.top1++
		}
		if inTopK(cr, rt, 5) {
			a.top5++
		}
		a.rows++
		if labels != nil && row < len(labels) {
			a.labeled++
			if int64(rt) == labels[row] {
				a.refCorrect++
			}
			if int64(ct) == labels[row] {
				a.candCorrect++
			}
		}
	}
}

// Metrics returns the figures so far:
//
//	SQNR = 10·log10(Σref² / Σ(ref−cand)²)   (+Inf when equal)
//	cosine = Σref·cand / sqrt(Σref² · Σcand²)
func (a *Accumulator) Metrics() Metrics {
	m := Metrics{Output: a.name, Samples: a.samples, Elements: a.n, MaxAbs: a.maxAbs, NaN: a.nan, RefNaN: a.refNaN}
	if a.n > 0 {
		m.MeanAbs = a.sumAbs / float64(a.n)
		m.RMSE = math.Sqrt(a.sumSq / float64(a.n))
	}
	switch {
	case a.sumSq == 0:
		m.SQNRdB = report.Float(math.Inf(1))
	case a.sumRef2 == 0:
		m.SQNRdB = report.Float(math.Inf(-1))
	default:
		m.SQNRdB = report.Float(10 * math.Log10(a.sumRef2/a.sumSq))
	}
	switch {
	case a.sumRef2 == 0 && a.sumCand2 == 0:
		m.Cosine = 1
	case a.sumRef2 == 0 || a.sumCand2 == 0:
		m.Cosine = 0
	default:
		m.Cosine = a.sumCross / math.Sqrt(a.sumRef2*a.sumCand2)
	}
	if a.rows > 0 {
		t1 := float64(a.top1) / float64(a.rows)
		t5 := float64(a.top5) / float64(a.rows)
		m.Top1Agreement, m.Top5Agreement = &t1, &t5
	}
	if a.labeled > 0 {
		ra := float64(a.refCorrect) / float64(a.labeled)
		ca := float64(a.candCorrect) / float64(a.labeled)
		m.RefAccuracy, m.CandAccuracy = &ra, &ca
	}
	if a.task != nil {
		a.task.fill(&m)
	} else if a.rows > 0 {
		m.Task = TaskScores
	}
	return m
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// inTopK reports whether index idx is among the k largest values of v (ties count for
// idx).
func inTopK(v []float32, idx, k int) bool {
	greater := 0
	for i, x := range v {
		if i != idx && x > v[idx] {
			greater++
		}
	}
	return greater < k
}

// Percentiles returns the p50, p90 and p99 of durations in milliseconds (nearest rank).
func Percentiles(ms []float64) (p50, p90, p99 float64) {
	if len(ms) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(len(s)-1, i))]
	}
	return at(50), at(90), at(99)
}

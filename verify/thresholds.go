package verify

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"strings"
)

// Threshold keys and how each passes (docs/config.md).
var thresholdRules = map[string]struct {
	atLeast bool // pass when value >= threshold (else <=)
	doc     string
}{
	"sqnr_db":            {true, "10·log10(Σref² / Σ(ref−cand)²) over the dataset"},
	"cosine":             {true, "cosine similarity over the dataset"},
	"max_abs":            {false, "largest absolute error"},
	"mean_abs":           {false, "mean absolute error"},
	"rmse":               {false, "root mean square error"},
	"top1_agreement":     {true, "argmax agreement on classifier-shaped outputs"},
	"top5_agreement":     {true, "reference argmax within the candidate's top 5"},
	"accuracy":           {true, "candidate accuracy against labels"},
	"accuracy_drop":      {false, "reference accuracy − candidate accuracy, percentage points"},
	"decision_agreement": {true, "share of sigmoid decisions (or mask pixels) on the same side of the task threshold"},
	"mask_iou":           {true, "IoU of the two models' masks at the task threshold, over the dataset"},
	"step_agreement":     {true, "per-step argmax agreement of sequence outputs [N, T, C]"},
	"sequence_agreement": {true, "share of samples whose CTC-decoded sequences are equal"},
}

// ThresholdKeys lists the valid threshold names, sorted.
func ThresholdKeys() []string {
	var k []string
	for name := range thresholdRules {
		k = append(k, name)
	}
	sort.Strings(k)
	return k
}

// Thresholds maps a metric name to its bound; all must hold on every judged output and
// provider.
type Thresholds map[string]float64

// Validate checks the keys.
func (t Thresholds) Validate() error {
	for k := range t {
		if _, ok := thresholdRules[k]; !ok {
			return fmt.Errorf("unknown threshold %q; one of %s", k, strings.Join(ThresholdKeys(), ", "))
		}
	}
	return nil
}

// value reads a metric from m; ok is false when the metric does not apply to the output
// (top-1 of a non-classifier, accuracy without labels). slack is how far v may be from
// the exact figure through rounding of its computation, for the figures computed here
// by subtracting two measured values (0 for the others, which are compared as
// measured; see roundoff).
func value(m Metrics, key string) (v, slack float64, ok bool) {
	switch key {
	case "sqnr_db":
		return float64(m.SQNRdB), 0, true
	case "cosine":
		return m.Cosine, 0, true
	case "max_abs":
		return m.MaxAbs, 0, true
	case "mean_abs":
		return m.MeanAbs, 0, true
	case "rmse":
		return m.RMSE, 0, true
	case "top1_agreement":
		return deref(m.Top1Agreement)
	case "top5_agreement":
		return deref(m.Top5Agreement)
	case "accuracy":
		return deref(m.CandAccuracy)
	case "decision_agreement":
		return deref(m.DecisionAgreement)
	case "mask_iou":
		return deref(m.MaskIoU)
	case "step_agreement":
		return deref(m.StepAgreement)
	case "sequence_agreement":
		return deref(m.SequenceAgreement)
	case "accuracy_drop":
		if m.RefAccuracy == nil || m.CandAccuracy == nil {
			return 0, 0, false
		}
		ref, cand := *m.RefAccuracy, *m.CandAccuracy
		slack := roundoff * 100 * (math.Abs(ref) + math.Abs(cand))
		if math.IsInf(slack, 0) {
			slack = 0 // not an accuracy; no slack for a non-finite figure
		}
		return 100 * (ref - cand), slack, true
	}
	return 0, 0, false
}

// roundoff bounds, relative to the operands' magnitude, the rounding error of a figure
// computed as 100·(a − b) from two measured values, compared with a bound written in
// decimal. Accuracies are counts over a total (a = i/n, b = j/n), each rounded once to
// float64 (error <= u·|a|, u = 2⁻⁵³); the subtraction and the product by 100 round once
// each (<= 2u·100·|a − b| <= 2u·100·(|a| + |b|)); the bound is rounded when read
// (<= u·|bound|, and a bound at the drop is <= 100·(|a| + |b|)): at most 4u·100·(|a| +
// |b|) apart in all, plus terms in u². roundoff is twice that, 8u, so a drop exactly at
// its bound passes (98.78% → 97.78% against accuracy_drop: 1 computes 1 + 8.9e-16), and
// with accuracies <= 1 the slack stays below 2e-13 percentage points, far below any
// difference a bound can mean (one sample in 10¹² is 1e-10 points).
const roundoff = 0x1p-50

func deref(p *float64) (float64, float64, bool) {
	if p == nil {
		return 0, 0, false
	}
	return *p, 0, true
}

// Judge checks metrics of one provider run against t and returns one reason per miss,
// naming the metric, output, provider and by how much. A threshold that applies to no
// judged output (accuracy without labels) is itself a miss: it cannot be met.
func Judge(t Thresholds, provider string, metrics []Metrics) []string {
	var reasons []string
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, m := range metrics {
		if m.NaN > 0 {
			reasons = append(reasons, nonFinite(m, provider))
		}
	}
	for _, k := range keys {
		bound := t[k]
		rule := thresholdRules[k]
		applied := false
		for _, m := range metrics {
			v, slack, ok := value(m, k)
			if !ok {
				continue
			}
			applied = true
			pass := v >= bound-slack
			if !rule.atLeast {
				pass = v <= bound+slack
			}
			if math.IsNaN(v) {
				pass = false
			}
			if !pass {
				cmp := ">="
				if !rule.atLeast {
					cmp = "<="
				}
				reasons = append(reasons, fmt.Sprintf("%s on %s: %s = %.6g, needs %s %g (off by %.3g)",
					m.Output, provider, k, v, cmp, bound, math.Abs(v-bound)))
			}
		}
		if !applied {
			reasons = append(reasons, fmt.Sprintf("%s on %s: no judged output has this metric (%s needs %s)", k, provider, k, need(k)))
		}
	}
	return reasons
}

func need(k string) string {
	switch k {
	case "accuracy", "accuracy_drop":
		return "labels in the dataset and a classifier-shaped output"
	case "top1_agreement", "top5_agreement":
		return "a classifier-shaped output [N, C] with C >= 2"
	case "decision_agreement":
		return "a decision or mask output: one made by Sigmoid, or set in verify's tasks:"
	case "mask_iou":
		return "a mask output: a Sigmoid map of rank >= 3, or set in verify's tasks:"
	case "step_agreement", "sequence_agreement":
		return "a sequence output [N, T, C] made by Softmax, or set in verify's tasks:"
	}
	return "an output"
}

// DefaultFloors are the bounds verify judges when a run sets no thresholds
// (Options.Floors), by what the output means: a metric of the output's task, or its SQNR
// when it has no task. They are the "within about 1% of the float model" of a converted
// model that still does its job: top-1 and decisions agree on 99% of the samples, masks
// overlap at IoU 0.95, 98% of decoded sequences are equal, other outputs keep 15 dB.
var DefaultFloors = map[TaskKind]map[string]float64{
	TaskNone:     {"sqnr_db": 15},
	TaskScores:   {"top1_agreement": 0.99},
	TaskDecision: {"decision_agreement": 0.99},
	TaskMask:     {"mask_iou": 0.95},
	TaskSequence: {"sequence_agreement": 0.98},
}

// FloorsOf returns the default floors that apply to m (DefaultFloors of its task).
func FloorsOf(m Metrics) map[string]float64 {
	kind := m.Task
	if kind == "" {
		kind = TaskNone
	}
	return DefaultFloors[kind]
}

// nonFinite is the reason for the non-finite values of m's candidate output.
func nonFinite(m Metrics, provider string) string {
	return fmt.Sprintf("%s on %s: %d non-finite values (NaN or Inf) in the candidate's output", m.Output, provider, m.NaN)
}

// JudgeFloors checks metrics of one provider run against their default floors and
// returns one reason per miss; a floor whose metric an output lacks does not apply.
func JudgeFloors(provider string, metrics []Metrics) []string {
	var reasons []string
	for _, m := range metrics {
		if m.NaN > 0 {
			reasons = append(reasons, nonFinite(m, provider))
		}
		floors := FloorsOf(m)
		oneSided := m.ReferencePositive != nil && (*m.ReferencePositive == 0 || *m.ReferencePositive == 1)
		if oneSided { // agreement says little: the SQNR floor judges too
			floors = maps.Clone(floors)
			maps.Copy(floors, DefaultFloors[TaskNone])
		}
		keys := make([]string, 0, len(floors))
		for k := range floors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _, ok := value(m, k)
			if ok && (v < floors[k] || math.IsNaN(v)) {
				why := fmt.Sprintf("for a %s output", taskName(m.Task))
				if oneSided && k == "sqnr_db" {
					why = fmt.Sprintf("for a %s output whose reference is on one side of the threshold on every value (agreement says little there: add samples on both sides)", taskName(m.Task))
				}
				reasons = append(reasons, fmt.Sprintf("%s on %s: %s = %.6g, under the default floor %g %s (no thresholds were set; set verify's thresholds to judge by your own)",
					m.Output, provider, k, v, floors[k], why))
			}
		}
	}
	return reasons
}

func taskName(k TaskKind) string {
	if k == "" || k == TaskNone {
		return "plain"
	}
	return string(k)
}

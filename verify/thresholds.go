package verify

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Threshold keys and how each passes (docs/config.md).
var thresholdRules = map[string]struct {
	atLeast bool // pass when value >= threshold (else <=)
	doc     string
}{
	"sqnr_db":        {true, "10·log10(Σref² / Σ(ref−cand)²) over the dataset"},
	"cosine":         {true, "cosine similarity over the dataset"},
	"max_abs":        {false, "largest absolute error"},
	"mean_abs":       {false, "mean absolute error"},
	"rmse":           {false, "root mean square error"},
	"top1_agreement": {true, "argmax agreement on classifier-shaped outputs"},
	"top5_agreement": {true, "reference argmax within the candidate's top 5"},
	"accuracy":       {true, "candidate accuracy against labels"},
	"accuracy_drop":  {false, "reference accuracy − candidate accuracy, percentage points"},
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
// (top-1 of a non-classifier, accuracy without labels).
func value(m Metrics, key string) (float64, bool) {
	switch key {
	case "sqnr_db":
		return float64(m.SQNRdB), true
	case "cosine":
		return m.Cosine, true
	case "max_abs":
		return m.MaxAbs, true
	case "mean_abs":
		return m.MeanAbs, true
	case "rmse":
		return m.RMSE, true
	case "top1_agreement":
		return deref(m.Top1Agreement)
	case "top5_agreement":
		return deref(m.Top5Agreement)
	case "accuracy":
		return deref(m.CandAccuracy)
	case "accuracy_drop":
		if m.RefAccuracy == nil || m.CandAccuracy == nil {
			return 0, false
		}
		return 100 * (*m.RefAccuracy - *m.CandAccuracy), true
	}
	return 0, false
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
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
			reasons = append(reasons, fmt.Sprintf("%s on %s: %d non-finite values (NaN or Inf) in the candidate's output", m.Output, provider, m.NaN))
		}
	}
	for _, k := range keys {
		bound := t[k]
		rule := thresholdRules[k]
		applied := false
		for _, m := range metrics {
			v, ok := value(m, k)
			if !ok {
				continue
			}
			applied = true
			pass := v >= bound
			if !rule.atLeast {
				pass = v <= bound
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
	}
	return "an output"
}

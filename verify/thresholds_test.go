package verify

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/report"
)

func ptr(v float64) *float64 { return &v }

// TestThresholdKeys lists exactly the keys of the table in docs/config.md, sorted.
func TestThresholdKeys(t *testing.T) {
	want := []string{"accuracy", "accuracy_drop", "cosine", "decision_agreement", "mask_iou", "max_abs", "mean_abs", "rmse", "sequence_agreement", "sqnr_db", "step_agreement", "top1_agreement", "top5_agreement"}
	if got := ThresholdKeys(); !slices.Equal(got, want) {
		t.Errorf("ThresholdKeys() = %v, want %v", got, want)
	}
}

func TestThresholdsValidate(t *testing.T) {
	all := Thresholds{}
	for _, k := range ThresholdKeys() {
		all[k] = 1
	}
	for _, tc := range []struct {
		name string
		t    Thresholds
		want string // "" = valid
	}{
		{"nil", nil, ""},
		{"empty", Thresholds{}, ""},
		{"every key", all, ""},
		{"negative and NaN bounds are not the keys' business", Thresholds{"sqnr_db": -5, "cosine": math.NaN()}, ""},
		{"unknown", Thresholds{"sqnr": 20},
			`unknown threshold "sqnr"; one of accuracy, accuracy_drop, cosine, decision_agreement, mask_iou, max_abs, mean_abs, rmse, sequence_agreement, sqnr_db, step_agreement, top1_agreement, top5_agreement`},
		{"case matters", Thresholds{"SQNR_DB": 20}, `unknown threshold "SQNR_DB"; one of accuracy,`},
		{"unknown beside known", Thresholds{"cosine": 0.99, "top1": 0.9}, `unknown threshold "top1"`},
		{"empty key", Thresholds{"": 1}, `unknown threshold ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

// full is the Metrics of a labelled classifier output, every figure set.
func full() Metrics {
	return Metrics{
		Output: "logits", Samples: 4, Elements: 40,
		MaxAbs: 0.5, MeanAbs: 0.125, RMSE: 0.25, Cosine: 0.75, SQNRdB: 20,
		Top1Agreement: ptr(0.75), Top5Agreement: ptr(1), RefAccuracy: ptr(0.75), CandAccuracy: ptr(0.5),
	}
}

// TestJudgeBoundaries: for every key, a bound equal to the value passes, a bound a
// little on the wrong side fails with a reason naming the metric, the output, the
// provider, the comparison and the gap, and a bound on the right side passes. The
// values are exact in binary, so "equal" is equal.
func TestJudgeBoundaries(t *testing.T) {
	for _, tc := range []struct {
		key     string
		value   float64 // in full()
		atLeast bool
	}{
		{"sqnr_db", 20, true},
		{"cosine", 0.75, true},
		{"max_abs", 0.5, false},
		{"mean_abs", 0.125, false},
		{"rmse", 0.25, false},
		{"top1_agreement", 0.75, true},
		{"top5_agreement", 1, true},
		{"accuracy", 0.5, true},
		{"accuracy_drop", 25, false}, // 100·(0.75 − 0.5) percentage points
	} {
		t.Run(tc.key, func(t *testing.T) {
			m := []Metrics{full()}
			if r := Judge(Thresholds{tc.key: tc.value}, "cpu", m); len(r) != 0 {
				t.Errorf("bound = value %v: %q, want a pass", tc.value, r)
			}
			worse, better := tc.value+0.0625, tc.value-0.0625 // a stricter and a looser bound
			cmp := "<="
			if tc.atLeast {
				cmp = ">="
			} else {
				worse, better = better, worse
			}
			if r := Judge(Thresholds{tc.key: better}, "cpu", m); len(r) != 0 {
				t.Errorf("bound %v: %q, want a pass", better, r)
			}
			r := Judge(Thresholds{tc.key: worse}, "cuda", m)
			if len(r) != 1 {
				t.Fatalf("bound %v: %q, want one reason", worse, r)
			}
			want := "logits on cuda: " + tc.key + " = "
			if !strings.HasPrefix(r[0], want) || !strings.Contains(r[0], "needs "+cmp+" ") || !strings.HasSuffix(r[0], "(off by 0.0625)") {
				t.Errorf("reason %q, want %q... needs %s ... (off by 0.0625)", r[0], want, cmp)
			}
		})
	}
}

// TestJudgeMessages pins whole reasons.
func TestJudgeMessages(t *testing.T) {
	m := full()
	for _, tc := range []struct {
		name    string
		t       Thresholds
		metrics []Metrics
		want    []string
	}{
		{"sqnr", Thresholds{"sqnr_db": 25}, []Metrics{m},
			[]string{"logits on cpu: sqnr_db = 20, needs >= 25 (off by 5)"}},
		{"max_abs", Thresholds{"max_abs": 0.1}, []Metrics{m},
			[]string{"logits on cpu: max_abs = 0.5, needs <= 0.1 (off by 0.4)"}},
		{"accuracy_drop in percentage points", Thresholds{"accuracy_drop": 1}, []Metrics{m},
			[]string{"logits on cpu: accuracy_drop = 25, needs <= 1 (off by 24)"}},
		{"value with many digits", Thresholds{"cosine": 0.9}, []Metrics{{Output: "y", Cosine: 0.123456789}},
			[]string{"y on cpu: cosine = 0.123457, needs >= 0.9 (off by 0.777)"}},
		{"several misses, sorted by key", Thresholds{"top1_agreement": 0.9, "cosine": 0.8, "rmse": 0.5}, []Metrics{m},
			[]string{
				"logits on cpu: cosine = 0.75, needs >= 0.8 (off by 0.05)",
				"logits on cpu: top1_agreement = 0.75, needs >= 0.9 (off by 0.15)",
			}},
		{"every output is judged", Thresholds{"mean_abs": 0.2},
			[]Metrics{{Output: "a", MeanAbs: 0.1}, {Output: "b", MeanAbs: 0.3}, {Output: "c", MeanAbs: 0.2}},
			[]string{"b on cpu: mean_abs = 0.3, needs <= 0.2 (off by 0.1)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Judge(tc.t, "cpu", tc.metrics); !slices.Equal(got, tc.want) {
				t.Errorf("Judge = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestJudgeNonFinite: a NaN figure never passes; +Inf SQNR (identical outputs) passes
// any bound, -Inf none.
func TestJudgeNonFinite(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name  string
		key   string
		bound float64 // one any finite value would meet
		m     Metrics
		pass  bool
	}{
		{"NaN cosine", "cosine", -1, Metrics{Output: "y", Cosine: nan}, false},
		{"NaN max_abs", "max_abs", 1e30, Metrics{Output: "y", MaxAbs: nan}, false},
		{"NaN rmse", "rmse", 1e30, Metrics{Output: "y", RMSE: nan}, false},
		{"NaN sqnr", "sqnr_db", -1e30, Metrics{Output: "y", SQNRdB: report.Float(nan)}, false},
		{"NaN accuracy", "accuracy", 0, Metrics{Output: "y", CandAccuracy: ptr(nan)}, false},
		{"NaN accuracy_drop", "accuracy_drop", 1e30, Metrics{Output: "y", RefAccuracy: ptr(nan), CandAccuracy: ptr(0.5)}, false},
		{"+Inf sqnr", "sqnr_db", 1e30, Metrics{Output: "y", SQNRdB: report.Float(math.Inf(1))}, true},
		{"-Inf sqnr", "sqnr_db", -1e30, Metrics{Output: "y", SQNRdB: report.Float(math.Inf(-1))}, false},
		{"+Inf max_abs", "max_abs", 1e30, Metrics{Output: "y", MaxAbs: math.Inf(1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Judge(Thresholds{tc.key: tc.bound}, "cpu", []Metrics{tc.m})
			if pass := len(r) == 0; pass != tc.pass {
				t.Errorf("reasons %q, want pass=%v", r, tc.pass)
			}
		})
	}
}

// TestJudgeCandidateNaN: non-finite candidate values are a miss whatever the thresholds,
// one reason per output, before the threshold misses.
func TestJudgeCandidateNaN(t *testing.T) {
	ms := []Metrics{
		{Output: "a", NaN: 3, Cosine: 1, SQNRdB: report.Float(math.Inf(1))},
		{Output: "b", RefNaN: 2, Cosine: 1, SQNRdB: report.Float(math.Inf(1))}, // the reference's are not the candidate's fault
		{Output: "c", NaN: 1, Cosine: 0.5},
	}
	got := Judge(Thresholds{"cosine": 0.9}, "cuda", ms)
	want := []string{
		"a on cuda: 3 non-finite values (NaN or Inf) in the candidate's output",
		"c on cuda: 1 non-finite values (NaN or Inf) in the candidate's output",
		"c on cuda: cosine = 0.5, needs >= 0.9 (off by 0.4)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Judge = %q\nwant %q", got, want)
	}
	if got := Judge(nil, "cpu", ms[:1]); len(got) != 1 {
		t.Errorf("no thresholds, NaN in the candidate: %q, want one reason", got)
	}
	if got := Judge(nil, "cpu", ms[1:2]); len(got) != 0 {
		t.Errorf("no thresholds, finite candidate: %q, want none", got)
	}
}

// TestJudgeNotApplicable: a threshold no judged output has is a miss that says what the
// metric needs; one that some output has applies to that output only.
func TestJudgeNotApplicable(t *testing.T) {
	plain := Metrics{Output: "features", Cosine: 1, SQNRdB: 50} // not classifier-shaped, no labels
	unlabelled := full()
	unlabelled.RefAccuracy, unlabelled.CandAccuracy = nil, nil
	candOnly := full()
	candOnly.RefAccuracy = nil
	for _, tc := range []struct {
		name    string
		t       Thresholds
		metrics []Metrics
		want    []string
	}{
		{"top1 on a plain output", Thresholds{"top1_agreement": 0.9}, []Metrics{plain},
			[]string{"top1_agreement on cpu: no judged output has this metric (top1_agreement needs a classifier-shaped output [N, C] with C >= 2)"}},
		{"top5 on a plain output", Thresholds{"top5_agreement": 0.9}, []Metrics{plain},
			[]string{"top5_agreement on cpu: no judged output has this metric (top5_agreement needs a classifier-shaped output [N, C] with C >= 2)"}},
		{"accuracy without labels", Thresholds{"accuracy": 0.5}, []Metrics{unlabelled},
			[]string{"accuracy on cpu: no judged output has this metric (accuracy needs labels in the dataset and a classifier-shaped output)"}},
		{"accuracy_drop without labels", Thresholds{"accuracy_drop": 1}, []Metrics{unlabelled},
			[]string{"accuracy_drop on cpu: no judged output has this metric (accuracy_drop needs labels in the dataset and a classifier-shaped output)"}},
		{"accuracy_drop without the reference's accuracy", Thresholds{"accuracy_drop": 100}, []Metrics{candOnly},
			[]string{"accuracy_drop on cpu: no judged output has this metric (accuracy_drop needs labels in the dataset and a classifier-shaped output)"}},
		{"no outputs at all", Thresholds{"sqnr_db": 10}, nil,
			[]string{"sqnr_db on cpu: no judged output has this metric (sqnr_db needs an output)"}},
		{"top1 applies to the classifier output only", Thresholds{"top1_agreement": 0.5}, []Metrics{plain, full()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Judge(tc.t, "cpu", tc.metrics); !slices.Equal(got, tc.want) {
				t.Errorf("Judge = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestValue reads each key from the field the docs name; keys outside the table read
// nothing.
func TestValue(t *testing.T) {
	m := Metrics{MaxAbs: 1, MeanAbs: 2, RMSE: 3, Cosine: 4, SQNRdB: 5,
		Top1Agreement: ptr(6), Top5Agreement: ptr(7), RefAccuracy: ptr(0.75), CandAccuracy: ptr(0.5)}
	for _, tc := range []struct {
		key  string
		want float64
		ok   bool
	}{
		{"max_abs", 1, true}, {"mean_abs", 2, true}, {"rmse", 3, true}, {"cosine", 4, true}, {"sqnr_db", 5, true},
		{"top1_agreement", 6, true}, {"top5_agreement", 7, true}, {"accuracy", 0.5, true},
		{"accuracy_drop", 25, true},
		{"reference_accuracy", 0, false}, {"nan", 0, false}, {"", 0, false},
	} {
		got, slack, ok := value(m, tc.key)
		if ok != tc.ok || got != tc.want {
			t.Errorf("value(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
		// Only a figure computed here by subtraction has a slack for rounding.
		if wantSlack := tc.key == "accuracy_drop"; (slack != 0) != wantSlack || slack < 0 || slack > 1e-12 {
			t.Errorf("value(%q): slack %g", tc.key, slack)
		}
	}
}

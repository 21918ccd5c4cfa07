package verify

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestCTCDecode(t *testing.T) {
	for _, tc := range []struct {
		path []int
		want []int
	}{
		{nil, nil},
		{[]int{0, 0, 0}, nil},
		{[]int{3, 3, 0, 3, 4, 4, 0}, []int{3, 3, 4}}, // a blank between repeats keeps both
		{[]int{1, 1, 1, 2}, []int{1, 2}},
		{[]int{0, 5, 0, 0, 5}, []int{5, 5}},
	} {
		if got := ctcDecode(tc.path, 0); !slices.Equal(got, tc.want) {
			t.Errorf("ctcDecode(%v) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if got := ctcDecode([]int{2, 0, 2, 2}, 2); !slices.Equal(got, []int{0}) {
		t.Errorf("blank 2: %v", got)
	}
}

func TestTaskMetricsByHand(t *testing.T) {
	th := 0.5
	// a mask of 8 pixels over 2 samples: ref positive at 0,1,2,5; cand at 1,2,3,5,6
	ref := []float32{0.9, 0.8, 0.6, 0.1, 0.2, 0.7, 0.3, 0.0}
	cand := []float32{0.4, 0.9, 0.5, 0.6, 0.1, 0.8, 0.5, 0.2}
	a := NewAccumulator("mask", 0)
	a.SetTask(Task{Kind: TaskMask, Threshold: &th}, 2)
	a.Add(ref, cand, 2, nil)
	m := a.Metrics()
	// intersection {1,2,5} = 3, union {0,1,2,3,5,6} = 6; agreement: 0 no,1 y,2 y,3 no,4 y,5 y,6 no,7 y = 5/8
	if m.Task != TaskMask || m.MaskIoU == nil || *m.MaskIoU != 0.5 || m.DecisionAgreement == nil || *m.DecisionAgreement != 5.0/8 {
		t.Errorf("mask: %+v", m)
	}
	low := 0.15
	a = NewAccumulator("decision", 0)
	a.SetTask(Task{Kind: TaskDecision, Threshold: &low}, 1)
	a.Add(ref, cand, 8, nil)
	// at 0.15: ref 1,1,1,0,1,1,1,0; cand 1,1,1,1,0,1,1,1 -> disagree at 3,4,7
	if m := a.Metrics(); m.DecisionAgreement == nil || *m.DecisionAgreement != 5.0/8 || m.MaskIoU != nil {
		t.Errorf("decision: %+v", m)
	}

	// a sequence of 2 samples, 3 steps, 3 classes (0 blank)
	seqRef := []float32{
		0, 1, 0 /**/, 0, 1, 0 /**/, 1, 0, 0, // 1 1 _ -> [1]
		0, 0, 1 /**/, 1, 0, 0 /**/, 0, 0, 1, // 2 _ 2 -> [2 2]
	}
	seqCand := []float32{
		0, 1, 0 /**/, 1, 0, 0 /**/, 1, 0, 0, // 1 _ _ -> [1]: equal string, one step differs
		0, 0, 1 /**/, 0, 0, 1 /**/, 0, 0, 1, // 2 2 2 -> [2]: differs
	}
	a = NewAccumulator("seq", 0)
	a.SetTask(Task{Kind: TaskSequence}, 3)
	a.Add(seqRef, seqCand, 2, nil)
	m = a.Metrics()
	if m.StepAgreement == nil || *m.StepAgreement != 4.0/6 || m.SequenceAgreement == nil || *m.SequenceAgreement != 0.5 {
		t.Errorf("sequence: %+v", m)
	}
	// batches fold: the same again doubles counts, keeps ratios
	a.Add(seqRef, seqRef, 2, nil)
	if m = a.Metrics(); *m.SequenceAgreement != 0.75 || *m.StepAgreement != 10.0/12 {
		t.Errorf("two batches: %+v", m)
	}
	// both masks empty: the same mask
	a = NewAccumulator("empty", 0)
	a.SetTask(Task{Kind: TaskMask, Threshold: &th}, 2)
	a.Add([]float32{0.1, 0.2}, []float32{0.3, 0.4}, 1, nil)
	if m := a.Metrics(); *m.MaskIoU != 1 {
		t.Errorf("empty masks IoU %v", *m.MaskIoU)
	}
}

// taskModel builds y = op(x·scale) through pass-through ops, with the given output shape.
func taskModel(t *testing.T, op string, in, out []int64, scale float32, via ...string) *onnxio.Model {
	t.Helper()
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, in)
	s := b.Initializer("s", onnxio.NewTensor([]int64{}, []float32{scale}))
	y := b.Op("Mul", []string{x, s})
	if op == "Softmax" {
		y = b.Op(op, []string{y}, onnxio.AttrInt("axis", -1))
	} else {
		y = b.Op(op, []string{y})
	}
	for _, v := range via {
		y = b.Op(v, []string{y})
	}
	b.Op("Identity", []string{y})
	g := b.Graph()
	g.Node[len(g.Node)-1].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, out)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDetectTasks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      string
		in, out []int64
		via     []string
		want    TaskKind
	}{
		{"sigmoid map", "Sigmoid", []int64{-1, 1, -1, -1}, []int64{-1, 1, -1, -1}, nil, TaskMask},
		{"sigmoid score", "Sigmoid", []int64{1, 1}, []int64{1, 1}, nil, TaskDecision},
		{"sigmoid multi-label", "Sigmoid", []int64{-1, 5}, []int64{-1, 5}, nil, TaskDecision},
		{"sigmoid through Identity", "Sigmoid", []int64{-1, 1, 8, 8}, []int64{-1, 1, 8, 8}, []string{"Identity"}, TaskMask},
		{"hard sigmoid [N,1,1]", "HardSigmoid", []int64{-1, 1, 1}, []int64{-1, 1, 1}, nil, TaskDecision},
		{"softmax sequence", "Softmax", []int64{-1, 40, 97}, []int64{-1, 40, 97}, nil, TaskSequence},
		{"softmax classes", "Softmax", []int64{-1, 2}, []int64{-1, 2}, nil, TaskScores},
		{"logits", "Relu", []int64{-1, 10}, []int64{-1, 10}, nil, TaskScores},
		{"a feature map", "Relu", []int64{-1, 3, 8, 8}, []int64{-1, 3, 8, 8}, nil, TaskNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := taskModel(t, tc.op, tc.in, tc.out, 1, tc.via...)
			if got := DetectTasks(m, nil)["y"]; got.Kind != tc.want {
				t.Errorf("kind %q, want %q", got.Kind, tc.want)
			} else if (got.Kind == TaskMask || got.Kind == TaskDecision) && (got.Threshold == nil || *got.Threshold != 0.5) {
				t.Errorf("threshold %v, want 0.5", got.Threshold)
			}
		})
	}
	m := taskModel(t, "Relu", []int64{-1, 10}, []int64{-1, 10}, 1)
	zero := 0.0
	got := DetectTasks(m, map[string]Task{"y": {Kind: TaskDecision, Threshold: &zero}})["y"]
	if got.Kind != TaskDecision || *got.Threshold != 0 {
		t.Errorf("override: %+v", got)
	}
	got = DetectTasks(taskModel(t, "Sigmoid", []int64{1, 1}, []int64{1, 1}, 1), map[string]Task{"y": {Blank: 3}})["y"]
	if got.Kind != TaskDecision || *got.Threshold != 0.5 {
		t.Errorf("an override without a kind keeps the detected one: %+v", got)
	}
}

func TestTaskCheck(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		task  Task
		field string
	}{
		{Task{}, ""},
		{Task{Kind: TaskMask}, ""},
		{Task{Kind: "segmentation"}, "kind"},
		{Task{Threshold: &nan}, "threshold"},
		{Task{Blank: -1}, "blank"},
	} {
		if f, p := tc.task.Check(); f != tc.field {
			t.Errorf("%+v: field %q (%s), want %q", tc.task, f, p, tc.field)
		}
	}
}

// TestRunMaskIoU runs a sigmoid map model against a copy with a steeper sigmoid in
// onnxruntime and checks verify's IoU and decision agreement against the values counted
// here from the same inputs, and that a mask_iou threshold is judged on them.
func TestRunMaskIoU(t *testing.T) {
	ref := taskModel(t, "Sigmoid", []int64{-1, 1, 4, 4}, []int64{-1, 1, 4, 4}, 1)
	cand := taskModel(t, "Sigmoid", []int64{-1, 1, 4, 4}, []int64{-1, 1, 4, 4}, 1.5)
	ds, err := dataset.Open(&dataset.Spec{Format: "random", Samples: 8, Batch: 4, Seed: 3}, dataset.InputsOf(ref))
	if err != nil {
		t.Fatal(err)
	}
	// sigmoid(x) >= 0.5 iff x >= 0 and sigmoid(1.5x) likewise: the masks are equal
	rep, err := Run(context.Background(), ref, cand, ds, Options{Thresholds: Thresholds{"mask_iou": 1}})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Providers[0].Outputs[0]
	if m.Task != TaskMask || m.MaskIoU == nil || *m.MaskIoU != 1 || !rep.Passed {
		t.Fatalf("equal masks: %+v, failures %v", m, rep.Failures)
	}
	// at 0.6 they differ where 0.6 <= sigmoid(1.5x) but sigmoid(x) < 0.6
	th := 0.6
	rep, err = Run(context.Background(), ref, cand, ds, Options{Thresholds: Thresholds{"mask_iou": 1}, Tasks: map[string]Task{"y": {Threshold: &th}}})
	if err != nil {
		t.Fatal(err)
	}
	var inter, union, agree, total int
	lim := math.Log(th / (1 - th)) // sigmoid(z) >= th iff z >= lim
	for b, err := range ds.Batches() {
		if err != nil {
			t.Fatal(err)
		}
		xs, _ := b.Inputs["x"].Float32s()
		for _, x := range xs {
			r, c := float64(x) >= lim, 1.5*float64(x) >= lim
			if r && c {
				inter++
			}
			if r || c {
				union++
			}
			if r == c {
				agree++
			}
			total++
		}
	}
	m = rep.Providers[0].Outputs[0]
	wantIoU := float64(inter) / float64(union)
	if m.MaskIoU == nil || math.Abs(*m.MaskIoU-wantIoU) > 1e-12 || math.Abs(*m.DecisionAgreement-float64(agree)/float64(total)) > 1e-12 {
		t.Fatalf("IoU %v (want %v), agreement %v (want %v)", m.MaskIoU, wantIoU, *m.DecisionAgreement, float64(agree)/float64(total))
	}
	if wantIoU >= 1 || rep.Passed || len(rep.Failures) != 1 {
		t.Errorf("mask_iou 1 should fail at IoU %v: %v", wantIoU, rep.Failures)
	}
}

// Default floors judge each output by its kind's metric only: a decision output is not
// held to 15 dB, a plain one is; a floor whose metric is missing does not apply.
func TestJudgeFloors(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	ms := []Metrics{
		{Output: "wake", Task: TaskDecision, SQNRdB: 0, DecisionAgreement: p(1)},
		{Output: "mask", Task: TaskMask, SQNRdB: 30, MaskIoU: p(0.94), DecisionAgreement: p(0.999)},
		{Output: "text", Task: TaskSequence, SQNRdB: 30, StepAgreement: p(0.99), SequenceAgreement: p(0.98)},
		{Output: "feat", SQNRdB: 14.9},
		{Output: "cls", Task: TaskScores, SQNRdB: 3, Top1Agreement: p(0.99)},
		{Output: "noseq", Task: TaskSequence},
	}
	got := JudgeFloors("cpu", ms)
	if len(got) != 2 || !strings.HasPrefix(got[0], "mask on cpu: mask_iou = 0.94, under the default floor 0.95 for a mask output") ||
		!strings.HasPrefix(got[1], "feat on cpu: sqnr_db = 14.9, under the default floor 15 for a plain output") {
		t.Errorf("JudgeFloors = %q", got)
	}
}

// With no thresholds and Floors, Run rejects a candidate whose masks differ beyond the
// floor and passes one whose masks are equal; without Floors it only measures.
func TestRunFloors(t *testing.T) {
	ref := taskModel(t, "Sigmoid", []int64{-1, 1, 4, 4}, []int64{-1, 1, 4, 4}, 1)
	same := taskModel(t, "Sigmoid", []int64{-1, 1, 4, 4}, []int64{-1, 1, 4, 4}, 1.5)
	flipped := taskModel(t, "Sigmoid", []int64{-1, 1, 4, 4}, []int64{-1, 1, 4, 4}, -1)
	ds, err := dataset.Open(&dataset.Spec{Format: "random", Samples: 8, Batch: 4, Seed: 3}, dataset.InputsOf(ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cand   *onnxio.Model
		floors bool
		pass   bool
	}{{same, true, true}, {flipped, true, false}, {flipped, false, true}} {
		rep, err := Run(context.Background(), ref, c.cand, ds, Options{Floors: c.floors})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passed != c.pass {
			t.Errorf("floors %v: passed %v, want %v (%v)", c.floors, rep.Passed, c.pass, rep.Failures)
		}
		if !c.pass && (len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0], "mask_iou")) {
			t.Errorf("failures %q", rep.Failures)
		}
	}
}

// An output made by an If whose branches both end in Sigmoid (openWakeWord's heads) is a
// decision; branches that differ leave it undetected.
func TestDetectTasksThroughIf(t *testing.T) {
	branch := func(op string) *onnxpb.GraphProto {
		b := onnxio.NewBuilder(17)
		y := b.Op(op, []string{"x"})
		b.Output(y, onnxio.TypeFloat, []int64{1, 1})
		return b.Graph()
	}
	for _, c := range []struct {
		then, els string
		want      TaskKind
	}{{"Sigmoid", "Sigmoid", TaskDecision}, {"Sigmoid", "Relu", TaskNone}, {"Sigmoid", "outer", TaskDecision}} {
		b := onnxio.NewBuilder(17)
		b.Input("x", onnxio.TypeFloat, []int64{1, 1})
		p := b.Op("Sigmoid", []string{"x"})
		if c.els == "outer" { // the else branch passes a value of the main graph on
			g := onnxio.NewBuilder(17)
			g.Output(g.Op("Identity", []string{p}), onnxio.TypeFloat, []int64{1, 1})
			elseBranch := g.Graph()
			cond := b.Initializer("cond", onnxio.NewTensor([]int64{}, []bool{true}))
			y := b.Op("If", []string{cond}, onnxio.AttrGraph("then_branch", branch("Sigmoid")), onnxio.AttrGraph("else_branch", elseBranch))
			b.Output(y, onnxio.TypeFloat, []int64{1, 1})
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			if got := DetectTasks(m, nil)[y].Kind; got != c.want {
				t.Errorf("an outer value: %q, want %q", got, c.want)
			}
			continue
		}
		cond := b.Initializer("cond", onnxio.NewTensor([]int64{}, []bool{true}))
		y := b.Op("If", []string{cond}, onnxio.AttrGraph("then_branch", branch(c.then)), onnxio.AttrGraph("else_branch", branch(c.els)))
		b.Output(y, onnxio.TypeFloat, []int64{1, 1})
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		if got := DetectTasks(m, nil)[y].Kind; got != c.want {
			t.Errorf("%s/%s: %q, want %q", c.then, c.els, got, c.want)
		}
	}
}

// The per-layer analysis reads at most PerLayerValues values per model: large
// activations get fewer samples, never less than one batch.
func TestBudgetSamples(t *testing.T) {
	small := map[string]*onnxio.Tensor{"a": onnxio.NewTensor([]int64{8, 10}, make([]float32, 80))}
	if got := budgetSamples(small, 8); got != PerLayerValues/10 {
		t.Errorf("10 values a sample: %d samples", got)
	}
	big := map[string]*onnxio.Tensor{
		"a": onnxio.NewTensor([]int64{2, 1 << 24}, make([]float32, 2<<24)),
		"b": onnxio.NewTensor([]int64{2, 1 << 24}, make([]float32, 2<<24)),
	}
	if got := budgetSamples(big, 2); got != 2 {
		t.Errorf("2^25 values a sample, batch 2: %d samples, want the batch", got)
	}
}

// A decision output whose reference is on one side of the threshold everywhere (a wake
// word never said) agrees trivially: the SQNR floor judges it too, and says why.
func TestJudgeFloorsOneSided(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	never := Metrics{Output: "wake", Task: TaskDecision, SQNRdB: 3, DecisionAgreement: p(1), ReferencePositive: p(0), CandidatePositive: p(0)}
	got := JudgeFloors("cpu", []Metrics{never})
	if len(got) != 1 || !strings.Contains(got[0], "sqnr_db = 3, under the default floor 15") || !strings.Contains(got[0], "on one side of the threshold on every value") {
		t.Errorf("one-sided: %q", got)
	}
	both := never
	both.ReferencePositive = p(0.25)
	if got := JudgeFloors("cpu", []Metrics{both}); len(got) != 0 {
		t.Errorf("two-sided decisions judged by SQNR: %q", got)
	}
	// the shares are counted
	th := 0.5
	a := NewAccumulator("d", 0)
	a.SetTask(Task{Kind: TaskDecision, Threshold: &th}, 1)
	a.Add([]float32{0.1, 0.7, 0.2, 0.9}, []float32{0.6, 0.7, 0.2, 0.1}, 4, nil)
	if m := a.Metrics(); *m.ReferencePositive != 0.5 || *m.CandidatePositive != 0.5 {
		t.Errorf("positive shares %v %v", *m.ReferencePositive, *m.CandidatePositive)
	}
}

// A task naming an output the model lacks is an error naming the outputs there are.
func TestTasksNameOutputs(t *testing.T) {
	m := taskModel(t, "Sigmoid", []int64{1, 1}, []int64{1, 1}, 1)
	ds, err := dataset.Open(&dataset.Spec{Format: "random", Samples: 2, Batch: 1, Seed: 1}, dataset.InputsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), m, m, ds, Options{Tasks: map[string]Task{"out": {Kind: TaskDecision}}})
	if err == nil || err.Error() != `tasks: "out" is not an output of the model; its outputs: y` {
		t.Errorf("err = %v", err)
	}
}

package verify

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// TaskKind says what an output means, which decides the task metrics verify computes for
// it beside the numeric ones (SQNR, cosine, errors).
type TaskKind string

// The task kinds.
const (
	// TaskScores is a classifier's [N, C] scores (C >= 2): top-1/top-5 agreement, and
	// accuracy with labels.
	TaskScores TaskKind = "scores"
	// TaskDecision is a sigmoid score per item (a wake word, a voice-activity flag, a
	// multi-label head): decision agreement, the share of scores on the same side of the
	// threshold in both models.
	TaskDecision TaskKind = "decision"
	// TaskMask is a per-pixel probability map (a segmentation or text mask, rank >= 3):
	// the IoU of the two models' masks at the threshold, over the whole dataset.
	TaskMask TaskKind = "mask"
	// TaskSequence is [N, T, C] per-step class scores (a CTC recognizer): per-step argmax
	// agreement, and the share of samples whose CTC-decoded label sequences (repeats
	// merged, blanks dropped) are equal.
	TaskSequence TaskKind = "sequence"
	// TaskNone computes no task metric.
	TaskNone TaskKind = "none"
)

// Task is the meaning of one output (verify's `tasks:` option overrides what is detected).
type Task struct {
	// Kind is scores, decision, mask, sequence or none (default: detected from the
	// operator that produces the output and its shape).
	Kind TaskKind `yaml:"kind" json:"kind"`
	// Threshold is where a decision or mask value counts as positive: value >= threshold
	// (default 0.5; 0 for an output of logits).
	Threshold *float64 `yaml:"threshold" json:"threshold,omitempty"`
	// Blank is a sequence's CTC blank class (default 0).
	Blank int `yaml:"blank" json:"blank,omitempty"`
}

// DefaultTaskThreshold is a decision's or mask's threshold when none is given.
const DefaultTaskThreshold = 0.5

var taskKinds = []TaskKind{TaskScores, TaskDecision, TaskMask, TaskSequence, TaskNone}

// Values lists the task kinds.
func (TaskKind) Values() []string {
	var k []string
	for _, kind := range taskKinds {
		k = append(k, string(kind))
	}
	return k
}

// Check says what is wrong with t, if anything: the option under the task (kind,
// threshold or blank) and why; "" when t is fine.
func (t Task) Check() (field, problem string) {
	switch {
	case t.Kind != "" && !slices.Contains(taskKinds, t.Kind):
		return "kind", fmt.Sprintf("%q: one of %s", t.Kind, strings.Join(TaskKind("").Values(), ", "))
	case t.Threshold != nil && (math.IsNaN(*t.Threshold) || math.IsInf(*t.Threshold, 0)):
		return "threshold", fmt.Sprintf("%g: give a finite number", *t.Threshold)
	case t.Blank < 0:
		return "blank", fmt.Sprintf("%d: a class index, >= 0", t.Blank)
	}
	return "", ""
}

// DetectTasks returns the task of each output of m: overrides first (a kind left empty
// there is detected, its threshold and blank kept), then from the graph: an output made
// by Sigmoid or HardSigmoid (through Identity, Reshape, Flatten, Squeeze, Unsqueeze or
// Transpose) is a mask when it has rank >= 3 with more than one value per sample beyond
// the first two axes, else a decision; an output made by Softmax or LogSoftmax with rank
// 3 is a sequence; a rank-2 output with >= 2 columns is scores.
func DetectTasks(m *onnxio.Model, overrides map[string]Task) map[string]Task {
	g := m.Graph()
	ix := onnxio.NewIndex(g)
	tasks := map[string]Task{}
	for _, out := range g.GetOutput() {
		name := out.GetName()
		t := overrides[name]
		if t.Kind == "" {
			dims, _, _ := onnxio.ValueShape(out)
			t.Kind = detectKind(ix, name, dims)
		}
		if t.Threshold == nil && (t.Kind == TaskDecision || t.Kind == TaskMask) {
			th := DefaultTaskThreshold
			t.Threshold = &th
		}
		tasks[name] = t
	}
	return tasks
}

// producerOp is the op that makes value name, looking through the pass-through ops and
// into both branches of an If (when they agree; depth bounds nested Ifs).
func producerOp(scopes []*onnxio.Index, name string, depth int) string {
	for v, hops := name, 0; hops < 8; hops++ {
		var n *onnxpb.NodeProto
		for i := len(scopes) - 1; i >= 0 && n == nil; i-- { // a branch reads outer values
			n = scopes[i].Producer[v]
		}
		if n == nil {
			return ""
		}
		if n.GetOpType() == "If" && n.GetDomain() == "" && depth < 4 {
			k := slices.Index(n.GetOutput(), v)
			op := ""
			for i, g := range onnxio.Subgraphs(n) {
				if k < 0 || k >= len(g.GetOutput()) {
					return "If"
				}
				b := producerOp(append(slices.Clip(scopes), onnxio.NewIndex(g)), g.GetOutput()[k].GetName(), depth+1)
				if i > 0 && b != op {
					return "If"
				}
				op = b
			}
			return op
		}
		if !passThrough[n.GetOpType()] || len(n.GetInput()) == 0 {
			return n.GetOpType()
		}
		v = n.GetInput()[0]
	}
	return ""
}

// tasksNameOutputs checks that every output tasks names is an output of m.
func tasksNameOutputs(m *onnxio.Model, tasks map[string]Task) error {
	var outs []string
	for _, o := range m.Graph().GetOutput() {
		outs = append(outs, o.GetName())
	}
	for _, name := range slices.Sorted(maps.Keys(tasks)) {
		if !slices.Contains(outs, name) {
			return fmt.Errorf("tasks: %q is not an output of the model; its outputs: %s", name, strings.Join(outs, ", "))
		}
	}
	return nil
}

// passThrough are the ops an output's meaning passes through unchanged.
var passThrough = map[string]bool{"Identity": true, "Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Transpose": true}

func detectKind(ix *onnxio.Index, name string, dims []int64) TaskKind {
	op := producerOp([]*onnxio.Index{ix}, name, 0)
	switch {
	case op == "Sigmoid" || op == "HardSigmoid":
		spatial := int64(1)
		for _, d := range dims[min(2, len(dims)):] {
			if d > 0 {
				spatial *= d
			} else {
				spatial = 2 // a dynamic axis: a map
			}
		}
		if len(dims) >= 3 && spatial > 1 {
			return TaskMask
		}
		return TaskDecision
	case (op == "Softmax" || op == "LogSoftmax") && len(dims) == 3:
		return TaskSequence
	case len(dims) == 2 && (dims[1] >= 2 || dims[1] <= 0):
		return TaskScores
	}
	return TaskNone
}

// taskAcc accumulates the task metrics of a decision, mask or sequence output.
type taskAcc struct {
	task            Task
	agree, decided  int64 // decisions
	refPos, candPos int64 // values at or above the threshold
	inter, union    int64 // mask
	stepSame, steps int64 // sequence steps
	seqSame, seqs   int64 // decoded sequences
}

// add folds one batch of n samples; classes is the last axis of a sequence output.
func (t *taskAcc) add(ref, cand []float32, n, classes int) {
	switch t.task.Kind {
	case TaskDecision, TaskMask:
		th := float32(DefaultTaskThreshold)
		if t.task.Threshold != nil {
			th = float32(*t.task.Threshold)
		}
		for i := range ref {
			r, c := ref[i] >= th, cand[i] >= th
			if r == c {
				t.agree++
			}
			if r {
				t.refPos++
			}
			if c {
				t.candPos++
			}
			t.decided++
			if r && c {
				t.inter++
			}
			if r || c {
				t.union++
			}
		}
	case TaskSequence:
		if classes < 2 || n <= 0 || len(ref)%(n*classes) != 0 {
			return // not [n, T, classes]: no sequence metrics
		}
		steps := len(ref) / (n * classes)
		for s := 0; s < n; s++ {
			var rPath, cPath []int
			for k := 0; k < steps; k++ {
				off := (s*steps + k) * classes
				ra, ca := argmax(ref[off:off+classes]), argmax(cand[off:off+classes])
				if ra == ca {
					t.stepSame++
				}
				t.steps++
				rPath, cPath = append(rPath, ra), append(cPath, ca)
			}
			if slices.Equal(ctcDecode(rPath, t.task.Blank), ctcDecode(cPath, t.task.Blank)) {
				t.seqSame++
			}
			t.seqs++
		}
	}
}

// ctcDecode merges repeated classes of a best path and drops the blanks.
func ctcDecode(path []int, blank int) []int {
	var out []int
	prev := -1
	for _, c := range path {
		if c != prev && c != blank {
			out = append(out, c)
		}
		prev = c
	}
	return out
}

// fill puts the task metrics into m.
func (t *taskAcc) fill(m *Metrics) {
	m.Task = t.task.Kind
	ratio := func(a, b int64) *float64 {
		if b == 0 {
			return nil
		}
		v := float64(a) / float64(b)
		return &v
	}
	if t.task.Kind == TaskDecision || t.task.Kind == TaskMask {
		m.ReferencePositive, m.CandidatePositive = ratio(t.refPos, t.decided), ratio(t.candPos, t.decided)
	}
	switch t.task.Kind {
	case TaskDecision:
		m.DecisionAgreement = ratio(t.agree, t.decided)
	case TaskMask:
		m.DecisionAgreement = ratio(t.agree, t.decided)
		if t.decided > 0 {
			iou := 1.0 // both masks empty everywhere: the same mask
			if t.union > 0 {
				iou = float64(t.inter) / float64(t.union)
			}
			m.MaskIoU = &iou
		}
	case TaskSequence:
		m.StepAgreement = ratio(t.stepSame, t.steps)
		m.SequenceAgreement = ratio(t.seqSame, t.seqs)
	}
}

// newOutputAccumulator starts the metrics of one output from its first batch's shape:
// classifier-shaped ([N, C], C >= 2) outputs get top-1/top-5 unless their task says
// otherwise, and the task's metrics are computed too.
func newOutputAccumulator(name string, t Task, shape []int64) *Accumulator {
	classes := 0
	if len(shape) == 2 && shape[1] >= 2 && (t.Kind == "" || t.Kind == TaskScores) {
		classes = int(shape[1])
	}
	a := NewAccumulator(name, classes)
	last := 0
	if len(shape) > 0 {
		last = int(shape[len(shape)-1])
	}
	a.SetTask(t, last)
	return a
}

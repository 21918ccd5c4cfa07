package verify

import (
	"context"
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// EvalMetrics are the metrics an EvalSet judges candidates by: higher is better for each.
var EvalMetrics = []string{"sqnr_db", "cosine", "top1_agreement", "top5_agreement", "accuracy"}

// EvalSet is a fixed set of samples with a reference model's outputs for them, held in
// memory, on which candidate models are judged one after another (a search over
// candidates: float16's auto_mixed).
type EvalSet struct {
	batches []*dataset.Batch
	ref     []map[string]*onnxio.Tensor
	outputs []string // in the reference session's order
	tasks   map[string]Task
	metric  string
	opts    ort.Options
}

// NewEvalSet runs ref on the first samples samples of ds (0: all of them) and keeps the
// samples with ref's outputs, to judge candidates by metric (one of EvalMetrics).
func NewEvalSet(ctx context.Context, ref *onnxio.Model, ds *dataset.Dataset, samples int, metric string, o ort.Options) (*EvalSet, error) {
	if metric == "accuracy" && !ds.HasLabels() {
		return nil, fmt.Errorf("metric accuracy needs labels: add labels: to the dataset or use sqnr_db")
	}
	data, err := ref.Bytes()
	if err != nil {
		return nil, err
	}
	set := &EvalSet{metric: metric, opts: o, tasks: DetectTasks(ref, nil)}
	s, err := ort.NewSession(data, o)
	if err != nil {
		return nil, fmt.Errorf("the reference model: %w", err)
	}
	defer s.Close()
	for _, out := range s.Outputs() {
		set.outputs = append(set.outputs, out.Name)
	}
	n := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if samples > 0 && n+b.N > samples {
			b = trim(b, samples-n)
		}
		if err := checkInputs(b); err != nil {
			return nil, err
		}
		out, err := s.Run(b.Inputs)
		if err != nil {
			return nil, fmt.Errorf("the reference model on samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		set.batches = append(set.batches, b)
		set.ref = append(set.ref, out)
		if n += b.N; samples > 0 && n >= samples {
			break
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("the dataset has no samples")
	}
	return set, nil
}

// Samples is the number of samples in the set.
func (e *EvalSet) Samples() int {
	n := 0
	for _, b := range e.batches {
		n += b.N
	}
	return n
}

// Eval runs cand on the samples and returns the metric of its worst output against the
// float32 model (NaN when an output has non-finite values the float32 model does not).
func (e *EvalSet) Eval(cand *onnxio.Model) (float64, error) {
	ms, err := e.Compare(cand)
	if err != nil {
		return 0, err
	}
	worst := math.Inf(1)
	judged := 0
	for _, m := range ms {
		if m.NaN > 0 {
			return math.NaN(), nil
		}
		var v *float64
		switch e.metric {
		case "sqnr_db":
			x := float64(m.SQNRdB)
			v = &x
		case "cosine":
			v = &m.Cosine
		case "top1_agreement":
			v = m.Top1Agreement
		case "top5_agreement":
			v = m.Top5Agreement
		case "accuracy":
			v = m.CandAccuracy
		}
		if v == nil {
			continue // a classifier metric on an output that is not classifier-shaped
		}
		judged++
		worst = min(worst, *v)
	}
	if judged == 0 {
		return 0, fmt.Errorf("no output can be judged by %s (top1/top5_agreement and accuracy need a classifier-shaped float output [N, C]): use sqnr_db", e.metric)
	}
	return worst, nil
}

// Compare runs cand on the samples and returns the metrics of each of its float outputs
// against the reference's, in the reference's output order (outputs that are not float,
// or whose shapes differ, are left out); with labels, the first classifier-shaped output
// has the accuracies of both models.
func (e *EvalSet) Compare(cand *onnxio.Model) ([]Metrics, error) {
	data, err := cand.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(data, e.opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	// keep_io_types: false gives the candidate float16 (or bfloat16) inputs
	feeder := NewFeeder("candidate", s.Inputs())
	acc := map[string]*Accumulator{}
	labelsOn := ""
	for i, b := range e.batches {
		feeds, err := feeder.Feed(b.Inputs)
		if err != nil {
			return nil, err
		}
		got, err := s.Run(feeds)
		if err != nil {
			return nil, fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		for _, name := range e.outputs {
			rt, ct := e.ref[i][name], got[name]
			if rt == nil || ct == nil {
				return nil, fmt.Errorf("output %q is missing", name)
			}
			rv, err1 := rt.Float32s()
			cv, err2 := ct.Float32s()
			if err1 != nil || err2 != nil || len(rv) != len(cv) {
				continue // not a float output, or shapes differ: judged by verify
			}
			if acc[name] == nil {
				acc[name] = newOutputAccumulator(name, e.tasks[name], rt.Shape)
				if acc[name].classes >= 2 && labelsOn == "" {
					labelsOn = name
				}
			}
			var labels []int64
			if name == labelsOn {
				labels = b.Labels
				if err := checkLabels(b, labels, acc[name].classes, name); err != nil {
					return nil, err
				}
			}
			acc[name].Add(rv, cv, b.N, labels)
		}
	}
	var out []Metrics
	for _, name := range e.outputs {
		if a := acc[name]; a != nil {
			out = append(out, a.Metrics())
		}
	}
	return out, nil
}

// trim keeps the first n samples of b.
func trim(b *dataset.Batch, n int) *dataset.Batch {
	out := &dataset.Batch{Index: b.Index, N: n, Inputs: map[string]*onnxio.Tensor{}}
	if b.Labels != nil {
		out.Labels = b.Labels[:n]
	}
	if b.Rows != nil {
		out.Rows = b.Rows[:n]
	}
	for name, t := range b.Inputs {
		out.Inputs[name] = sliceRows(t, n)
	}
	return out
}

// sliceRows keeps the first n rows (axis 0) of t.
func sliceRows(t *onnxio.Tensor, n int) *onnxio.Tensor {
	shape := append([]int64{}, t.Shape...)
	if len(shape) == 0 || shape[0] <= int64(n) {
		return t
	}
	per := t.Len() / int(shape[0])
	shape[0] = int64(n)
	k := per * n
	switch d := t.Data.(type) {
	case []float32:
		return onnxio.NewTensor(shape, d[:k])
	case []float16.Float16:
		return onnxio.NewTensor(shape, d[:k])
	case []onnxio.BFloat16:
		return onnxio.NewTensor(shape, d[:k])
	case []float64:
		return onnxio.NewTensor(shape, d[:k])
	case []int64:
		return onnxio.NewTensor(shape, d[:k])
	case []int32:
		return onnxio.NewTensor(shape, d[:k])
	case []uint8:
		return onnxio.NewTensor(shape, d[:k])
	case []int8:
		return onnxio.NewTensor(shape, d[:k])
	case []bool:
		return onnxio.NewTensor(shape, d[:k])
	}
	return t
}

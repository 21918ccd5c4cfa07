package float16

import (
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize/fp16"
	"github.com/onnxpipe/onnxpipe/verify"
)

// evalSet is the samples auto_mixed judges candidates on, with the float32 model's
// outputs for them, held in memory for the whole search.
type evalSet struct {
	batches []*dataset.Batch
	ref     []map[string]*onnxio.Tensor
	outputs []string // in the reference session's order
	metric  string
	opts    ort.Options
}

// autoMixed runs fp16.AutoMixed on m with candidates judged against ref (the float32
// model) on the auto_mixed dataset.
func autoMixed(p *pipeline.Pass, o *Options, m, ref *onnxio.Model, fo fp16.Options) (*fp16.Report, error) {
	a := o.AutoMixed
	set, err := loadEvalSet(p, ref, a)
	if err != nil {
		return nil, err
	}
	p.Note("auto_mixed: judging candidates on %d samples of dataset %q by %s >= %g", set.samples(), a.Dataset, a.Metric, a.Min)
	rep, err := fp16.AutoMixed(m, fo, set.eval, a.Min)
	if err != nil {
		return nil, fmt.Errorf("auto_mixed: %w", err)
	}
	var kept []string
	for _, k := range rep.Kept {
		if k.Reason == fp16.ReasonAutoMixed {
			kept = append(kept, k.Name)
		}
	}
	p.Metric("auto_mixed_kept", float64(len(kept)), "")
	if len(kept) == 0 {
		p.Note("auto_mixed: the fully converted model meets %s >= %g (%.4g): no node kept in float32 for it", a.Metric, a.Min, rep.Metric)
	} else {
		p.Note("auto_mixed: %d nodes kept in float32 to meet %s >= %g (%.4g after %d evaluations): %v", len(kept), a.Metric, a.Min, rep.Metric, rep.Evals, kept)
	}
	return rep, nil
}

func loadEvalSet(p *pipeline.Pass, ref *onnxio.Model, a AutoMixed) (*evalSet, error) {
	spec, err := p.Job.Dataset(a.Dataset)
	if err != nil {
		return nil, err
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(ref))
	if err != nil {
		return nil, fmt.Errorf("auto_mixed.dataset %q: %w", a.Dataset, err)
	}
	defer ds.Close()
	for _, w := range ds.Warnings() {
		p.Warn("dataset %q: %s", a.Dataset, w)
	}
	data, err := ref.Bytes()
	if err != nil {
		return nil, err
	}
	set := &evalSet{metric: a.Metric, opts: ort.Options{Threads: p.Job.Runtime.Threads, Optimization: p.Job.Runtime.Optimization}}
	s, err := ort.NewSession(data, set.opts)
	if err != nil {
		return nil, fmt.Errorf("auto_mixed: the float32 model: %w", err)
	}
	defer s.Close()
	for _, out := range s.Outputs() {
		set.outputs = append(set.outputs, out.Name)
	}
	n := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return nil, fmt.Errorf("auto_mixed.dataset %q: %w", a.Dataset, err)
		}
		if err := p.Ctx.Err(); err != nil {
			return nil, err
		}
		if a.Samples > 0 && n+b.N > a.Samples {
			b = trim(b, a.Samples-n)
		}
		out, err := s.Run(b.Inputs)
		if err != nil {
			return nil, fmt.Errorf("auto_mixed: the float32 model on samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		set.batches = append(set.batches, b)
		set.ref = append(set.ref, out)
		if n += b.N; a.Samples > 0 && n >= a.Samples {
			break
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("auto_mixed.dataset %q has no samples", a.Dataset)
	}
	if a.Metric == "accuracy" && !ds.HasLabels() {
		return nil, fmt.Errorf("auto_mixed.metric accuracy needs labels: add labels: to dataset %q or use sqnr_db", a.Dataset)
	}
	return set, nil
}

func (e *evalSet) samples() int {
	n := 0
	for _, b := range e.batches {
		n += b.N
	}
	return n
}

// eval runs cand on the samples and returns the metric of its worst output against the
// float32 model (NaN when an output has non-finite values the float32 model does not).
func (e *evalSet) eval(cand *onnxio.Model) (float64, error) {
	data, err := cand.Bytes()
	if err != nil {
		return 0, err
	}
	s, err := ort.NewSession(data, e.opts)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	// keep_io_types: false gives the candidate float16 (or bfloat16) inputs
	feeder := verify.NewFeeder("candidate", s.Inputs())
	acc := map[string]*verify.Accumulator{}
	labelsOn := ""
	for i, b := range e.batches {
		feeds, err := feeder.Feed(b.Inputs)
		if err != nil {
			return 0, err
		}
		got, err := s.Run(feeds)
		if err != nil {
			return 0, fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		for _, name := range e.outputs {
			rt, ct := e.ref[i][name], got[name]
			if rt == nil || ct == nil {
				return 0, fmt.Errorf("output %q is missing", name)
			}
			rv, err1 := rt.Float32s()
			cv, err2 := ct.Float32s()
			if err1 != nil || err2 != nil || len(rv) != len(cv) {
				continue // not a float output, or shapes differ: judged by verify
			}
			if acc[name] == nil {
				classes := 0
				if len(rt.Shape) == 2 && rt.Shape[1] >= 2 {
					classes = int(rt.Shape[1])
					if labelsOn == "" {
						labelsOn = name
					}
				}
				acc[name] = verify.NewAccumulator(name, classes)
			}
			var labels []int64
			if name == labelsOn {
				labels = b.Labels
			}
			acc[name].Add(rv, cv, b.N, labels)
		}
	}
	worst := math.Inf(1)
	judged := 0
	for _, name := range e.outputs {
		a := acc[name]
		if a == nil {
			continue
		}
		m := a.Metrics()
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

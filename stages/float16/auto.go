package float16

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize/fp16"
	"github.com/onnxpipe/onnxpipe/verify"
)

// autoMixed runs fp16.AutoMixed on m with candidates judged against ref (the float32
// model) on the auto_mixed dataset.
func autoMixed(p *pipeline.Pass, o *Options, m, ref *onnxio.Model, fo fp16.Options) (*fp16.Report, error) {
	a := o.AutoMixed
	set, err := loadEvalSet(p, ref, a)
	if err != nil {
		return nil, err
	}
	p.Note("auto_mixed: judging candidates on %d samples of dataset %q by %s >= %g", set.Samples(), a.Dataset, a.Metric, a.Min)
	rep, err := fp16.AutoMixed(m, fo, set.Eval, a.Min)
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

func loadEvalSet(p *pipeline.Pass, ref *onnxio.Model, a AutoMixed) (*verify.EvalSet, error) {
	ds, err := p.Dataset(a.Dataset, dataset.InputsOf(ref))
	if err != nil {
		return nil, fmt.Errorf("auto_mixed: %w", err)
	}
	rt := p.Runtime()
	set, err := verify.NewEvalSet(p.Ctx, ref, ds, a.Samples, string(a.Metric), ort.Options{Threads: rt.Threads, Optimization: rt.Optimization})
	if err != nil {
		return nil, fmt.Errorf("auto_mixed.dataset %q: %w", a.Dataset, err)
	}
	return set, nil
}

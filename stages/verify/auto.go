package verify

import (
	"fmt"
	"slices"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	quantstage "github.com/onnxpipe/onnxpipe/stages/quantize"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// autoExclude is the accuracy-aware mode: while the thresholds fail right after a
// quantize stage, the worst layers by per-layer SQNR go back to float and the model is
// quantized again, up to MaxTries times. Every try is noted in the report.
func autoExclude(p *pipeline.Pass, o *Options, ref *onnxio.Model, ds *dataset.Dataset, opts v.Options, rep *v.Report) (*v.Report, error) {
	prev := p.Entry - 1
	if prev < 0 || p.Job.Entries[prev].Stage != quantstage.Stage {
		p.Warn("auto_exclude applies right after a quantize stage; thresholds failed with no retry")
		return rep, nil
	}
	qr, ok := p.ResultOf[quantstage.Stage].(*quantstage.Result)
	if !ok || qr.Options == nil || qr.Before == nil {
		return rep, nil
	}
	perTry := o.AutoExclude.PerTry
	if perTry == 0 {
		perTry = 2
	}
	qo := *qr.Options
	qo.ExcludeNodes = append([]string(nil), qr.Options.ExcludeNodes...)
	before := onnxio.NewIndex(qr.Before.Graph())
	for try := 1; try <= o.AutoExclude.MaxTries && !rep.Passed; try++ {
		var added []string
		for _, l := range v.Worst(rep.PerLayer, len(rep.PerLayer)) {
			if len(added) >= perTry {
				break
			}
			for _, name := range producers(before, l.Tensor) {
				if name != "" && !slices.Contains(qo.ExcludeNodes, name) {
					qo.ExcludeNodes = append(qo.ExcludeNodes, name)
					added = append(added, name)
				}
			}
		}
		if len(added) == 0 {
			p.Note("auto_exclude try %d: no quantized layer left to put back to float", try)
			break
		}
		if _, err := quantstage.Apply(p, &qo, qr.Before); err != nil {
			return nil, fmt.Errorf("auto_exclude try %d: %w", try, err)
		}
		next, err := v.Run(p.Ctx, ref, p.Job.Model, ds, opts)
		if err != nil {
			return nil, fmt.Errorf("auto_exclude try %d: %w", try, err)
		}
		status := "still failing"
		if next.Passed {
			status = "passes"
		}
		p.Note("auto_exclude try %d: kept in float %v (%d excluded in all): %s (%d thresholds missed)", try, added, len(qo.ExcludeNodes), status, len(next.Failures))
		p.Metric(fmt.Sprintf("auto_exclude_try%d_failures", try), float64(len(next.Failures)), "")
		rep = next
	}
	return rep, nil
}

// producers names the float node that makes tensor and, when that node is an activation
// folded into its producer's range (Relu, Clip), the node before it as well.
func producers(ix *onnxio.Index, tensor string) []string {
	n := ix.Producer[tensor]
	if n == nil {
		return nil
	}
	names := []string{n.GetName()}
	if op := n.GetOpType(); (op == "Relu" || op == "Clip") && len(n.GetInput()) > 0 {
		if p := ix.Producer[n.GetInput()[0]]; p != nil {
			names = append(names, p.GetName())
		}
	}
	return names
}

package verify

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/stages/internal/results"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// autoExclude runs the accuracy-aware mode (verify.AutoExclude) with the quantize
// stage's result: its Requantize makes each try from the model before quantization (the
// job's previous model: the plan puts no other change in between). The last try's model
// becomes the job's model, passed or not: its report is the one judged.
func autoExclude(p *pipeline.Pass, o *Options, first *v.Report, eval v.Evaluator) (*Result, error) {
	qr, ok := pipeline.Result[*results.Quantization](p)
	if !ok || qr.Requantize == nil {
		return nil, fmt.Errorf("auto_exclude: the model before this stage was not made by a quantize stage that can quantize again")
	}
	float := p.Previous()
	requant := func(ctx context.Context, exclude []string) (*onnxio.Model, int, error) {
		m, r, err := qr.Requantize(ctx, float, exclude)
		if err != nil {
			return nil, 0, err
		}
		return m, r.NodesQuantized(), nil
	}
	found, err := v.AutoExclude(p.Ctx, float, first, requant, eval, v.AutoExcludeOptions{
		MaxTries: o.AutoExclude.MaxTries, PerTry: o.AutoExclude.PerTry, Excluded: qr.Exclude,
		Quantized: qr.NodesQuantized(), Log: p.Note})
	if err != nil {
		return nil, err
	}
	for _, t := range found.Tries[1:] {
		p.Metric(fmt.Sprintf("auto_exclude_try%d_failures", t.Try), float64(len(t.Failures)), "")
	}
	if found.Candidate != nil {
		p.SetModel(found.Candidate)
	}
	if !found.Report.Passed {
		p.Warn("auto_exclude: the thresholds still fail after %d tries", len(found.Tries)-1)
	}
	return &Result{Report: found.Report, Tries: found.Tries}, nil
}

// recordTries adds the table of the accuracy-aware mode's tries to the report.
func recordTries(p *pipeline.Pass, tries []v.Try) {
	if len(tries) == 0 {
		return
	}
	t := report.Table{Title: "auto_exclude tries", Columns: []string{"try", "put back to float", "in float", "quantized nodes",
		"SQNR (dB)", "top-1", "accuracy", "size ratio", "result"}}
	opt := func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.4f", *f)
	}
	for _, tr := range tries {
		added := strings.Join(tr.Added, ", ")
		if tr.Try == 0 {
			added = "(the quantize stage's model)"
		}
		result := "passes"
		if !tr.Passed {
			result = fmt.Sprintf("%d missed: %s", len(tr.Failures), strings.Join(tr.Failures, "; "))
		}
		t.Rows = append(t.Rows, []string{strconv.Itoa(tr.Try), added, strconv.Itoa(len(tr.Excluded)), strconv.Itoa(tr.NodesQuantized),
			fmt.Sprintf("%.2f", float64(tr.SQNRdB)), opt(tr.Top1Agreement), opt(tr.Accuracy), fmt.Sprintf("%.3fx", tr.SizeRatio), result})
	}
	t.Note = "Each try puts the nodes that introduce the most error (the largest drop in per-layer SQNR from their inputs to their output) back to float and quantizes the float model again; the last try is the model this stage judged."
	p.Table(t)
}

// Package verify is the `verify` stage: it compares the current model with a reference on
// a dataset, on each execution provider, measures latency, and judges thresholds.
package verify

import (
	"context"
	"reflect"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/stages/internal/results"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// Stage is the verify stage.
var Stage = &pipeline.Stage{
	Name: "verify",
	Doc: `Compare the model with a reference on real data and judge thresholds.

The candidate (the job's current model) and the reference (reference: input, the model
the job started with, or previous, the model before the latest stage that changed it) run
on the dataset; every output is compared: max/mean absolute error, RMSE, cosine, SQNR,
top-1/top-5 agreement for classifier-shaped outputs ([N, C], C >= 2), and accuracy
against labels. The candidate runs on each listed provider (the reference on cpu); a
provider that is missing is reported as unavailable and fails the job only when it is in
require. Latency (warmup, runs, p50/p90/p99 per batch size) is measured for both models.
A threshold missed fails the job (exit 1): its report is written, its output is not.
Without thresholds, default floors judge each output by what it means (default_floors).
Verify on an unchanged model is a plain evaluation.

Each model is fed the element types its inputs declare: float data is converted between
float types where a model wants another one (float32 data for a float16 model made with
keep_io_types: false), and float16 outputs are read as float32 for the metrics; a note
lists the conversions. Other type mismatches are errors.`,
	NewOptions: func() any { return defaults() },
	Requires:   requires,
	ResultType: reflect.TypeFor[*Result](),
	// auto_exclude replaces the model with the last try's
	Mutates: func(opts any) bool { return opts.(*Options).autoExclude() },
	Run:     run,
}

// requires asks, with auto_exclude, for the quantize stage that made the model, with no
// other change of the model in between: its result quantizes again.
func requires(opts any) []pipeline.Requirement {
	if !opts.(*Options).autoExclude() {
		return nil
	}
	return []pipeline.Requirement{{Result: reflect.TypeFor[*results.Quantization](), Request: results.JudgedLater{}, SameModel: true, For: "auto_exclude"}}
}

// Result is the verification outcome.
type Result struct {
	*v.Report
	// Tries are the accuracy-aware mode's attempts (auto_exclude), the first
	// quantization included as try 0; empty when the mode did not run.
	Tries []v.Try `json:"auto_exclude_tries,omitempty"`
}

// ReportData is what the report shows of it.
func (r *Result) ReportData() any { return r }

// reference picks the model the candidate is compared with.
func reference(p *pipeline.Pass, o *Options) *onnxio.Model {
	if o.Reference == Input {
		return p.Input()
	}
	return p.Previous()
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	ref := reference(p, o)
	spec, err := p.DatasetSpec(o.Dataset)
	if err != nil {
		return nil, err
	}
	// Each model is fed the element types it declares (float data converted between
	// float types, said in a note), so the dataset is read as the reference's types
	// allow: see verify.DataInputs.
	ds, err := p.Dataset(o.Dataset, v.DataInputs(spec, ref))
	if err != nil {
		return nil, err
	}
	opts := v.Options{Providers: o.Providers, Require: o.Require, Outputs: o.Outputs,
		Thresholds: o.thresholds(), Tasks: o.Tasks, Floors: o.DefaultFloors, PerLayerSamples: o.PerLayerSamples, Latency: o.Latency, Threads: p.Runtime().Threads, Optimization: p.Runtime().Optimization}
	eval := func(ctx context.Context, cand *onnxio.Model) (*v.Report, error) {
		return v.Run(ctx, ref, cand, ds, opts)
	}
	rep, err := eval(p.Ctx, p.Model())
	if err != nil {
		return nil, err
	}
	res := &Result{Report: rep}
	if !rep.Passed && o.autoExclude() {
		if res, err = autoExclude(p, o, rep, eval); err != nil {
			return nil, err
		}
	}
	record(p, res.Report)
	recordTries(p, res.Tries)
	if !res.Passed {
		return res, &pipeline.Rejected{Reasons: res.Failures}
	}
	return res, nil
}

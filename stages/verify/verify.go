// Package verify is the `verify` stage: it compares the current model with a reference on
// a dataset, on each execution provider, measures latency, and judges thresholds.
package verify

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
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
Verify on an unchanged model is a plain evaluation.`,
	NewOptions: func() any {
		return &Options{Reference: "input", Providers: []string{"cpu"}, Require: []string{"cpu"},
			Outputs: []string{}, Thresholds: map[string]float64{},
			Latency: v.LatencyOptions{Warmup: 5, Runs: 50, Batch: []int{1, 8}}}
	},
	Run: run,
}

func init() { pipeline.Register(Stage) }

// Options are the verify stage's options.
type Options struct {
	// Dataset names the dataset to compare on. Required.
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Reference is input (the model the job started with) or previous (the model before
	// the latest stage that changed it).
	Reference string `yaml:"reference" json:"reference"`
	// Providers the candidate runs on: cpu, cuda, tensorrt.
	Providers []string `yaml:"providers" json:"providers"`
	// Require lists providers that must be available, else the job fails.
	Require []string `yaml:"require" json:"require"`
	// Outputs are the outputs thresholds apply to (empty: all).
	Outputs []string `yaml:"outputs" json:"outputs"`
	// Thresholds maps a metric (sqnr_db, cosine, max_abs, mean_abs, rmse, top1_agreement,
	// top5_agreement, accuracy, accuracy_drop) to its bound; all must hold.
	Thresholds map[string]float64 `yaml:"thresholds" json:"thresholds"`
	// Latency sets warmup runs, timed runs and batch sizes (runs: 0 turns it off).
	Latency v.LatencyOptions `yaml:"latency" json:"latency"`
	// AutoExclude, when max_tries > 0 and thresholds fail right after a quantize stage,
	// puts the worst layers back to float and quantizes again, up to max_tries times.
	AutoExclude AutoExclude `yaml:"auto_exclude" json:"auto_exclude"`
}

// AutoExclude configures the accuracy-aware retry.
type AutoExclude struct {
	// MaxTries is the most re-quantizations (0: off).
	MaxTries int `yaml:"max_tries" json:"max_tries"`
	// PerTry is how many of the worst layers go back to float on each try.
	PerTry int `yaml:"per_try" json:"per_try,omitempty"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Dataset == "" {
		return fmt.Errorf("dataset is required")
	}
	if o.Reference != "input" && o.Reference != "previous" {
		return fmt.Errorf("reference %q: input or previous", o.Reference)
	}
	for _, list := range [][]string{o.Providers, o.Require} {
		for _, p := range list {
			if _, err := ort.ParseProvider(p); err != nil {
				return err
			}
		}
	}
	if err := v.Thresholds(o.Thresholds).Validate(); err != nil {
		return err
	}
	if o.Latency.Runs < 0 || o.Latency.Warmup < 0 {
		return fmt.Errorf("latency runs and warmup cannot be negative")
	}
	for _, b := range o.Latency.Batch {
		if b < 1 {
			return fmt.Errorf("latency.batch sizes must be >= 1")
		}
	}
	if o.AutoExclude.MaxTries < 0 || o.AutoExclude.PerTry < 0 {
		return fmt.Errorf("auto_exclude values cannot be negative")
	}
	return nil
}

var _ pipeline.Validator = (*Options)(nil)

// Result is the verification outcome, available to later stages.
type Result struct {
	*v.Report
}

// ReportData is what the report shows of it.
func (r *Result) ReportData() any { return r.Report }

func providers(names []string) []ort.Provider {
	var out []ort.Provider
	for _, n := range names {
		p, _ := ort.ParseProvider(n)
		out = append(out, p)
	}
	return out
}

// reference picks the model the candidate is compared with.
func reference(p *pipeline.Pass, o *Options) *onnxio.Model {
	if o.Reference == "input" {
		return p.Job.Input
	}
	if p.Job.Previous != nil {
		return p.Job.Previous
	}
	return p.Job.Input
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	spec, err := p.Job.Dataset(o.Dataset)
	if err != nil {
		return nil, err
	}
	ref := reference(p, o)
	ds, err := dataset.Open(spec, dataset.InputsOf(ref))
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", o.Dataset, err)
	}
	defer ds.Close()
	for _, w := range ds.Warnings() {
		p.Warn("dataset %q: %s", o.Dataset, w)
	}
	opts := v.Options{Providers: providers(o.Providers), Require: providers(o.Require), Outputs: o.Outputs,
		Thresholds: o.Thresholds, Latency: o.Latency, Threads: p.Job.Runtime.Threads, Optimization: p.Job.Runtime.Optimization}
	rep, err := v.Run(p.Ctx, ref, p.Job.Model, ds, opts)
	if err != nil {
		return nil, err
	}
	if !rep.Passed && o.AutoExclude.MaxTries > 0 {
		rep, err = autoExclude(p, o, ref, ds, opts, rep)
		if err != nil {
			return nil, err
		}
	}
	record(p, rep)
	if !rep.Passed {
		return &Result{rep}, &pipeline.Rejected{Reasons: rep.Failures}
	}
	return &Result{rep}, nil
}

// record turns the report into metrics, notes and charts.
func record(p *pipeline.Pass, rep *v.Report) {
	for _, pr := range rep.Providers {
		if !pr.Available {
			p.Warn("%s unavailable: %s", pr.Provider, pr.Reason)
			continue
		}
		for _, m := range pr.Outputs {
			prefix := m.Output + "." + string(pr.Provider) + "."
			if len(pr.Outputs) == 1 && pr.Provider == ort.CPU {
				prefix = ""
			}
			p.Metric(prefix+"sqnr_db", float64(m.SQNRdB), "dB")
			p.Metric(prefix+"cosine", m.Cosine, "")
			p.Metric(prefix+"max_abs", m.MaxAbs, "")
			if m.Top1Agreement != nil {
				p.Metric(prefix+"top1_agreement", *m.Top1Agreement, "")
			}
			if m.CandAccuracy != nil {
				p.Metric(prefix+"reference_accuracy", *m.RefAccuracy, "")
				p.KeyMetric(prefix+"accuracy", *m.CandAccuracy, "")
			} else if pr.Provider == ort.CPU {
				p.KeyMetric(prefix+"sqnr_db", float64(m.SQNRdB), "dB")
			}
		}
		if len(pr.Latency) > 0 {
			byBatch := map[int][2]float64{}
			var batches []int
			for _, l := range pr.Latency {
				e, seen := byBatch[l.Batch]
				if !seen {
					batches = append(batches, l.Batch)
				}
				if l.Model == "reference" {
					e[0] = l.P50
				} else {
					e[1] = l.P50
				}
				byBatch[l.Batch] = e
			}
			sort.Ints(batches)
			c := report.Chart{Title: fmt.Sprintf("latency on %s (p50)", pr.Provider), Kind: "bar", YLabel: "ms",
				Series: []report.Series{{Name: "reference"}, {Name: "candidate"}}}
			for _, b := range batches {
				e := byBatch[b]
				c.X = append(c.X, fmt.Sprintf("batch %d", b))
				c.Series[0].Values = append(c.Series[0].Values, report.Float(e[0]))
				c.Series[1].Values = append(c.Series[1].Values, report.Float(e[1]))
				if e[0] > 0 {
					p.Metric(fmt.Sprintf("latency_ratio_%s_b%d", pr.Provider, b), e[1]/e[0], "x")
				}
			}
			p.Chart(c)
		}
	}
	p.Metric("size_ratio", rep.SizeRatio, "x")
	for _, f := range rep.Failures {
		p.Warn("threshold missed: %s", f)
	}
	if len(rep.PerLayer) > 0 {
		c := report.Chart{Title: "per-layer SQNR along the graph", Kind: "line", XLabel: "tensor (graph order)", YLabel: "dB",
			Series: []report.Series{{Name: "SQNR"}}}
		for _, l := range rep.PerLayer {
			c.Series[0].Values = append(c.Series[0].Values, l.SQNRdB)
		}
		p.Chart(c)
		worst := v.Worst(rep.PerLayer, 5)
		var parts []string
		for _, l := range worst {
			parts = append(parts, fmt.Sprintf("%s %.1f dB", l.Tensor, float64(l.SQNRdB)))
		}
		p.Note("worst layers: %s", strings.Join(parts, ", "))
	}
}

// Package verify is the `verify` stage: it compares the current model with a reference on
// a dataset, on each execution provider, measures latency, and judges thresholds.
package verify

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
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
Verify on an unchanged model is a plain evaluation.

Each model is fed the element types its inputs declare: float data is converted between
float types where a model wants another one (float32 data for a float16 model made with
keep_io_types: false), and float16 outputs are read as float32 for the metrics; a note
lists the conversions. Other type mismatches are errors.`,
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
	// puts the layers that introduce the most error (the largest drop in per-layer SQNR
	// from their inputs) back to float and quantizes again, up to max_tries times.
	AutoExclude AutoExclude `yaml:"auto_exclude" json:"auto_exclude"`
}

// AutoExclude configures the accuracy-aware retry.
type AutoExclude struct {
	// MaxTries is the most re-quantizations (0: off).
	MaxTries int `yaml:"max_tries" json:"max_tries"`
	// PerTry is how many layers go back to float on each try (a folded Relu and the node
	// before it count as two).
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
	// Tries are the accuracy-aware mode's attempts (auto_exclude), the first
	// quantization included as try 0; empty when the mode did not run.
	Tries []Try `json:"auto_exclude_tries,omitempty"`
}

// ReportData is what the report shows of it.
func (r *Result) ReportData() any { return r }

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
	// Each model is fed the element types it declares (float data converted between
	// float types, said in a note), so the dataset is read as the reference's types
	// allow: see verify.DataInputs.
	ds, err := dataset.Open(spec, v.DataInputs(spec, ref))
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
	res := &Result{Report: rep}
	if !rep.Passed && o.AutoExclude.MaxTries > 0 {
		res, err = autoExclude(p, o, ref, ds, opts, rep)
		if err != nil {
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

// record turns the report into metrics, tables, charts and notes.
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
		if pr.LatencyNote != "" {
			p.Warn("latency on %s: %s", pr.Provider, pr.LatencyNote)
		}
		for _, b := range latencyBatches(pr.Latency) {
			r, c := p50(pr.Latency, "reference", b), p50(pr.Latency, "candidate", b)
			if r > 0 && c > 0 {
				p.Metric(fmt.Sprintf("latency_ratio_%s_b%d", pr.Provider, b), c/r, "x")
			}
		}
	}
	p.Metric("size_ratio", rep.SizeRatio, "x")
	if n := v.ConversionsNote(rep.Conversions); n != "" {
		p.Note("%s", n)
	}
	for _, f := range rep.Failures {
		p.Warn("threshold missed: %s", f)
	}
	p.Table(outputsTable(rep))
	if t, ok := latencyTable(rep); ok {
		p.Table(t)
	}
	for _, c := range latencyCharts(rep) {
		p.Chart(c)
	}
	if len(rep.PerLayer) > 0 {
		p.Chart(perLayerChart(rep.PerLayer))
		worst := v.Worst(rep.PerLayer, 5)
		t := report.Table{Title: "worst layers (lowest SQNR of the dequantized activation)",
			Columns: []string{"#", "tensor", "op", "depth", "SQNR (dB)", "value range"}}
		var parts []string
		for i, l := range worst {
			t.Rows = append(t.Rows, []string{strconv.Itoa(i + 1), l.Tensor, l.Op, strconv.Itoa(l.Depth),
				fmt.Sprintf("%.1f", float64(l.SQNRdB)), fmt.Sprintf("[%.3g, %.3g]", float64(l.Min), float64(l.Max))})
			parts = append(parts, fmt.Sprintf("%s %.1f dB", l.Tensor, float64(l.SQNRdB)))
		}
		t.Note = fmt.Sprintf("Quantized activations compared: %d, on up to 64 samples; SQNR = 10·log10(Σref² / Σ(ref−cand)²).", len(rep.PerLayer))
		p.Table(t)
		p.Note("worst layers: %s", strings.Join(parts, ", "))
	}
	for _, h := range rep.Histograms {
		c := report.Chart{Title: fmt.Sprintf("activations of %s (%.1f dB)", shortName(h.Tensor), float64(h.SQNRdB)),
			Kind: "hist", XLabel: "value", YLabel: "count", Series: []report.Series{{Name: "reference (float)"}, {Name: "candidate (dequantized)"}}}
		for i := range h.Reference {
			c.XNum = append(c.XNum, h.Lo+(float64(i)+0.5)*h.Width)
			c.Series[0].Values = append(c.Series[0].Values, report.Float(h.Reference[i]))
			c.Series[1].Values = append(c.Series[1].Values, report.Float(h.Candidate[i]))
		}
		p.Chart(c)
	}
}

// outputsTable lists every output's figures on every provider, unavailable ones too.
func outputsTable(rep *v.Report) report.Table {
	t := report.Table{Title: "outputs (candidate against the reference on cpu)",
		Columns: []string{"provider", "output", "SQNR (dB)", "cosine", "max abs", "mean abs", "RMSE", "top-1", "top-5", "accuracy (ref → cand)", "samples"}}
	opt := func(f *float64, format string) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf(format, *f)
	}
	row := func(provider string, m v.Metrics) []string {
		acc := "–"
		if m.CandAccuracy != nil {
			acc = fmt.Sprintf("%.4f → %.4f", *m.RefAccuracy, *m.CandAccuracy)
		}
		out := m.Output
		if m.NaN > 0 {
			out += fmt.Sprintf(" (%d non-finite)", m.NaN)
		}
		return []string{provider, out, fmt.Sprintf("%.2f", float64(m.SQNRdB)), fmt.Sprintf("%.6f", m.Cosine),
			fmt.Sprintf("%.4g", m.MaxAbs), fmt.Sprintf("%.4g", m.MeanAbs), fmt.Sprintf("%.4g", m.RMSE),
			opt(m.Top1Agreement, "%.4f"), opt(m.Top5Agreement, "%.4f"), acc, strconv.Itoa(m.Samples)}
	}
	for _, pr := range rep.Providers {
		if !pr.Available {
			t.Rows = append(t.Rows, []string{string(pr.Provider), "unavailable: " + pr.Reason})
			continue
		}
		for _, m := range pr.Outputs {
			t.Rows = append(t.Rows, row(string(pr.Provider), m))
		}
		for _, m := range pr.SelfCPU {
			t.Rows = append(t.Rows, row(string(pr.Provider)+" vs cpu", m))
		}
	}
	return t
}

func latencyBatches(ls []v.Latency) []int {
	var out []int
	for _, l := range ls {
		if !slices.Contains(out, l.Batch) {
			out = append(out, l.Batch)
		}
	}
	sort.Ints(out)
	return out
}

func find(ls []v.Latency, model string, batch int) *v.Latency {
	for i := range ls {
		if ls[i].Model == model && ls[i].Batch == batch {
			return &ls[i]
		}
	}
	return nil
}

func p50(ls []v.Latency, model string, batch int) float64 {
	if l := find(ls, model, batch); l != nil {
		return l.P50
	}
	return 0
}

// latencyTable has a row per provider and batch size: both models' percentiles and the
// latency ratio (candidate p50 / reference p50, as the latency_ratio metrics).
func latencyTable(rep *v.Report) (report.Table, bool) {
	t := report.Table{Title: "latency (ms per inference run)",
		Columns: []string{"provider", "batch", "runs", "reference p50", "ref p90", "ref p99", "candidate p50", "cand p90", "cand p99", "ratio"}}
	for _, pr := range rep.Providers {
		for _, b := range latencyBatches(pr.Latency) {
			r, c := find(pr.Latency, "reference", b), find(pr.Latency, "candidate", b)
			if c == nil {
				continue
			}
			if r == nil { // the reference did not open on this provider (LatencyNote)
				t.Rows = append(t.Rows, []string{string(pr.Provider), strconv.Itoa(b), strconv.Itoa(c.Runs),
					"–", "–", "–", ms(c.P50), ms(c.P90), ms(c.P99), "–"})
				continue
			}
			ratio := "–"
			if r.P50 > 0 {
				ratio = fmt.Sprintf("%.2fx", c.P50/r.P50)
			}
			t.Rows = append(t.Rows, []string{string(pr.Provider), strconv.Itoa(b), strconv.Itoa(c.Runs),
				ms(r.P50), ms(r.P90), ms(r.P99), ms(c.P50), ms(c.P90), ms(c.P99), ratio})
		}
	}
	t.Note = "ratio = candidate p50 / reference p50 (the latency_ratio metrics): below 1 the candidate is faster. Both run on the row's provider."
	for _, pr := range rep.Providers {
		if pr.LatencyNote != "" {
			t.Note += fmt.Sprintf(" %s: %s.", pr.Provider, pr.LatencyNote)
		}
	}
	return t, len(t.Rows) > 0
}

func ms(v float64) string { return fmt.Sprintf("%.3f", v) }

// latencyCharts draws, for each batch size, both models' p50 on every provider.
func latencyCharts(rep *v.Report) []report.Chart {
	var batches []int
	for _, pr := range rep.Providers {
		for _, b := range latencyBatches(pr.Latency) {
			if !slices.Contains(batches, b) {
				batches = append(batches, b)
			}
		}
	}
	sort.Ints(batches)
	var charts []report.Chart
	for _, b := range batches {
		c := report.Chart{Title: fmt.Sprintf("latency per provider, batch %d (p50)", b), Kind: "bar", YLabel: "ms",
			Series: []report.Series{{Name: "reference"}, {Name: "candidate"}}}
		for _, pr := range rep.Providers {
			r, k := find(pr.Latency, "reference", b), find(pr.Latency, "candidate", b)
			if r == nil || k == nil {
				continue
			}
			c.X = append(c.X, string(pr.Provider))
			c.Series[0].Values = append(c.Series[0].Values, report.Float(r.P50))
			c.Series[1].Values = append(c.Series[1].Values, report.Float(k.P50))
		}
		if len(c.X) > 0 {
			charts = append(charts, c)
		}
	}
	return charts
}

// perLayerChart draws the SQNR of each quantized activation in graph order, named.
func perLayerChart(layers []v.Layer) report.Chart {
	c := report.Chart{Title: "per-layer SQNR along the graph", Kind: "line", XLabel: "quantized activation (graph order)", YLabel: "SQNR (dB)",
		Series: []report.Series{{Name: "SQNR"}}}
	var finite []float64
	for i, l := range layers {
		c.XNum = append(c.XNum, float64(i))
		c.X = append(c.X, shortName(l.Tensor))
		c.Series[0].Values = append(c.Series[0].Values, l.SQNRdB)
		if f := float64(l.SQNRdB); !math.IsInf(f, 0) && !math.IsNaN(f) {
			finite = append(finite, f)
		}
	}
	// A layer quantized almost losslessly (the graph input, say, at 140 dB) would squash
	// the others: cap the axis at twice the median when some value is above it.
	if len(finite) > 2 {
		sorted := slices.Clone(finite)
		sort.Float64s(sorted)
		med := sorted[len(sorted)/2]
		if limit := 2 * med; med > 0 && sorted[len(sorted)-1] > limit {
			top := report.Float(limit)
			c.YMax = &top
		}
	}
	// identical activations (+Inf dB) are drawn at the top too
	if c.YMax == nil && len(finite) > 0 && len(finite) < len(layers) {
		top := report.Float(slices.Max(finite) + 10)
		c.YMax = &top
	}
	return c
}

// shortName shortens a tensor name for a chart: "/features/features.6/Relu_output_0"
// becomes "features.6/Relu".
func shortName(t string) string {
	s := strings.TrimSuffix(strings.TrimPrefix(t, "/"), "_output_0")
	parts := strings.Split(s, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, "/")
}

package verify

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// taskMetric is one task metric of an output, by its threshold key.
type taskMetric struct {
	key   string
	value float64
}

// taskMetrics lists the task metrics of m beyond top-1, the one that says most first
// (it becomes the job's key metric when there is no accuracy).
func taskMetrics(m v.Metrics) []taskMetric {
	var out []taskMetric
	add := func(key string, f *float64) {
		if f != nil {
			out = append(out, taskMetric{key, *f})
		}
	}
	add("mask_iou", m.MaskIoU)
	add("sequence_agreement", m.SequenceAgreement)
	add("step_agreement", m.StepAgreement)
	add("decision_agreement", m.DecisionAgreement)
	return out
}

// taskCell is the outputs table's task column: the output's kind and its task figures.
func taskCell(m v.Metrics) string {
	if m.Task == "" || m.Task == v.TaskNone || m.Task == v.TaskScores {
		return "–"
	}
	parts := []string{string(m.Task)}
	for _, t := range taskMetrics(m) {
		parts = append(parts, fmt.Sprintf("%s %.4f", strings.ReplaceAll(t.key, "_", " "), t.value))
	}
	if m.ReferencePositive != nil {
		parts = append(parts, fmt.Sprintf("positive %.1f%% → %.1f%%", 100**m.ReferencePositive, 100**m.CandidatePositive))
	}
	return strings.Join(parts, ", ")
}

// slower is the latency ratio above which the report warns that the candidate is slower
// than its reference: 5% above, beyond the run-to-run noise of a p50 over the default
// 50 runs.
const slower = 1.05

// slowdowns says where the candidate is slower than the reference on pr's provider, one
// line per batch size.
func slowdowns(pr *v.ProviderReport) []string {
	var out []string
	for _, b := range latencyBatches(pr.Latency) {
		r, c := p50(pr.Latency, "reference", b), p50(pr.Latency, "candidate", b)
		if r > 0 && c > r*slower {
			out = append(out, fmt.Sprintf("the candidate is slower than the reference on %s at batch %d: %.2fx the reference's p50 (%.3g ms against %.3g ms)", pr.Provider, b, c/r, c, r))
		}
	}
	return out
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
			task := taskMetrics(m)
			for _, t := range task {
				p.Metric(prefix+t.key, t.value, "")
			}
			switch {
			case m.CandAccuracy != nil:
				p.Metric(prefix+"reference_accuracy", *m.RefAccuracy, "")
				p.KeyMetric(prefix+"accuracy", *m.CandAccuracy, "")
			case pr.Provider != ort.CPU:
			case len(task) > 0:
				p.KeyMetric(prefix+task[0].key, task[0].value, "")
			default:
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
		for _, w := range slowdowns(pr) {
			p.Warn("%s", w)
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
		t.Note = fmt.Sprintf("Quantized activations compared: %d, on %d samples; SQNR = 10·log10(Σref² / Σ(ref−cand)²).", len(rep.PerLayer), rep.PerLayer[0].Samples)
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
		Columns: []string{"provider", "output", "SQNR (dB)", "cosine", "max abs", "mean abs", "RMSE", "top-1", "top-5", "accuracy (ref → cand)", "task", "samples"}}
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
			opt(m.Top1Agreement, "%.4f"), opt(m.Top5Agreement, "%.4f"), acc, taskCell(m), strconv.Itoa(m.Samples)}
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

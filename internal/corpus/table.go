package corpus

import (
	"fmt"
	"math"
	"strings"

	"github.com/onnxpipe/onnxpipe/verify"
)

// floorOf is the default floor verify judges metric key by (verify.DefaultFloors).
func floorOf(key string) (float64, bool) {
	for _, floors := range verify.DefaultFloors {
		if f, ok := floors[key]; ok {
			return f, true
		}
	}
	return 0, false
}

// Problems lists what the corpus check fails on: an internal error (exit 3), a job that
// left no report or ran out of time, and an artifact marked ok under verify's default
// floor of its task metric (the run sets no thresholds, so verify judges those floors
// itself: one marked ok below them is a wrong artifact marked ok).
func Problems(results []Result) []string {
	var out []string
	for _, r := range results {
		where := r.Model + " / " + r.Variant
		switch {
		case r.Exit == 3:
			out = append(out, fmt.Sprintf("%s: internal error: %s", where, r.Reason))
		case r.Status == "no report" || r.Status == "timeout":
			out = append(out, fmt.Sprintf("%s: %s: %s", where, r.Status, r.Reason))
		case r.Status == "ok":
			key := r.Key
			if key == "accuracy" {
				key = "top1_agreement"
			}
			if f, ok := floorOf(key); ok && float64(r.Metrics[key]) < f {
				out = append(out, fmt.Sprintf("%s: marked ok with %s %.4g, under the floor %g", where, key, float64(r.Metrics[key]), f))
			}
		}
	}
	return out
}

// Markdown renders the results as docs/corpus.md's tables, one per model.
func Markdown(list []Entry, results []Result, header string) string {
	var b strings.Builder
	b.WriteString(header)
	byModel := map[string][]Result{}
	for _, r := range results {
		byModel[r.Model] = append(byModel[r.Model], r)
	}
	for _, e := range list {
		fmt.Fprintf(&b, "\n## %s\n\n`%s` from npm `%s`; inputs: %s.\n\n", e.Name, e.Path, e.Package, e.Inputs)
		rs := byModel[e.Name]
		if len(rs) > 0 && rs[0].Status == "not run" && Unfed(e.Inputs) != "" {
			fmt.Fprintf(&b, "Not run: %s.\n", Unfed(e.Inputs))
			continue
		}
		b.WriteString("| variant | status | task metric | SQNR (dB) | size | latency b1 | int8 share | s | reason |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rs {
			task := "–"
			if r.Key != "" && r.Key != "sqnr_db" {
				task = fmt.Sprintf("%s %s", r.Key, num(float64(r.Metrics[r.Key]), "%.4f"))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.0f | %s |\n", r.Variant, r.Status, task,
				metric(r, "sqnr_db", "%.1f"), metric(r, "size_ratio", "%.2fx"), metric(r, "latency_ratio_cpu_b1", "%.2fx"),
				metric(r, "int8_kernel_ratio", "%.2f"), r.Seconds, cell(r.Reason))
		}
	}
	return b.String()
}

func metric(r Result, k, format string) string {
	v, ok := r.Metrics[k]
	if !ok {
		return "–"
	}
	return num(float64(v), format)
}

func num(v float64, format string) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return fmt.Sprintf(format, v)
}

// cell shortens a reason to one table cell.
func cell(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "|", "/"), "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

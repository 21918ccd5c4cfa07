package report

import (
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"
)

// Index is a batch's overview page, index.html beside summary.json: one row per job,
// linking to the job's HTML report, with its status and key figures.
type Index struct {
	Config  string
	Created time.Time
	Tool    Tool
	Counts  map[string]int
	Jobs    []IndexJob
	// Shard is "i/n" on the page of one shard of a batch.
	Shard string
	// Summary is the name of the summary JSON beside the page (default summary.json).
	Summary string
	// Merged is how many summaries `onnxpipe summarize` merged into the page (0: one run).
	Merged int
}

// IndexJob is one job on the index page.
type IndexJob struct {
	Name   string
	Model  string
	Output string
	// Report is the link to the job's HTML report, relative to the page ("" when the job
	// has none).
	Report string
	Status string
	// UpToDate marks a job the run skipped as up to date: the row is the result its
	// manifest records.
	UpToDate    bool
	Error       string
	Seconds     float64
	InputBytes  int64
	OutputBytes int64
	KeyMetric   *Metric
}

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"style": func() template.CSS { return template.CSS(PageStyle) },
	"badge": badgeClass, "bytes": HumanBytes, "value": FormatValue,
	"ratio": func(a, b int64) string { return fmt.Sprintf("%.2fx", float64(b)/float64(max(1, a))) },
	"counts": func(m map[string]int) []string {
		var out []string
		for _, s := range []string{"ok", "skipped", "rejected", "failed", "interrupted"} {
			if m[s] > 0 {
				out = append(out, fmt.Sprintf("%d %s", m[s], s))
			}
		}
		return out
	},
	"total": func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>onnxpipe batch — {{.Config}}</title>
<style>{{style}}</style></head><body>
<h1>Batch{{with .Shard}}, shard {{.}}{{end}}: {{total .Counts}} jobs</h1>
<p class="muted">config <code>{{.Config}}</code>, {{.Created.Format "2006-01-02 15:04 UTC"}}; {{.Tool.Name}} {{.Tool.Version}}{{with .Tool.ONNXRuntime}}, onnxruntime {{.}}{{end}}{{with .Merged}}; merged from {{.}} summaries{{end}}</p>
<div class="cards">{{range counts .Counts}}<div class="card"><div class="v">{{.}}</div></div>{{end}}</div>
<div class="scroll"><table class="full">
<tr><th>job</th><th>status</th><th class="num">time</th><th class="num">input</th><th class="num">output</th><th class="num">ratio</th><th>key metric</th><th>model / reason</th></tr>
{{range .Jobs}}<tr>
<td>{{if .Report}}<a href="{{.Report}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td>
<td><span class="badge {{badge .Status}}">{{.Status}}</span>{{if .UpToDate}} <span class="muted">up to date</span>{{end}}</td>
<td class="num">{{printf "%.1f s" .Seconds}}</td>
<td class="num">{{if .InputBytes}}{{bytes .InputBytes}}{{end}}</td>
<td class="num">{{if .OutputBytes}}{{bytes .OutputBytes}}{{else}}–{{end}}</td>
<td class="num">{{if .OutputBytes}}{{ratio .InputBytes .OutputBytes}}{{end}}</td>
<td>{{with .KeyMetric}}{{.Name}} <b>{{value .Value .Unit}}</b>{{end}}</td>
<td><code>{{.Model}}</code>{{with .Error}}<div class="bad">{{.}}</div>{{end}}</td>
</tr>
{{end}}</table></div>
<p class="muted">Each job's name links to its report; {{or .Summary "summary.json"}} beside this page has the same rows as JSON.</p>
</body></html>
`))

// HTML renders the index page; jobs are listed failed first (rejected, failed,
// interrupted), then by name.
func (x *Index) HTML() ([]byte, error) {
	jobs := append([]IndexJob(nil), x.Jobs...)
	rank := func(s string) int {
		switch s {
		case "ok":
			return 2
		case "skipped":
			return 3
		}
		return 1
	}
	sort.SliceStable(jobs, func(i, k int) bool {
		if a, b := rank(jobs[i].Status), rank(jobs[k].Status); a != b {
			return a < b
		}
		return strings.ToLower(jobs[i].Name) < strings.ToLower(jobs[k].Name)
	})
	y := *x
	y.Jobs = jobs
	var b bytes.Buffer
	if err := indexPage.Execute(&b, &y); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// JSON renders the report as indented JSON.
func (j *Job) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the report is read by people: keep ">=" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Markdown renders the report for a terminal or a pull request.
func (j *Job) Markdown() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s: %s\n\n", mdCell(j.Name), strings.ToUpper(j.Status))
	if j.Error != "" {
		fmt.Fprintf(&b, "**Error:** %s\n\n", mdCell(j.Error))
	}
	fmt.Fprintf(&b, "| | path | size | sha256 |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| input | %s | %s | %.12s |\n", mdCell(j.Model.Path), HumanBytes(j.Model.Bytes), j.Model.SHA256)
	for _, f := range j.Saved {
		fmt.Fprintf(&b, "| saved | %s | %s | %.12s |\n", mdCell(f.Path), HumanBytes(f.Bytes), f.SHA256)
	}
	if j.Output != nil {
		fmt.Fprintf(&b, "| output | %s | %s | %.12s |\n", mdCell(j.Output.Path), HumanBytes(j.Output.Bytes), j.Output.SHA256)
		if j.Model.Bytes > 0 {
			fmt.Fprintf(&b, "\nSize ratio: %.3fx\n", float64(j.Output.Bytes)/float64(j.Model.Bytes))
		}
	}
	fmt.Fprintf(&b, "\n## Stages\n\n| # | stage | status | seconds |\n|---|---|---|---|\n")
	for _, s := range j.Stages {
		name := s.Stage
		if s.Implicit {
			name += " (added)"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %.2f |\n", s.Index+1, mdCell(name), s.Status, s.Seconds)
	}
	for _, s := range j.Stages {
		if len(s.Metrics)+len(s.Notes)+len(s.Warnings) == 0 && s.Error == "" {
			continue
		}
		fmt.Fprintf(&b, "\n### %d. %s\n\n", s.Index+1, mdCell(s.Stage))
		if s.Error != "" {
			fmt.Fprintf(&b, "**Error:** %s\n\n", mdCell(s.Error))
		}
		if len(s.Metrics) > 0 {
			fmt.Fprintf(&b, "| metric | value |\n|---|---|\n")
			for _, m := range s.Metrics {
				fmt.Fprintf(&b, "| %s | %s |\n", mdCell(m.Name), mdCell(FormatValue(m.Value, m.Unit)))
			}
			b.WriteString("\n")
		}
		for _, t := range s.Tables {
			b.WriteString(markdownTable(t))
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "- warning: %s\n", mdCell(w))
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", mdCell(n))
		}
	}
	e := j.Environment
	fmt.Fprintf(&b, "\n## Environment\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| tool | %s %s (%s) |\n", j.Tool.Name, j.Tool.Version, j.Tool.Go)
	fmt.Fprintf(&b, "| onnxruntime | %s %s |\n", mdCell(j.Tool.ONNXRuntime), mdCell(e.Library))
	fmt.Fprintf(&b, "| providers | %s |\n", strings.Join(e.Providers, ", "))
	for _, p := range sortedKeys(e.Unavailable) {
		fmt.Fprintf(&b, "| %s | unavailable: %s |\n", p, mdCell(e.Unavailable[p]))
	}
	fmt.Fprintf(&b, "| machine | %s/%s, %d CPUs, %s |\n", e.OS, e.Arch, e.CPUs, mdCell(e.CPU))
	fmt.Fprintf(&b, "| CPU features | %s |\n", strings.Join(e.Features, " "))
	return b.Bytes()
}

func markdownTable(t Table) string {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "**%s**\n\n", mdCell(t.Title))
	}
	b.WriteString("|")
	for _, c := range t.Columns {
		b.WriteString(" " + mdCell(c) + " |")
	}
	b.WriteString("\n|" + strings.Repeat("---|", len(t.Columns)) + "\n")
	for _, r := range t.Rows {
		b.WriteString("|")
		for _, c := range r {
			b.WriteString(" " + mdCell(c) + " |")
		}
		b.WriteString(strings.Repeat(" |", max(0, len(t.Columns)-len(r))) + "\n")
	}
	if t.Note != "" {
		fmt.Fprintf(&b, "\n%s\n", mdCell(t.Note))
	}
	b.WriteString("\n")
	return b.String()
}

// mdCell makes text safe in a Markdown table cell or line: "<" and "&" become entities
// (a model named "<img onerror=...>" stays text in any renderer; ">" alone starts no
// markup and stays readable in "float -> float16"), a pipe is escaped and a line break
// becomes a space.
func mdCell(s string) string { return mdEscaper.Replace(s) }

var mdEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", "|", "\\|", "\n", " ", "\r", " ")

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HumanBytes formats a byte count with binary units.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// FormatValue prints a metric value (five significant digits) with its unit.
func FormatValue(v Float, unit string) string {
	s := fmt.Sprintf("%.5g", float64(v))
	if f := float64(v); f == math.Trunc(f) && math.Abs(f) < 1e15 {
		s = strconv.FormatFloat(f, 'f', 0, 64) // counts stay exact: 207114, not 2.0711e+05
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

// sizeChart draws the sizes of the input, of the models saved along the chain and of the
// output, in a unit that suits them all.
func sizeChart(j *Job) (Chart, bool) {
	if j.Output == nil || j.Model.Bytes == 0 {
		return Chart{}, false
	}
	files := append(append([]File{j.Model}, j.Saved...), *j.Output)
	names := []string{"input"}
	for _, f := range j.Saved {
		names = append(names, strings.TrimSuffix(filepath.Base(f.Path), ".onnx"))
	}
	names = append(names, "output")
	unit, div := "KiB", float64(1<<10)
	for _, f := range files {
		if f.Bytes >= 10<<20 {
			unit, div = "MiB", 1<<20
		}
	}
	c := Chart{Title: fmt.Sprintf("model size (%.2fx)", float64(j.Output.Bytes)/float64(j.Model.Bytes)), Kind: "bar", YLabel: unit,
		X: names, Series: []Series{{Name: "size"}}}
	for _, f := range files {
		c.Series[0].Values = append(c.Series[0].Values, Float(float64(f.Bytes)/div))
	}
	return c, true
}

func chartHTML(c Chart) template.HTML {
	svg, err := c.SVG()
	if err != nil {
		return template.HTML("<p class=err>chart " + template.HTMLEscapeString(c.Title) + ": " + template.HTMLEscapeString(err.Error()) + "</p>")
	}
	return svg
}

// PageStyle is the CSS of the report and index pages.
const PageStyle = `
:root{--ok:#17803d;--bad:#b42318;--warn:#9a6700;--muted:#5f6368;--line:#e3e3e3;--bg2:#f6f7f8}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1.25em;color:#1f2328}
h1{margin:.2em 0 .4em;font-size:1.7em} h2{margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--line);font-size:1.3em} h3{font-size:1.05em;margin:1.2em 0 .4em}
.badge{display:inline-block;padding:.05em .55em;border-radius:.35em;font-size:.7em;vertical-align:middle;color:#fff;background:var(--bad);letter-spacing:.03em}
span.badge.ok{background:var(--ok);color:#fff} span.badge.skipped{background:var(--muted);color:#fff} span.badge.bad{color:#fff}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:14px}
table.full{width:100%}
td,th{border-bottom:1px solid var(--line);padding:.3em .7em;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{background:#f0f1f2;padding:0 .25em;border-radius:3px;font-size:13px;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid var(--line);border-radius:.5em;padding:.55em .9em;min-width:11em;background:#fff}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:1.35em;font-weight:600;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em 1.5em;align-items:start}
figure{margin:0;border:1px solid var(--line);border-radius:.5em;padding:.4em}
figure svg{display:block;width:100%;height:auto}
.metrics{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:.15em 1.5em;margin:.5em 0 1em;font-size:14px}
.metrics div{display:flex;justify-content:space-between;border-bottom:1px dotted var(--line);padding:.1em 0}
.metrics span:last-child{font-variant-numeric:tabular-nums;font-weight:600;margin-left:1em;white-space:nowrap}
.callout{border-left:4px solid var(--warn);background:#fff8e6;padding:.4em .8em;margin:.5em 0;overflow-wrap:anywhere}
.callout.err{border-color:var(--bad);background:#fdecea;color:var(--bad)}
.muted{color:var(--muted)} .ok{color:var(--ok)} .bad{color:var(--bad)} .warn{color:var(--warn)}
.scroll+p.muted{margin-top:-.6em}
ul.notes{padding-left:1.2em;margin:.4em 0;color:#333;font-size:14px;overflow-wrap:anywhere}
`

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": HumanBytes, "value": FormatValue, "upper": strings.ToUpper, "inc": func(i int) int { return i + 1 },
	"svg":   chartHTML,
	"style": func() template.CSS { return template.CSS(PageStyle) },
	"sizeChart": func(j *Job) template.HTML {
		if c, ok := sizeChart(j); ok {
			return chartHTML(c)
		}
		return ""
	},
	"ratio": func(a, b int64) string { return fmt.Sprintf("%.2fx", float64(b)/float64(max(1, a))) },
	"key": func(j *Job) *Metric {
		if m, ok := j.KeyMetric(); ok {
			return &m
		}
		return nil
	},
	"num":      numeric.MatchString,
	"span":     func(n, i int) int { return n - i },
	"sorted":   sortedKeys,
	"seconds":  func(s float64) string { return fmt.Sprintf("%.2f s", s) },
	"badge":    badgeClass,
	"thousand": thousands,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Name}} — onnxpipe report</title>
<style>{{style}}</style></head><body>
<h1>{{.Name}} <span class="badge {{badge .Status}}">{{upper .Status}}</span></h1>
{{if .Error}}<div class="callout err"><b>Error:</b> {{.Error}}</div>{{end}}
<div class="cards">
{{with .Output}}<div class="card"><div class="k">size</div><div class="v">{{bytes $.Model.Bytes}} → {{bytes .Bytes}}</div><div class="muted">{{ratio $.Model.Bytes .Bytes}} of the input</div></div>{{end}}
{{with key .}}<div class="card"><div class="k">{{.Name}}</div><div class="v">{{value .Value .Unit}}</div><div class="muted">key metric</div></div>{{end}}
<div class="card"><div class="k">time</div><div class="v">{{seconds .Seconds}}</div><div class="muted">started {{.Started.Format "2006-01-02 15:04 UTC"}}</div></div>
<div class="card"><div class="k">onnxruntime</div><div class="v">{{or .Tool.ONNXRuntime "?"}}</div><div class="muted">{{range .Environment.Providers}}{{.}} {{end}}</div></div>
</div>
<h2>Models</h2>
<div class="scroll"><table class="full"><tr><th></th><th>path</th><th class="num">size</th><th class="num">nodes</th><th class="num">parameters</th><th>quantization</th><th>sha256</th></tr>
<tr><td>input</td><td><code>{{.Model.Path}}</code></td><td class="num">{{bytes .Model.Bytes}}</td><td class="num">{{.Model.Nodes}}</td><td class="num">{{thousand .Model.Params}}</td><td>{{.Model.Quantization}}</td><td><code title="{{.Model.SHA256}}">{{printf "%.12s" .Model.SHA256}}</code></td></tr>
{{range .Saved}}<tr><td>saved</td><td><code>{{.Path}}</code></td><td class="num">{{bytes .Bytes}}</td><td class="num">{{.Nodes}}</td><td class="num">{{thousand .Params}}</td><td>{{.Quantization}}</td><td><code title="{{.SHA256}}">{{printf "%.12s" .SHA256}}</code></td></tr>{{end}}
{{with .Output}}<tr><td>output</td><td><code>{{.Path}}</code></td><td class="num">{{bytes .Bytes}}</td><td class="num">{{.Nodes}}</td><td class="num">{{thousand .Params}}</td><td>{{.Quantization}}</td><td><code title="{{.SHA256}}">{{printf "%.12s" .SHA256}}</code></td></tr>{{end}}
</table></div>
{{with sizeChart .}}<div class="charts"><figure>{{.}}</figure></div>{{end}}
<h2>Stages</h2>
<table><tr><th>#</th><th>stage</th><th>status</th><th class="num">time</th></tr>
{{range .Stages}}<tr><td>{{inc .Index}}</td><td><a href="#stage-{{inc .Index}}">{{.Stage}}</a>{{if .Implicit}} <span class="muted">(added by the plan)</span>{{end}}</td><td class="{{badge .Status}}">{{.Status}}</td><td class="num">{{seconds .Seconds}}</td></tr>
{{end}}</table>
{{range .Stages}}
<h2 id="stage-{{inc .Index}}">{{inc .Index}}. {{.Stage}} <span class="badge {{badge .Status}}">{{.Status}}</span></h2>
{{if .Error}}<div class="callout err">{{.Error}}</div>{{end}}
{{range .Warnings}}<div class="callout">{{.}}</div>{{end}}
{{if .Metrics}}<div class="metrics">{{range .Metrics}}<div><span>{{.Name}}</span><span>{{value .Value .Unit}}</span></div>{{end}}</div>{{end}}
{{range .Tables}}{{if .Title}}<h3>{{.Title}}</h3>{{end}}<div class="scroll"><table><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{$n := len .Columns}}{{range .Rows}}<tr>{{$cells := .}}{{range $i, $c := .}}<td{{if num $c}} class="num"{{end}}{{if and (eq (inc $i) (len $cells)) (lt (len $cells) $n)}} colspan="{{span $n $i}}"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table></div>{{with .Note}}<p class="muted">{{.}}</p>{{end}}{{end}}
{{if .Charts}}<div class="charts">{{range .Charts}}<figure>{{svg .}}</figure>{{end}}</div>{{end}}
{{if .Notes}}<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}
<h2>Environment</h2>
<p class="muted">What the figures above depend on.</p>
<div class="scroll"><table>
<tr><th>tool</th><td>{{.Tool.Name}} {{.Tool.Version}} ({{.Tool.Go}})</td></tr>
<tr><th>onnxruntime</th><td>{{or .Tool.ONNXRuntime "not loaded"}}{{with .Environment.Library}} <code>{{.}}</code>{{end}}</td></tr>
<tr><th>providers</th><td>{{range .Environment.Providers}}<span class="ok">{{.}}</span> {{else}}<span class="muted">unknown</span>{{end}}</td></tr>
{{$u := .Environment.Unavailable}}{{range sorted $u}}<tr><th>{{.}}</th><td><span class="bad">unavailable</span>: {{index $u .}}</td></tr>{{end}}
<tr><th>machine</th><td>{{.Environment.OS}}/{{.Environment.Arch}}, {{.Environment.CPUs}} CPUs{{with .Environment.CPU}}, {{.}}{{end}}</td></tr>
<tr><th>CPU features</th><td>{{range .Environment.Features}}<code>{{.}}</code> {{else}}<span class="muted">none of the int8/float16 ones</span>{{end}}</td></tr>
<tr><th>config sha256</th><td><code>{{.ConfigSHA256}}</code></td></tr>
</table></div>
</body></html>
`))

// numeric matches table cells that are figures (right-aligned): 0.98, 1.2x, 36.3 dB,
// 0.9878 → 0.9871.
var numeric = regexp.MustCompile(`^[-+]?[0-9][0-9.,\x{2009}]*(e[-+]?[0-9]+)?( ?(x|%|dB|ms|s|KiB|MiB|GiB|B))?( → [-+]?[0-9][0-9.]*(e[-+]?[0-9]+)?)?$`)

func badgeClass(status string) string {
	switch status {
	case "ok":
		return "ok"
	case "skipped", "not run":
		return "skipped"
	}
	return "bad"
}

// thousands writes n with thin spaces between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "\u2009" + s[i:]
	}
	return s
}

// HTML renders a self-contained page.
func (j *Job) HTML() ([]byte, error) {
	var b bytes.Buffer
	if err := htmlPage.Execute(&b, j); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
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
	fmt.Fprintf(&b, "# %s: %s\n\n", j.Name, strings.ToUpper(j.Status))
	if j.Error != "" {
		fmt.Fprintf(&b, "**Error:** %s\n\n", j.Error)
	}
	fmt.Fprintf(&b, "| | path | size | sha256 |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| input | %s | %s | %.12s |\n", j.Model.Path, HumanBytes(j.Model.Bytes), j.Model.SHA256)
	if j.Output != nil {
		fmt.Fprintf(&b, "| output | %s | %s | %.12s |\n", j.Output.Path, HumanBytes(j.Output.Bytes), j.Output.SHA256)
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
		fmt.Fprintf(&b, "| %d | %s | %s | %.2f |\n", s.Index+1, name, s.Status, s.Seconds)
	}
	for _, s := range j.Stages {
		if len(s.Metrics)+len(s.Notes)+len(s.Warnings) == 0 && s.Error == "" {
			continue
		}
		fmt.Fprintf(&b, "\n### %d. %s\n\n", s.Index+1, s.Stage)
		if s.Error != "" {
			fmt.Fprintf(&b, "**Error:** %s\n\n", s.Error)
		}
		if len(s.Metrics) > 0 {
			fmt.Fprintf(&b, "| metric | value |\n|---|---|\n")
			for _, m := range s.Metrics {
				fmt.Fprintf(&b, "| %s | %s |\n", m.Name, FormatValue(m.Value, m.Unit))
			}
			b.WriteString("\n")
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "- warning: %s\n", w)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\n## Environment\n\n%s %s/%s, %d CPUs %s; onnxruntime %s; providers: %s\n",
		j.Tool.Name+" "+j.Tool.Version, j.Environment.OS, j.Environment.Arch, j.Environment.CPUs,
		j.Environment.CPU, j.Tool.ONNXRuntime, strings.Join(j.Environment.Providers, ", "))
	return b.Bytes()
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

// FormatValue prints a metric value with its unit.
func FormatValue(v Float, unit string) string {
	s := fmt.Sprintf("%.6g", float64(v))
	if unit != "" {
		s += " " + unit
	}
	return s
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": HumanBytes, "value": FormatValue, "upper": strings.ToUpper, "inc": func(i int) int { return i + 1 },
	"svg": func(c Chart) template.HTML {
		svg, err := c.SVG()
		if err != nil {
			return template.HTML("<p class=err>chart " + template.HTMLEscapeString(c.Title) + ": " + template.HTMLEscapeString(err.Error()) + "</p>")
		}
		return svg
	},
	"sizeChart": func(j *Job) template.HTML {
		if j.Output == nil || j.Model.Bytes == 0 {
			return ""
		}
		c := Chart{Title: "model size", Kind: "bar", YLabel: "MiB", X: []string{"input", "output"},
			Series: []Series{{Name: "size", Values: []Float{Float(j.Model.Bytes) / (1 << 20), Float(j.Output.Bytes) / (1 << 20)}}}}
		svg, err := c.SVG()
		if err != nil {
			return ""
		}
		return svg
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}} — onnxpipe report</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1 .ok{color:#17803d} h1 .bad{color:#b42318} table{border-collapse:collapse;margin:1em 0;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top} th{background:#f6f6f6}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px} figure{margin:1em 0} svg{max-width:100%;height:auto} .warn{color:#9a6700} .err{color:#b42318}
.muted{color:#666;font-size:90%}
</style></head><body>
<h1>{{.Name}} <span class="{{if eq .Status "ok"}}ok{{else}}bad{{end}}">{{upper .Status}}</span></h1>
{{if .Error}}<p class="err"><b>Error:</b> {{.Error}}</p>{{end}}
<table><tr><th></th><th>path</th><th>size</th><th>sha256</th></tr>
<tr><td>input</td><td><code>{{.Model.Path}}</code></td><td>{{bytes .Model.Bytes}}</td><td><code>{{printf "%.12s" .Model.SHA256}}</code></td></tr>
{{with .Output}}<tr><td>output</td><td><code>{{.Path}}</code></td><td>{{bytes .Bytes}}</td><td><code>{{printf "%.12s" .SHA256}}</code></td></tr>{{end}}
</table>
<h2>Stages</h2>
<table><tr><th>#</th><th>stage</th><th>status</th><th>seconds</th><th>metrics</th></tr>
{{range .Stages}}<tr><td>{{inc .Index}}</td><td>{{.Stage}}{{if .Implicit}} <span class="muted">(added)</span>{{end}}</td><td>{{.Status}}</td><td>{{printf "%.2f" .Seconds}}</td>
<td>{{range .Metrics}}{{.Name}} = {{value .Value .Unit}}<br>{{end}}{{range .Warnings}}<span class="warn">warning: {{.}}</span><br>{{end}}{{range .Notes}}<span class="muted">{{.}}</span><br>{{end}}{{if .Error}}<span class="err">{{.Error}}</span>{{end}}</td></tr>
{{end}}</table>
{{with sizeChart .}}<h2>Size</h2>{{.}}{{end}}
{{range .Stages}}{{if .Charts}}<h2>{{inc .Index}}. {{.Stage}}</h2>{{range .Charts}}<figure>{{svg .}}</figure>{{end}}{{end}}{{end}}
<h2>Environment</h2>
<p class="muted">{{.Tool.Name}} {{.Tool.Version}} ({{.Tool.Go}}), onnxruntime {{.Tool.ONNXRuntime}};
{{.Environment.OS}}/{{.Environment.Arch}}, {{.Environment.CPUs}} CPUs {{.Environment.CPU}}{{with .Environment.Features}}; CPU features: {{range .}}{{.}} {{end}}{{end}}{{with .Environment.Providers}}; providers: {{range .}}{{.}} {{end}}{{end}}</p>
</body></html>
`))

// HTML renders a self-contained page.
func (j *Job) HTML() ([]byte, error) {
	var b bytes.Buffer
	if err := htmlPage.Execute(&b, j); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

package pipeline

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/report"
)

// SummarySchemaVersion is the version of summary.json (docs/formats.md).
const SummarySchemaVersion = 1

// Summary is summary.json: one row per job of a run.
type Summary struct {
	SchemaVersion int            `json:"schema_version"`
	Config        string         `json:"config"`
	Created       time.Time      `json:"created"`
	Tool          report.Tool    `json:"tool"`
	Jobs          []SummaryRow   `json:"jobs"`
	Counts        map[string]int `json:"counts"`
}

// SummaryRow is one job in the summary.
type SummaryRow struct {
	Model       string         `json:"model"`
	Output      string         `json:"output,omitempty"`
	Report      string         `json:"report,omitempty"`
	Status      string         `json:"status"`
	Error       string         `json:"error,omitempty"`
	Seconds     float64        `json:"seconds"`
	InputBytes  int64          `json:"input_bytes"`
	OutputBytes int64          `json:"output_bytes,omitempty"`
	KeyMetric   *report.Metric `json:"key_metric,omitempty"`
}

func summaryOf(cfg *Config, res *RunResult, version string) *Summary {
	s := &Summary{SchemaVersion: SummarySchemaVersion, Config: cfg.Path, Created: time.Now().UTC().Truncate(time.Second),
		Tool: toolInfo(version), Counts: map[string]int{}}
	for _, o := range res.Outcomes {
		row := SummaryRow{Model: o.Job.ModelPath, Output: o.Job.Output, Status: o.Status}
		if o.Err != nil {
			row.Error = o.Err.Error()
		}
		if r := o.Report; r != nil {
			row.Seconds = r.Seconds
			row.InputBytes = r.Model.Bytes
			row.Report = o.Job.ReportPrefix + ".report.json"
			if r.Output != nil {
				row.OutputBytes = r.Output.Bytes
			}
			if m, ok := r.KeyMetric(); ok {
				row.KeyMetric = &m
			}
			if r.Tool.ONNXRuntime != "" {
				s.Tool.ONNXRuntime = r.Tool.ONNXRuntime
			}
		}
		if o.Status != StatusOK {
			row.Output = ""
		}
		s.Counts[o.Status]++
		s.Jobs = append(s.Jobs, row)
	}
	return s
}

// summaryDir is the folder shared by every job's output (or report when it has none).
func summaryDir(jobs []*Job) string {
	var dirs []string
	for _, j := range jobs {
		p := j.Output
		if p == "" {
			p = j.ReportPrefix
		}
		abs, _ := filepath.Abs(filepath.Dir(p))
		dirs = append(dirs, abs)
	}
	common := dirs[0]
	for _, d := range dirs[1:] {
		for !strings.HasPrefix(d+string(filepath.Separator), common+string(filepath.Separator)) && common != filepath.Dir(common) {
			common = filepath.Dir(common)
		}
	}
	return common
}

func writeSummary(cfg *Config, res *RunResult, opts RunOptions) (string, error) {
	jobs := make([]*Job, len(res.Outcomes))
	for i, o := range res.Outcomes {
		jobs[i] = o.Job
	}
	s := summaryOf(cfg, res, opts.Version)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	dir := summaryDir(jobs)
	path := filepath.Join(dir, "summary.json")
	if err := onnxio.WriteFileReplace(path, append(data, '\n')); err != nil {
		return "", err
	}
	page, err := indexOf(s, res, dir).HTML()
	if err != nil {
		return "", err
	}
	return path, onnxio.WriteFileReplace(filepath.Join(dir, IndexName), page)
}

// IndexName is the batch's overview page, written beside summary.json.
const IndexName = "index.html"

// indexOf makes the index page of a run: the summary's rows, each linking to its job's
// HTML report by a path relative to dir (the page's folder).
func indexOf(s *Summary, res *RunResult, dir string) *report.Index {
	x := &report.Index{Config: s.Config, Created: s.Created, Tool: s.Tool, Counts: s.Counts}
	for i, row := range s.Jobs {
		j := res.Outcomes[i].Job
		ij := report.IndexJob{Name: j.Name, Model: row.Model, Output: row.Output, Status: row.Status,
			Error: firstLine(row.Error, 300), Seconds: row.Seconds, InputBytes: row.InputBytes,
			OutputBytes: row.OutputBytes, KeyMetric: row.KeyMetric}
		html := j.ReportPrefix + ".report.html"
		if _, err := os.Stat(html); err == nil {
			abs, _ := filepath.Abs(html)
			if rel, err := filepath.Rel(dir, abs); err == nil {
				ij.Report = filepath.ToSlash(rel)
			}
		}
		x.Jobs = append(x.Jobs, ij)
	}
	return x
}

// PrintSummary writes the summary table: job, status, duration, size in -> out, key metric.
func PrintSummary(w io.Writer, res *RunResult) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATUS\tTIME\tSIZE IN -> OUT\tKEY METRIC")
	for _, o := range res.Outcomes {
		size, metric, dur := "", "", ""
		if r := o.Report; r != nil {
			size = report.HumanBytes(r.Model.Bytes)
			if r.Output != nil {
				size += fmt.Sprintf(" -> %s (%.2fx)", report.HumanBytes(r.Output.Bytes), float64(r.Output.Bytes)/float64(max(1, r.Model.Bytes)))
			}
			if m, ok := r.KeyMetric(); ok {
				metric = m.Name + " " + report.FormatValue(m.Value, m.Unit)
			}
			dur = fmt.Sprintf("%.1fs", r.Seconds)
		}
		status := o.Status
		if o.Err != nil && o.Status != StatusOK {
			status += ": " + firstLine(o.Err.Error(), 100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Job.Name, status, dur, size, metric)
	}
	tw.Flush()
	counts := map[string]int{}
	for _, o := range res.Outcomes {
		counts[o.Status]++
	}
	var parts []string
	for _, s := range []string{StatusOK, StatusSkipped, StatusRejected, StatusFailed, StatusInterrupted} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "%d jobs: %s\n", len(res.Outcomes), strings.Join(parts, ", "))
	if res.SummaryPath != "" {
		fmt.Fprintf(w, "summary: %s\n", res.SummaryPath)
		if index := filepath.Join(filepath.Dir(res.SummaryPath), "index.html"); fileExists(index) {
			fmt.Fprintf(w, "index:   %s\n", index)
		}
	}
	if len(res.Outcomes) > 3 {
		return // the index lists every job's report
	}
	for _, o := range res.Outcomes {
		if o.Report == nil || o.Status == StatusSkipped {
			continue
		}
		fmt.Fprintf(w, "%s:\n  report  %s.report.{html,md,json}\n", o.Job.Name, o.Job.ReportPrefix)
		for _, f := range o.Report.Saved {
			fmt.Fprintf(w, "  saved   %s\n", f.Path)
		}
		if o.Status == StatusOK && o.Job.Output != "" {
			fmt.Fprintf(w, "  output  %s\n", o.Job.Output)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

// JUnit XML, as CI systems read it.
type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

func writeJUnit(path string, cfg *Config, res *RunResult) error {
	s := junitSuite{Name: "onnxpipe " + filepath.Base(cfg.Path)}
	for _, o := range res.Outcomes {
		c := junitCase{Name: o.Job.ModelPath, Classname: strings.TrimSuffix(filepath.Base(cfg.Path), filepath.Ext(cfg.Path))}
		if o.Report != nil {
			c.Time = o.Report.Seconds
		}
		switch o.Status {
		case StatusFailed, StatusRejected, StatusInterrupted:
			msg := o.Status
			if o.Err != nil {
				msg = o.Err.Error()
			}
			c.Failure = &junitMessage{Message: firstLine(msg, 200), Body: msg}
			s.Failures++
		case StatusSkipped:
			c.Skipped = &junitMessage{Message: "up to date (manifest matches)"}
			s.Skipped++
		}
		s.Time += c.Time
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	data, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return onnxio.WriteFileReplace(path, append([]byte(xml.Header), append(data, '\n')...))
}

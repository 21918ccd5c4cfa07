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

// Summary is summary.json (or a shard's summary.shard-i-of-n.json): one row per job.
type Summary struct {
	SchemaVersion int       `json:"schema_version"`
	Config        string    `json:"config"`
	Created       time.Time `json:"created"`
	// Shard is "i/n" when one shard of the batch wrote the summary.
	Shard string `json:"shard,omitempty"`
	// Merged lists the summaries `onnxpipe summarize` merged into this one.
	Merged []string       `json:"merged,omitempty"`
	Tool   report.Tool    `json:"tool"`
	Jobs   []SummaryRow   `json:"jobs"`
	Counts map[string]int `json:"counts"`
}

// SummaryRow is one job in the summary.
type SummaryRow struct {
	// Name is the job's {name}.
	Name string `json:"name,omitempty"`
	// Config is the job's config, in a merged summary of several configs.
	Config string `json:"config,omitempty"`
	Model  string `json:"model"`
	Output string `json:"output,omitempty"`
	Report string `json:"report,omitempty"`
	Status string `json:"status"`
	// Skipped marks a job the run found up to date: the row is the result its manifest
	// records (status ok, metric, output, report), from the run that made it.
	Skipped bool   `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Finished is when the row's result was made (for a skipped job: its manifest's time).
	Finished    time.Time      `json:"finished,omitzero"`
	Seconds     float64        `json:"seconds"`
	InputBytes  int64          `json:"input_bytes"`
	OutputBytes int64          `json:"output_bytes,omitempty"`
	KeyMetric   *report.Metric `json:"key_metric,omitempty"`
}

func summaryOf(cfg *Config, res *RunResult, opts RunOptions) *Summary {
	s := &Summary{SchemaVersion: SummarySchemaVersion, Config: cfg.Path, Created: time.Now().UTC().Truncate(time.Second),
		Shard: opts.Shard, Tool: toolInfo(opts.Version)}
	for _, o := range res.Outcomes {
		row := SummaryRow{Name: o.Job.Name, Model: o.Job.ModelPath, Output: o.Job.Output, Status: o.Status, Finished: o.Finished}
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
		if m := o.Manifest; o.Status == StatusSkipped && m != nil {
			// the result the manifest records: only a job that succeeded has one
			row.Status, row.Skipped, row.Finished, row.Seconds = StatusOK, true, m.Created, m.Seconds
			row.Report, row.OutputBytes = m.Report, m.Output.Bytes
			if km, ok := (&report.Job{Stages: m.Stages}).KeyMetric(); ok {
				row.KeyMetric = &km
			}
		}
		if row.Status != StatusOK {
			row.Output = ""
		}
		s.Jobs = append(s.Jobs, row)
	}
	s.count()
	return s
}

// count sets Counts from the rows' statuses.
func (s *Summary) count() {
	s.Counts = map[string]int{}
	for _, r := range s.Jobs {
		s.Counts[r.Status]++
	}
}

// SummaryDir is the folder shared by every job's output (or report when it has none):
// where a run of these jobs writes its summary and index page.
func SummaryDir(jobs []*Job) string {
	if len(jobs) == 0 {
		return ""
	}
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

// SummaryName and IndexName are the files a run writes in the summary folder: summary.json
// and index.html, or, for shard i of n, summary.shard-i-of-n.json and
// index.shard-i-of-n.html (so that shards sharing a folder keep their own; `onnxpipe
// summarize` merges them).
const (
	SummaryName = "summary.json"
	IndexName   = "index.html"
)

// summaryFiles returns the names of the summary and index files of a shard ("" or "i/n").
func summaryFiles(shard string) (summary, index string) {
	if shard == "" {
		return SummaryName, IndexName
	}
	i, n, _ := strings.Cut(shard, "/")
	return fmt.Sprintf("summary.shard-%s-of-%s.json", i, n), fmt.Sprintf("index.shard-%s-of-%s.html", i, n)
}

func writeSummary(cfg *Config, res *RunResult, opts RunOptions) error {
	dir := opts.SummaryDir
	if dir == "" {
		jobs := make([]*Job, len(res.Outcomes))
		for i, o := range res.Outcomes {
			jobs[i] = o.Job
		}
		dir = SummaryDir(jobs)
	}
	s := summaryOf(cfg, res, opts)
	sp, ip := summaryFiles(opts.Shard)
	sp, ip = filepath.Join(dir, sp), filepath.Join(dir, ip)
	if err := WriteSummary(s, sp, ip); err != nil {
		return err
	}
	res.SummaryPath, res.IndexPath = sp, ip
	if opts.JUnit != "" {
		return WriteJUnit(opts.JUnit, s)
	}
	return nil
}

// WriteSummary writes s as JSON to path and its index page to index (links relative to
// the page's folder).
func WriteSummary(s *Summary, path, index string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := onnxio.WriteFileReplace(path, append(data, '\n')); err != nil {
		return err
	}
	abs, _ := filepath.Abs(filepath.Dir(index))
	page, err := indexOf(s, abs, filepath.Base(path)).HTML()
	if err != nil {
		return err
	}
	return onnxio.WriteFileReplace(index, page)
}

// indexOf makes the index page of a summary: its rows, each linking to its job's HTML
// report by a path relative to dir (the page's folder).
func indexOf(s *Summary, dir, summaryName string) *report.Index {
	x := &report.Index{Config: s.Config, Created: s.Created, Tool: s.Tool, Counts: s.Counts, Shard: s.Shard,
		Summary: summaryName, Merged: len(s.Merged)}
	for _, row := range s.Jobs {
		ij := report.IndexJob{Name: rowName(row), Model: row.Model, Output: row.Output, Status: row.Status,
			UpToDate: row.Skipped, Error: firstLine(row.Error, 300), Seconds: row.Seconds, InputBytes: row.InputBytes,
			OutputBytes: row.OutputBytes, KeyMetric: row.KeyMetric}
		if row.Report != "" {
			html := strings.TrimSuffix(row.Report, ".report.json") + ".report.html"
			if _, err := os.Stat(html); err == nil {
				abs, _ := filepath.Abs(html)
				if rel, err := filepath.Rel(dir, abs); err == nil {
					ij.Report = filepath.ToSlash(rel)
				}
			}
		}
		x.Jobs = append(x.Jobs, ij)
	}
	return x
}

// rowName is the row's job name (from the model's file name in summaries that lack it).
func rowName(r SummaryRow) string {
	if r.Name != "" {
		return r.Name
	}
	return strings.TrimSuffix(filepath.Base(r.Model), ".onnx")
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
		if index := res.IndexPath; fileExists(index) {
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

// WriteJUnit writes the summary's rows as JUnit XML: a testcase per job; failed,
// rejected and interrupted jobs are failures, jobs found up to date are skipped.
func WriteJUnit(path string, sum *Summary) error {
	name := strings.TrimSuffix(filepath.Base(sum.Config), filepath.Ext(sum.Config))
	s := junitSuite{Name: "onnxpipe " + filepath.Base(sum.Config)}
	for _, r := range sum.Jobs {
		class := name
		if r.Config != "" {
			class = strings.TrimSuffix(filepath.Base(r.Config), filepath.Ext(r.Config))
		}
		c := junitCase{Name: r.Model, Classname: class, Time: r.Seconds}
		if r.Skipped {
			c.Time = 0 // not run now: the seconds are those of the run that made the result
		}
		switch {
		case r.Status == StatusFailed || r.Status == StatusRejected || r.Status == StatusInterrupted:
			msg := r.Status
			if r.Error != "" {
				msg = r.Error
			}
			c.Failure = &junitMessage{Message: firstLine(msg, 200), Body: msg}
			s.Failures++
		case r.Skipped || r.Status == StatusSkipped:
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

// Package report holds the per-job report of a pipeline run and renders it as JSON (a
// documented, versioned schema: docs/formats.md), Markdown and a self-contained HTML page.
package report

import (
	"encoding/json"
	"time"
)

// SchemaVersion is the version of the report JSON layout.
const SchemaVersion = 1

// Job is the report of one job: a model through the plan.
type Job struct {
	SchemaVersion int    `json:"schema_version"`
	Tool          Tool   `json:"tool"`
	Name          string `json:"name"`
	Model         File   `json:"model"`
	Output        *File  `json:"output,omitempty"`
	// Saved are the models save stages wrote along the chain, in order.
	Saved        []File    `json:"saved,omitempty"`
	Status       string    `json:"status"` // ok | failed | rejected | skipped | interrupted
	Error        string    `json:"error,omitempty"`
	Started      time.Time `json:"started"`
	Seconds      float64   `json:"seconds"`
	ConfigSHA256 string    `json:"config_sha256,omitempty"`
	Stages       []*Stage  `json:"stages"`
	Environment  Env       `json:"environment"`
}

// Tool names the programs that produced the report.
type Tool struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Go          string `json:"go"`
	ONNXRuntime string `json:"onnxruntime,omitempty"`
}

// File is a model file: where, how big, its sha256, and a summary of it.
type File struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Nodes and Params summarise the graph (from onnxio.Summarize).
	Nodes        int    `json:"nodes,omitempty"`
	Params       int64  `json:"params,omitempty"`
	Quantization string `json:"quantization,omitempty"`
}

// Env is the machine the figures were measured on.
type Env struct {
	OS       string   `json:"os"`
	Arch     string   `json:"arch"`
	CPUs     int      `json:"cpus"`
	CPU      string   `json:"cpu,omitempty"`
	Features []string `json:"cpu_features,omitempty"`
	// Providers are the execution providers this onnxruntime can use, in onnxruntime's
	// spelling (CPUExecutionProvider is always there).
	Providers []string `json:"providers,omitempty"`
	// Unavailable maps each GPU provider (cuda, tensorrt) that cannot be used to why.
	Unavailable map[string]string `json:"unavailable_providers,omitempty"`
	// Library is the onnxruntime shared library that was loaded.
	Library string `json:"onnxruntime_library,omitempty"`
}

// Stage is the record of one plan entry.
type Stage struct {
	Stage    string          `json:"stage"`
	Index    int             `json:"index"`
	Implicit bool            `json:"implicit,omitempty"`
	Status   string          `json:"status"` // ok | failed | rejected | skipped | not run
	Seconds  float64         `json:"seconds"`
	Options  json.RawMessage `json:"options,omitempty"`
	Metrics  []Metric        `json:"metrics,omitempty"`
	Notes    []string        `json:"notes,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	Error    string          `json:"error,omitempty"`
	// Data is the stage's structured result, when it offers one (see DataProvider).
	Data any `json:"data,omitempty"`
	// Charts are figures of the stage's results (drawn in the HTML report).
	Charts []Chart `json:"charts,omitempty"`
	// Tables are small tables of the stage's results (Markdown and HTML reports).
	Tables []Table `json:"tables,omitempty"`
}

// Table is a small table of text cells that a stage adds to its report. A row shorter
// than Columns has its last cell span the remaining columns (a note such as "cuda:
// unavailable: ..." in place of figures).
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
	// Note is a line printed under the table.
	Note string `json:"note,omitempty"`
}

// Metric is a named number.
type Metric struct {
	Name  string `json:"name"`
	Value Float  `json:"value"`
	Unit  string `json:"unit,omitempty"`
	// Key marks the metric the summary table shows for the job.
	Key bool `json:"key,omitempty"`
}

// DataProvider is implemented by stage results that contribute structured data to the
// report (kept small: summaries, not tensors).
type DataProvider interface {
	ReportData() any
}

// KeyMetric returns the last metric marked Key in the job's stages.
func (j *Job) KeyMetric() (Metric, bool) {
	for i := len(j.Stages) - 1; i >= 0; i-- {
		ms := j.Stages[i].Metrics
		for k := len(ms) - 1; k >= 0; k-- {
			if ms[k].Key {
				return ms[k], true
			}
		}
	}
	return Metric{}, false
}

package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/report"
)

// Pass is everything a stage's Run may touch: its options, the job's models, the
// results it declared in Requires, the requests of the entries its result serves, the
// job's datasets, and the report.
type Pass struct {
	Ctx     context.Context
	Stage   *Stage
	Options any // the decoded *Options of this entry
	// Entry is this stage's index in the plan.
	Entry int
	// Requests are what later entries asked of this entry's result (Requirement.Request),
	// in plan order; empty when no entry reads it.
	Requests []any
	Log      *slog.Logger

	job     *Job
	start   *onnxio.Model        // the model the stage started from
	results map[reflect.Type]any // the results this entry requires, by type
	mutates bool
	record  *report.Stage
	mu      sync.Mutex
}

// Result returns the result of type T the pass's entry declared in Requires; ok is
// false when it declared none of that type.
func Result[T any](p *Pass) (v T, ok bool) {
	r, found := p.results[reflect.TypeFor[T]()]
	if !found {
		return v, false
	}
	v, ok = r.(T)
	return v, ok
}

// Model is the job's current model. A stage that does not change the model only reads
// it; one that does (Mutates) edits it through EditModel or replaces it with SetModel.
func (p *Pass) Model() *onnxio.Model { return p.job.model }

// Input is the model the job started with, as loaded; no stage modifies it.
func (p *Pass) Input() *onnxio.Model { return p.job.input }

// Previous is the model before the latest stage that changed it (the input when none
// has).
func (p *Pass) Previous() *onnxio.Model {
	if p.job.previous != nil {
		return p.job.previous
	}
	return p.job.input
}

// EditModel returns the job's current model for editing in place. The first call of a
// stage makes a copy of the model it started from the current model, so that the model
// before the stage (Input, Previous) stays as it was. Only stages that mutate may call it.
func (p *Pass) EditModel() *onnxio.Model {
	p.mustMutate("EditModel")
	j := p.job
	if j.model == p.start {
		j.model = j.model.Clone()
	}
	return j.model
}

// SetModel replaces the job's current model. Only stages that mutate may call it.
func (p *Pass) SetModel(m *onnxio.Model) {
	p.mustMutate("SetModel")
	p.job.model = m
}

// mustMutate panics when a stage that declared it leaves the model alone changes it: a
// programming error, which the job reports as an internal error.
func (p *Pass) mustMutate(what string) {
	if !p.mutates {
		panic(fmt.Sprintf("pipeline: stage %s called %s but does not declare Mutates for these options", p.Stage.Name, what))
	}
}

// Runtime is the job's onnxruntime configuration.
func (p *Pass) Runtime() Runtime { return p.job.Runtime }

// JobName is the job's {name}: the model's base name without .onnx.
func (p *Pass) JobName() string { return p.job.Name }

// DatasetSpec returns the spec of the named dataset.
func (p *Pass) DatasetSpec(name string) (*dataset.Spec, error) { return p.job.Dataset(name) }

// Dataset returns the named dataset opened for a model with these inputs. A job opens
// each dataset once per set of inputs: stages that read it share the opened value
// (datasets may be ranged over many times), and the job closes it when it ends. The
// dataset's warnings are reported by the stage that opens it first.
func (p *Pass) Dataset(name string, inputs []dataset.InputInfo) (*dataset.Dataset, error) {
	ds, fresh, err := p.job.openDataset(name, inputs)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", name, err)
	}
	if fresh {
		for _, w := range ds.Warnings() {
			p.Warn("dataset %q: %s", name, w)
		}
	}
	return ds, nil
}

// AddArtifact records a file the stage wrote (a calibration cache, a checkpoint) under a
// name, for the summary.
func (p *Pass) AddArtifact(name, path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.job.artifacts[name] = path
}

// RecordSaved notes that the model m was written to path along the chain: the file's size
// and sha256 and the model's summary go into the job's report.
func (p *Pass) RecordSaved(path string, m *onnxio.Model) error {
	h, n, err := fileSHA256(path)
	if err != nil {
		return err
	}
	s := onnxio.Summarize(m)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.job.saved = append(p.job.saved, report.File{Path: path, Bytes: n, SHA256: h, Nodes: s.Nodes, Params: s.Params.Count, Quantization: s.Quantization})
	p.job.artifacts["save:"+path] = path
	return nil
}

// Metric records a number for the report.
func (p *Pass) Metric(name string, value float64, unit string) {
	p.addMetric(report.Metric{Name: name, Value: report.Float(value), Unit: unit})
}

// KeyMetric records a number that also stands for the job in the summary table (the
// latest key metric of a job wins).
func (p *Pass) KeyMetric(name string, value float64, unit string) {
	p.addMetric(report.Metric{Name: name, Value: report.Float(value), Unit: unit, Key: true})
}

// addMetric records m; a metric of the same name recorded before in this stage is
// replaced (a key metric stays key), so that a name appears once in the report.
func (p *Pass) addMetric(m report.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, old := range p.record.Metrics {
		if old.Name == m.Name {
			m.Key = m.Key || old.Key
			p.record.Metrics[i] = m
			return
		}
	}
	p.record.Metrics = append(p.record.Metrics, m)
}

// Chart adds a figure to the stage's report.
func (p *Pass) Chart(c report.Chart) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record.Charts = append(p.record.Charts, c)
}

// Table adds a table to the stage's report.
func (p *Pass) Table(t report.Table) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record.Tables = append(p.record.Tables, t)
}

// Note records a line of text for the report and logs it.
func (p *Pass) Note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	p.record.Notes = append(p.record.Notes, msg)
	p.mu.Unlock()
	p.Log.Info(msg)
}

// Warn records a warning for the report and logs it.
func (p *Pass) Warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	p.record.Warnings = append(p.record.Warnings, msg)
	p.mu.Unlock()
	p.Log.Warn(msg)
}

// Progress reports work done out of total (samples, epochs) for progress display.
func (p *Pass) Progress(done, total int) {
	if p.job.progress != nil {
		p.job.progress(p.Stage.Name, done, total)
	}
}

package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/report"
)

// A Stage is one kind of step in a pipeline: a value with metadata, registered once.
type Stage struct {
	// Name is the YAML key of a stage entry (`- quantize: {...}`).
	Name string
	// Doc is the stage's documentation: a one-line summary, a blank line, details.
	Doc string
	// NewOptions returns a pointer to the stage's options struct, filled with defaults.
	// The struct's yaml tags and field doc comments are the one source of truth for the
	// decoder, `onnxpipe stages` and docs/stages.md.
	NewOptions func() any
	// Requires returns the stages whose results Run reads, given the decoded options; a
	// plan is valid only when each appears earlier in it (nil: none).
	Requires func(opts any) []*Stage
	// Mutates is true for stages that replace the job's model.
	Mutates bool
	// Run does the work. Its result is available to later stages in Pass.ResultOf.
	Run func(*Pass) (any, error)
}

// Summary is the first line of Doc.
func (s *Stage) Summary() string {
	first, _, _ := strings.Cut(s.Doc, "\n")
	return first
}

// Validator is implemented by options that can check themselves without I/O; the
// decoder calls it and reports the error at the stage entry's position.
type Validator interface {
	Validate() error
}

// Warner is implemented by options that can point out settings that have no effect (an
// option the chosen method ignores); each string is reported as a warning.
type Warner interface {
	Warnings() []string
}

// Pass is everything a stage's Run may touch.
type Pass struct {
	Ctx     context.Context
	Stage   *Stage
	Options any // the decoded *Options of this entry
	// Entry is this stage's index in the plan.
	Entry int
	Job   *Job
	// ResultOf holds the results of earlier stages; with several entries of one stage,
	// the latest before this one.
	ResultOf map[*Stage]any
	// Later are the entries of the plan after this one, for a stage whose work serves a
	// later one (calibrate measures the ranges the quantize stage after it reads).
	Later  []*Entry
	Log    *slog.Logger
	record *report.Stage
	mu     sync.Mutex
}

// Metric records a number for the report.
func (p *Pass) Metric(name string, value float64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record.Metrics = append(p.record.Metrics, report.Metric{Name: name, Value: report.Float(value), Unit: unit})
}

// KeyMetric records a number that also stands for the job in the summary table (the
// latest key metric of a job wins).
func (p *Pass) KeyMetric(name string, value float64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record.Metrics = append(p.record.Metrics, report.Metric{Name: name, Value: report.Float(value), Unit: unit, Key: true})
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

// Scratch returns a pass like p whose metrics, notes, warnings, charts and tables go to
// a record of their own, returned with it, instead of p's: a stage that runs another
// stage's code (verify's auto_exclude quantizing again) keeps that output apart and
// reports what it chooses. Logging still goes to p's logger.
func (p *Pass) Scratch() (*Pass, *report.Stage) {
	rec := &report.Stage{Stage: p.Stage.Name, Index: p.Entry}
	return &Pass{Ctx: p.Ctx, Stage: p.Stage, Options: p.Options, Entry: p.Entry, Job: p.Job,
		ResultOf: p.ResultOf, Later: p.Later, Log: p.Log, record: rec}, rec
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
	if p.Job.progress != nil {
		p.Job.progress(p.Stage.Name, done, total)
	}
}

// SetModel replaces the job's current model (a stage with Mutates).
func (p *Pass) SetModel(m *onnxio.Model) {
	p.Job.Model = m
}

// EditModel returns the job's current model for editing in place. The current model may
// be shared with Job.Input or Job.Previous (no copy is made for stages that only read
// it); then the current model is copied first, so those stay as they were.
func (p *Pass) EditModel() *onnxio.Model {
	if p.Job.Model == p.Job.Input || p.Job.Model == p.Job.Previous {
		p.Job.Model = p.Job.Model.Clone()
	}
	return p.Job.Model
}

// Rejected is the error a stage returns when the model it judges misses a threshold: the
// job fails, its report is written, its output is not (see --keep-failed).
type Rejected struct {
	Reasons []string
}

func (r *Rejected) Error() string {
	return "rejected: " + strings.Join(r.Reasons, "; ")
}

var (
	registryMu sync.RWMutex
	registry   = map[string]*Stage{}
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Register adds a stage to the registry; stage packages call it from init. It panics on
// an invalid stage (programmer error), as go/analysis.Validate does.
func Register(s *Stage) {
	registryMu.Lock()
	defer registryMu.Unlock()
	switch {
	case !nameRE.MatchString(s.Name):
		panic(fmt.Sprintf("pipeline: invalid stage name %q", s.Name))
	case registry[s.Name] != nil:
		panic(fmt.Sprintf("pipeline: stage %q registered twice", s.Name))
	case strings.TrimSpace(s.Doc) == "":
		panic(fmt.Sprintf("pipeline: stage %q has no Doc", s.Name))
	case s.Run == nil || s.NewOptions == nil:
		panic(fmt.Sprintf("pipeline: stage %q needs Run and NewOptions", s.Name))
	}
	registry[s.Name] = s
}

// Lookup returns the registered stage called name.
func Lookup(name string) (*Stage, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s, ok := registry[name]
	return s, ok
}

// Stages returns every registered stage, sorted by name.
func Stages() []*Stage {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]*Stage, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StageNames returns the registered names, sorted.
func StageNames() []string {
	var names []string
	for _, s := range Stages() {
		names = append(names, s.Name)
	}
	return names
}

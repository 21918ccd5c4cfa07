package pipeline

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
)

// A Stage is one kind of step in a pipeline: a value with metadata, registered once. A
// stage never sees the entries before or after it: what it reads of another stage's
// work it declares in Requires, and the plan links it to the entry that provides it
// before any job runs.
type Stage struct {
	// Name is the YAML key of a stage entry (`- quantize: {...}`).
	Name string
	// Doc is the stage's documentation: a one-line summary, a blank line, details.
	Doc string
	// NewOptions returns a pointer to the stage's options struct, filled with defaults.
	// The struct's yaml tags and field doc comments are the one source of truth for the
	// decoder, `onnxpipe stages` and docs/stages.md.
	NewOptions func() any
	// Requires lists the results Run reads from earlier entries, given the decoded
	// options (nil: none). Each is provided by the nearest earlier entry whose stage's
	// ResultType is the requirement's Result; a plan where none is is rejected.
	Requires func(opts any) []Requirement
	// ResultType is the type of the value Run returns (nil: Run returns nil). The runner
	// checks every result against it.
	ResultType reflect.Type
	// Mutates reports whether an entry with these options changes the job's model (nil:
	// never). Only such entries may call Pass.EditModel and Pass.SetModel.
	Mutates func(opts any) bool
	// Run does the work.
	Run func(*Pass) (any, error)
}

// Always is a Mutates function for stages that change the model whatever their options.
func Always(any) bool { return true }

// Requirement is one result an entry reads from an earlier entry.
type Requirement struct {
	// Result is the type of the result: the nearest earlier entry whose stage declares it
	// as ResultType provides it (Result[T] returns it in Run).
	Result reflect.Type
	// Request, when not nil, is handed to the providing entry (Pass.Requests) before any
	// job runs: what this entry will read of the result, so that the provider makes just
	// that (calibrate measures the ranges the quantize after it reads).
	Request any
	// SameModel requires the result to be made on the model this entry gets: no entry in
	// between may change the model (a calibration table describes one graph).
	SameModel bool
	// For names the option that needs the result ("auto_exclude"), for messages; empty
	// when the stage itself does.
	For string
}

// mutates reports whether the stage changes the model with options opts.
func (s *Stage) mutates(opts any) bool { return s.Mutates != nil && s.Mutates(opts) }

// requires lists the stage's requirements with options opts.
func (s *Stage) requires(opts any) []Requirement {
	if s.Requires == nil {
		return nil
	}
	return s.Requires(opts)
}

// Summary is the first line of Doc.
func (s *Stage) Summary() string {
	first, _, _ := strings.Cut(s.Doc, "\n")
	return first
}

// Validator is implemented by options that can check themselves without I/O. Validate
// returns every problem at once: a Problems value puts each at its option's line:col, any
// other error is reported at the stage entry.
type Validator interface {
	Validate() error
}

// Warner is implemented by options that can point out settings that have no effect (an
// option the chosen method ignores); each string is reported as a warning.
type Warner interface {
	Warnings() []string
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
	order      []*Stage // in registration order
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
	if t := s.ResultType; t != nil {
		for _, o := range order {
			if o.ResultType == t {
				panic(fmt.Sprintf("pipeline: stages %q and %q both declare result type %v", o.Name, s.Name, t))
			}
		}
	}
	registry[s.Name] = s
	order = append(order, s)
}

// Lookup returns the registered stage called name.
func Lookup(name string) (*Stage, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s, ok := registry[name]
	return s, ok
}

// Stages returns every registered stage in registration order (stages/all registers
// them in the order a chain uses them).
func Stages() []*Stage {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return append([]*Stage(nil), order...)
}

// StageNames returns the registered names, in registration order.
func StageNames() []string {
	var names []string
	for _, s := range Stages() {
		names = append(names, s.Name)
	}
	return names
}

// provider returns the registered stage whose ResultType is t.
func provider(t reflect.Type) *Stage {
	for _, s := range Stages() {
		if s.ResultType == t {
			return s
		}
	}
	return nil
}

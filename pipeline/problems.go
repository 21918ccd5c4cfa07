package pipeline

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a stage's options, named by the option's YAML path in
// the stage's options ("percentile", "latency.batch"; "" for the options as a whole):
// the decoder reports it at that key's line:col.
type Problem struct {
	Field string
	Msg   string
}

// Problems is what Validate returns: every problem at once.
type Problems []Problem

// Add records a problem with field.
func (ps *Problems) Add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Err returns ps as an error, or nil when it is empty.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Error joins the problems, each as "field: message".
func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Msg
	}
	return p.Field + ": " + p.Msg
}

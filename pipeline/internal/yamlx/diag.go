package yamlx

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Diagnostic is one problem found in a YAML document, with its position.
type Diagnostic struct {
	// File is the name of the file the document came from; empty when
	// unknown (the functions of this package leave it empty, see
	// Diagnostics.WithFile).
	File string
	// Line and Col are the 1-based position of the offending node; zero when
	// unknown (for example for nodes created by Set).
	Line, Col int
	// Path is the dot path of the key or value concerned, for example
	// "stages.1.quantize.per_channel".
	Path string
	// Msg is the human-readable message, without position.
	Msg string
	// Warning marks a diagnostic that does not make the document invalid.
	Warning bool
}

// String formats the diagnostic as "file:line:col: msg", leaving out the
// parts that are zero. A warning's message is preceded by "warning: ".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		b.WriteByte(':')
	}
	if d.Line > 0 {
		b.WriteString(strconv.Itoa(d.Line))
		b.WriteByte(':')
		if d.Col > 0 {
			b.WriteString(strconv.Itoa(d.Col))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if d.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Error makes a single Diagnostic usable as an error; it returns String().
func (d Diagnostic) Error() string { return d.String() }

// Diagnostics is a list of diagnostics. It implements error; use Err to get
// a nil error for an empty list.
type Diagnostics []Diagnostic

// Error joins the String form of all diagnostics with "\n".
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Err returns ds as an error, or nil when ds is empty. It avoids the
// non-nil-interface-holding-nil-slice trap of returning ds directly.
func (ds Diagnostics) Err() error {
	if len(ds) == 0 {
		return nil
	}
	return ds
}

// HasErrors reports whether ds holds at least one diagnostic that is not a
// warning.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if !d.Warning {
			return true
		}
	}
	return false
}

// WithFile sets File on every diagnostic whose File is empty and returns ds.
func (ds Diagnostics) WithFile(file string) Diagnostics {
	for i := range ds {
		if ds[i].File == "" {
			ds[i].File = file
		}
	}
	return ds
}

// Len is part of sort.Interface.
func (ds Diagnostics) Len() int { return len(ds) }

// Less orders diagnostics by file, line and column (sort.Interface).
func (ds Diagnostics) Less(i, j int) bool { return ds[i].before(ds[j]) }

// Swap is part of sort.Interface.
func (ds Diagnostics) Swap(i, j int) { ds[i], ds[j] = ds[j], ds[i] }

// Sort sorts ds in place by file, line and column, keeping the original
// order of diagnostics at the same position, and returns ds.
func (ds Diagnostics) Sort() Diagnostics {
	sort.Stable(ds)
	return ds
}

func (d Diagnostic) before(o Diagnostic) bool {
	if d.File != o.File {
		return d.File < o.File
	}
	if d.Line != o.Line {
		return d.Line < o.Line
	}
	return d.Col < o.Col
}

// dedupe removes later diagnostics equal in file, position, message and
// severity to an earlier one (the path is ignored: the same anchored text
// reached through several aliases is reported once).
func dedupe(ds []Diagnostic) []Diagnostic {
	type key struct {
		file      string
		line, col int
		msg       string
		warning   bool
	}
	seen := make(map[key]bool, len(ds))
	out := ds[:0]
	for _, d := range ds {
		k := key{d.File, d.Line, d.Col, d.Msg, d.Warning}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d)
	}
	return out
}

// diagAt builds a diagnostic positioned at n (which may be nil).
func diagAt(n *yaml.Node, path, format string, args ...any) Diagnostic {
	d := Diagnostic{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		d.Line, d.Col = n.Line, n.Column
	}
	return d
}

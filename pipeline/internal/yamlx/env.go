package yamlx

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ExpandEnv substitutes environment variables in every scalar value of the
// tree rooted at node (mapping keys are left alone, and so are !!binary
// scalars; aliases are not followed, the anchored value is expanded where it
// is written). lookup finds a variable; nil means os.LookupEnv.
//
// Syntax, as in a POSIX shell but braces only:
//
//	${VAR}          the value of VAR; a diagnostic when VAR is not set
//	${VAR:-default} the value of VAR, or default when VAR is unset or empty;
//	                default may be empty and holds anything but "}", taken
//	                literally
//	$$              a literal "$"
//
// Any other "$" is kept as is. Variable names are [A-Za-z_][A-Za-z0-9_]*.
// A scalar with an error (unset variable, malformed "${") is left unchanged;
// each error is a diagnostic at the scalar's position, and all are reported.
//
// A scalar written plain (unquoted, untagged) is re-resolved by yaml.v3's
// rules after substitution, so "threads: ${N}" with N=4 becomes an integer
// and "${EMPTY}" a null; quoted, block and explicitly tagged scalars keep
// their tag. Substituted text is never parsed as YAML structure.
//
// YAML itself reads "{" and "}" as flow indicators inside [...] and {...},
// so a reference there must be quoted: [ "${A}", "${B}" ]. In block style,
// "key: ${VAR}" needs no quotes.
func ExpandEnv(node *yaml.Node, lookup func(string) (string, bool)) []Diagnostic {
	return ExpandEnvDefaults(node, lookup, nil)
}

// ExpandEnvDefaults is ExpandEnv where fallback, when not nil, gives a value to a
// variable that is not set and has no ${VAR:-default}: a tool's own default for it
// (ok false: it has none). Its error (why the default is missing) is added to the
// diagnostic of the variable's first reference; the others say it is not set.
func ExpandEnvDefaults(node *yaml.Node, lookup func(string) (string, bool), fallback Fallback) []Diagnostic {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	e := &expander{lookup: lookup, fallback: fallback, reported: map[string]bool{}}
	var diags []Diagnostic
	e.expandNode(node, "", &diags)
	return diags
}

// Fallback gives a variable's default: ok false when it has none, err when it has one
// that cannot be had.
type Fallback func(name string) (value string, ok bool, err error)

type expander struct {
	lookup   func(string) (string, bool)
	fallback Fallback
	reported map[string]bool // variables whose fallback error was given
}

func (e *expander) expandNode(n *yaml.Node, path string, diags *[]Diagnostic) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = joinPath(path, fmt.Sprint(i))
			}
			e.expandNode(c, p, diags)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			e.expandNode(n.Content[i+1], joinPath(path, n.Content[i].Value), diags)
		}
	case yaml.ScalarNode:
		e.expandScalar(n, path, diags)
	}
}

func (e *expander) expandScalar(n *yaml.Node, path string, diags *[]Diagnostic) {
	if !strings.Contains(n.Value, "$") || n.ShortTag() == "!!binary" {
		return
	}
	value, errs := e.expandString(n.Value)
	if len(errs) > 0 {
		for _, msg := range errs {
			*diags = append(*diags, diagAt(n, path, "%s", msg))
		}
		return
	}
	if value == n.Value {
		return
	}
	n.Value = value
	const quoted = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	if n.Style&(quoted|yaml.TaggedStyle) == 0 {
		// Written plain and untagged: resolve the new text as yaml.v3's
		// parser would have.
		n.Tag = ""
		n.Tag = n.ShortTag()
	}
}

// expandString substitutes ${VAR}, ${VAR:-default} and $$ in s.
func (e *expander) expandString(s string) (string, []string) {
	var b strings.Builder
	var errs []string
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			errs = append(errs, fmt.Sprintf(`malformed variable reference %q: missing closing "}"`, truncate(s[i:], 40)))
			break
		}
		ref := s[i : i+2+end+1]
		body := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(body, ":-")
		switch {
		case name == "":
			errs = append(errs, fmt.Sprintf("malformed variable reference %q: empty variable name", ref))
			continue
		case !validVarName(name):
			msg := fmt.Sprintf("malformed variable reference %q: invalid variable name %q", ref, name)
			if v, d, ok := strings.Cut(name, ":"); ok && validVarName(v) {
				msg += fmt.Sprintf(" (use ${%s:-%s} to give a default)", v, d)
			}
			errs = append(errs, msg)
			continue
		}
		val, ok := e.lookup(name)
		switch {
		case hasDef && (!ok || val == ""):
			b.WriteString(def)
		case ok:
			b.WriteString(val)
		default:
			var v string
			var has bool
			var err error
			if e.fallback != nil {
				v, has, err = e.fallback(name)
			}
			switch {
			case has && err == nil:
				b.WriteString(v)
			case has && e.reported[name]:
				errs = append(errs, fmt.Sprintf("environment variable %q is not set", name))
			case has:
				e.reported[name] = true
				errs = append(errs, fmt.Sprintf("environment variable %q is not set: %v", name, err))
			default:
				errs = append(errs, fmt.Sprintf("environment variable %q is not set (use ${%s:-default} to give a default)", name, name))
			}
		}
	}
	return b.String(), errs
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

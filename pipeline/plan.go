package pipeline

import (
	"errors"
	"fmt"
	"github.com/onnxpipe/onnxpipe/internal/suggest"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onnxpipe/onnxpipe/pipeline/internal/yamlx"
)

// Plan is the validated chain of stage entries of a config.
type Plan struct {
	Entries []*Entry
}

// Entry is one stage of a plan with its decoded options.
type Entry struct {
	Index   int
	Stage   *Stage
	Options any
	// Implicit is set for entries the plan added (a prepare before calibration).
	Implicit bool
	// Reason says why an implicit entry was added.
	Reason    string
	Line, Col int
	Path      string // "stages.2.quantize"

	// needs links each requirement of the entry to the entry that provides it.
	needs []need
	// requests are the later entries' requests of this entry's result (Pass.Requests).
	requests []any
	// lastReader is the index of the last entry that reads this entry's result; -1 when
	// none does (the runner lets the result go after its last reader).
	lastReader int
	// writesAt is where each option tagged `onnxpipe:"path,writes"` is written in the
	// config (its value, or the entry when the option is not written), by field.
	writesAt map[string]position
}

// position is a line and column in the config (0 when unknown).
type position struct{ line, col int }

// need is a requirement and the index of the entry providing it.
type need struct {
	req  Requirement
	from int
}

// Mutates reports whether the entry changes the job's model.
func (e *Entry) Mutates() bool { return e.Stage.mutates(e.Options) }

// implicitBefore names stages the plan adds, with defaults, before the first entry of
// the listed stages when the config has none of them earlier: calibration and
// quantization work on the prepared graph.
var implicitBefore = []struct {
	stage  string
	before []string
}{
	{"prepare", []string{"calibrate", "quantize"}},
}

// Stage tags on options fields (`onnxpipe:"..."`):
//
//	dataset       the string names a dataset that must be defined in the config
//	path          the string is a file path: resolved against the config's folder; {name}
//	              and {dir} placeholders are replaced per job
//	path,writes   a path the stage writes: also, Jobs refuses one that is a job's input
//	              model
const tagKey = "onnxpipe"

func (d *decoder) plan(c *Config, doc *yaml.Node) *Plan {
	p := &Plan{}
	defined := map[string]bool{}
	for name := range c.File.Datasets {
		defined[name] = true
	}
	for _, m := range c.File.Models {
		for name := range m.Datasets {
			defined[name] = true
		}
	}
	for i, se := range c.File.Stages {
		path := fmt.Sprintf("stages.%d", i)
		e := d.entry(se.node, path, c.Dir, defined)
		if e != nil {
			p.Entries = append(p.Entries, e)
		}
	}
	if d.failed() {
		return p
	}
	for _, imp := range implicitBefore {
		st, ok := Lookup(imp.stage)
		if !ok {
			continue
		}
		for i, e := range p.Entries {
			if e.Stage == st {
				break
			}
			if slices.Contains(imp.before, e.Stage.Name) {
				ne := &Entry{Stage: st, Options: st.NewOptions(), Implicit: true, Line: e.Line, Col: e.Col,
					Reason: e.Stage.Name + " works on the prepared graph"}
				p.Entries = slices.Insert(p.Entries, i, ne)
				break
			}
		}
	}
	for i, e := range p.Entries {
		e.Index = i
	}
	for _, pr := range link(p.Entries) {
		d.errorAt(pr.entry.Line, pr.entry.Col, pr.entry.Path, pr.msg)
	}
	if len(p.Entries) == 0 && c.File.Output == "" && !slices.ContainsFunc(c.File.Models, func(m ModelRef) bool { return m.Output != "" }) {
		d.errorAt(doc.Line, doc.Column, "stages", errNoStages.Error()+"; add `stages:` or `output:`")
	}
	return p
}

// entry decodes one `stages:` item: `- name` or `- name: {options}`.
func (d *decoder) entry(n *yaml.Node, path, dir string, datasets map[string]bool) (e *Entry) {
	var name string
	var value *yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode:
		name = n.Value
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		name, value = n.Content[0].Value, n.Content[1]
	default:
		d.errorNode(n, path, "a stage entry is `- name` or `- name: {options}` (one stage per list item)")
		return nil
	}
	st, ok := Lookup(name)
	if !ok {
		msg := fmt.Sprintf("unknown stage %q", name)
		if s := suggest.Closest(name, StageNames()); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else {
			msg += "; stages: " + strings.Join(StageNames(), ", ")
		}
		d.errorNode(n, path, msg)
		return nil
	}
	path += "." + name
	opts := st.NewOptions()
	e = &Entry{Stage: st, Options: opts, Line: n.Line, Col: n.Column, Path: path}
	reported := map[string]bool{} // the options the decoder already reported
	if value != nil && !(value.Kind == yaml.ScalarNode && value.Tag == "!!null") {
		before := len(d.diags)
		d.add(prefix(d.keyed(yamlx.Check(value, reflect.TypeOf(opts), path), path), name))
		checked := len(d.diags) > before
		for _, dg := range d.diags[before:] {
			reported[dg.Path] = true
		}
		// Decode even after unknown keys (they are skipped), so that the dataset and
		// option checks below report their problems in the same run.
		if err := value.Decode(opts); err != nil {
			if !checked { // a type error Check already reported is not repeated
				d.errorNode(value, path, name+": "+cleanYAMLError(err))
			}
			return e
		}
		if checked {
			defer func() { e = nil }()
		}
	}
	walkTagged(reflect.ValueOf(opts), func(tag string, v reflect.Value, field string) {
		s := v.String()
		switch tag {
		case "dataset":
			if s != "" && !datasets[s] {
				msg := fmt.Sprintf("%s: %s: dataset %q is not defined under datasets:", name, field, s)
				if sug := suggest.Closest(s, keys(datasets)); sug != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", sug)
				}
				d.errorNode(locateOr(value, field, n), path+"."+field, msg)
			}
		case "path":
			if s != "" {
				v.SetString(resolvePath(dir, s))
			}
		}
	})
	walkWritten(reflect.ValueOf(opts), func(_ reflect.Value, field string) {
		if e.writesAt == nil {
			e.writesAt = map[string]position{}
		}
		at := locateOr(value, field, n)
		e.writesAt[field] = position{at.Line, at.Column}
	})
	if vd, ok := opts.(Validator); ok {
		d.problems(vd.Validate(), value, n, path, name, reported)
	}
	if w, ok := opts.(Warner); ok {
		for _, msg := range w.Warnings() {
			d.warnAt(n.Line, n.Column, path, name+": "+msg)
		}
	}
	return e
}

// problems reports what Validate returned: each Problem at its option's key (the entry
// when the option is not written), any other error at the entry. Problems of options in
// reported (a value outside an enum, already said by the decoder) are not repeated.
func (d *decoder) problems(err error, value, entry *yaml.Node, path, stage string, reported map[string]bool) {
	if err == nil {
		return
	}
	var ps Problems
	if !errors.As(err, &ps) {
		d.errorNode(entry, path, stage+": "+err.Error())
		return
	}
	for _, p := range ps {
		where := path
		if p.Field != "" {
			where += "." + p.Field
		}
		if reported[where] {
			continue
		}
		d.errorNode(locateField(value, p.Field, entry), where, stage+": "+p.String())
	}
}

// locateField finds the key of the option field (a dot path) under value, or of the
// nearest option above it that is written (a tensor name in the path may hold dots);
// fallback when none is.
func locateField(value *yaml.Node, field string, fallback *yaml.Node) *yaml.Node {
	for value != nil && field != "" {
		if k := yamlx.LocateKey(value, field); k != nil {
			return k
		}
		i := strings.LastIndexByte(field, '.')
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return fallback
}

func prefix(ds []yamlx.Diagnostic, stage string) []yamlx.Diagnostic {
	for i := range ds {
		ds[i].Msg = stage + ": " + ds[i].Msg
	}
	return ds
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func locateOr(n *yaml.Node, path string, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		if x := yamlx.Locate(n, path); x != nil {
			return x
		}
	}
	return fallback
}

// walkTagged calls fn for every settable string field with an `onnxpipe` tag in the
// struct v points to, recursing into nested structs and pointers to structs. tag is the
// tag's kind (its flags cut off); field is the dot path of yaml names.
func walkTagged(v reflect.Value, fn func(tag string, v reflect.Value, field string)) {
	walkTaggedPath(v, "", func(tag string, v reflect.Value, field string) {
		kind, _, _ := strings.Cut(tag, ",")
		fn(kind, v, field)
	})
}

// walkWritten calls fn for every field tagged `onnxpipe:"path,writes"`, as walkTagged.
func walkWritten(v reflect.Value, fn func(v reflect.Value, field string)) {
	walkTaggedPath(v, "", func(tag string, v reflect.Value, field string) {
		if kind, flags, _ := strings.Cut(tag, ","); kind == "path" && slices.Contains(strings.Split(flags, ","), "writes") {
			fn(v, field)
		}
	})
}

func walkTaggedPath(v reflect.Value, prefix string, fn func(string, reflect.Value, string)) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fv := v.Field(i)
		if tag := f.Tag.Get(tagKey); tag != "" && fv.Kind() == reflect.String {
			fn(tag, fv, prefix+name)
			continue
		}
		switch fv.Kind() {
		case reflect.Struct, reflect.Pointer:
			walkTaggedPath(fv, prefix+name+".", fn)
		}
	}
}

// String prints the plan as `onnxpipe validate` shows it.
func (p *Plan) String() string {
	var b strings.Builder
	for i, e := range p.Entries {
		opts := string(MarshalOptions(e.Options))
		if e.Implicit {
			fmt.Fprintf(&b, "  %d. %-10s (added: %s) %s\n", i+1, e.Stage.Name, e.Reason, opts)
		} else {
			fmt.Fprintf(&b, "  %d. %-10s %s\n", i+1, e.Stage.Name, opts)
		}
	}
	return b.String()
}

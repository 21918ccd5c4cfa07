package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/onnxpipe/onnxpipe/internal/suggest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/pipeline/internal/yamlx"
)

// File is the top level of a config file (docs/config.md).
type File struct {
	// Model is the input model (required unless Models is given).
	Model string `yaml:"model" json:"model,omitempty"`
	// Models lists paths, globs, or mappings with per-model overrides.
	Models []ModelRef `yaml:"models" json:"models,omitempty"`
	// Output is the final artifact; a save at the end of the chain. Placeholders {name}
	// and {dir} are the model's base name without .onnx and its folder's name.
	Output string `yaml:"output" json:"output,omitempty"`
	// Report is the report path prefix (default: Output without .onnx).
	Report string `yaml:"report" json:"report,omitempty"`
	// Runtime configures onnxruntime.
	Runtime Runtime `yaml:"runtime" json:"runtime"`
	// Datasets are named; stages refer to them by name.
	Datasets map[string]*dataset.Spec `yaml:"datasets" json:"datasets,omitempty"`
	// Stages is the chain, in order.
	Stages []StageEntry `yaml:"stages" json:"-"`
	// Parallel is the number of jobs run at once (default 1).
	Parallel int `yaml:"parallel" json:"parallel,omitempty"`
}

// Runtime is the `runtime:` section.
type Runtime struct {
	// Library is the onnxruntime shared library; default $ONNXPIPE_ORT_LIB, then the
	// folder `make ort` fills, then the system's library path.
	Library string `yaml:"library" json:"library,omitempty"`
	// Threads is onnxruntime's intra-op thread count (0: its default).
	Threads int `yaml:"threads" json:"threads,omitempty"`
	// Optimization is onnxruntime's graph optimization level: none | basic | extended | all.
	Optimization string `yaml:"optimization" json:"optimization,omitempty"`
}

// ModelRef is one entry of `models:`: a path or glob, or a mapping with overrides.
type ModelRef struct {
	Model    string                   `yaml:"model" json:"model"`
	Output   string                   `yaml:"output" json:"output,omitempty"`
	Report   string                   `yaml:"report" json:"report,omitempty"`
	Datasets map[string]*dataset.Spec `yaml:"datasets" json:"datasets,omitempty"`
	node     *yaml.Node
}

// UnmarshalYAML accepts a scalar (the path) or a mapping.
func (m *ModelRef) UnmarshalYAML(n *yaml.Node) error {
	m.node = n
	if n.Kind == yaml.ScalarNode {
		m.Model = n.Value
		return nil
	}
	type plain ModelRef
	return n.Decode((*plain)(m))
}

// StageEntry is one raw entry of `stages:`; the decoder interprets it against the
// registry.
type StageEntry struct{ node *yaml.Node }

// UnmarshalYAML keeps the node.
func (e *StageEntry) UnmarshalYAML(n *yaml.Node) error { e.node = n; return nil }

// Config is a decoded, validated config.
type Config struct {
	Path string // the config file
	Dir  string // its folder, against which relative paths resolve
	File File
	Plan *Plan
	// Effective is the config after --set and ${VAR} expansion, as YAML.
	Effective []byte
	// Warnings are diagnostics that do not stop a run.
	Warnings yamlx.Diagnostics
}

// LoadOptions are the command-line inputs to Load.
type LoadOptions struct {
	// Sets are --set path=value overrides.
	Sets []string
	// LookupEnv resolves ${VAR}; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// EnvDefault, when set, gives the tool's default to a ${VAR} that is not set and has
	// no ${VAR:-default} (ok false: none), or says why it cannot be had (the error is
	// shown with the variable's first reference).
	EnvDefault func(name string) (value string, ok bool, err error)
}

// Load reads, decodes and validates a config file. Every problem found is reported at
// once as yamlx.Diagnostics (file:line:col: message); an I/O problem is a plain error.
func Load(path string, opts LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, data, opts)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse is Load on config text; path names the file in messages and sets the folder
// relative paths resolve against.
func Parse(path string, data []byte, opts LoadOptions) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: path}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		d.errorAt(line, 0, "", "YAML syntax: "+strings.TrimPrefix(msg, "yaml: "))
		return nil, d.diags.Sort()
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		d.errorAt(1, 1, "", "the config is empty; it needs at least `model:` and `stages:`")
		return nil, d.diags.Sort()
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		d.errorAt(doc.Line, doc.Column, "", "the config must be a mapping of keys (model, output, datasets, stages, ...)")
		return nil, d.diags.Sort()
	}
	for _, s := range opts.Sets {
		p, v, ok := strings.Cut(s, "=")
		if !ok || p == "" {
			d.errorAt(0, 0, "", fmt.Sprintf("--set %q: use --set path=value", s))
			continue
		}
		if err := yamlx.Set(doc, p, v); err != nil {
			d.errorAt(0, 0, p, err.Error())
			continue
		}
		d.sets = append(d.sets, p)
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	d.add(yamlx.ExpandEnvDefaults(doc, lookup, opts.EnvDefault))
	before := len(d.diags)
	d.add(d.keyed(yamlx.Check(doc, reflect.TypeOf(File{}), ""), ""))
	checked := d.failedSince(before)
	// Unknown top-level keys do not stop the decoding: the stages are checked too, so that
	// every problem is reported at once. A top-level value that does not decode does.
	c := &Config{Path: path, Dir: filepath.Dir(abs)}
	if err := doc.Decode(&c.File); err != nil {
		if !checked { // a type error Check already reported (at its key) is not repeated at 1:1
			d.errorAt(doc.Line, doc.Column, "", cleanYAMLError(err))
		}
		return nil, d.diags.Sort()
	}
	c.Effective, _ = yaml.Marshal(doc)
	d.checkTop(c, doc)
	c.Plan = d.plan(c, doc)
	if d.failed() {
		return nil, d.diags.Sort()
	}
	c.Warnings = d.diags.Sort()
	return c, nil
}

// decoder collects diagnostics while decoding one file.
type decoder struct {
	file  string
	diags yamlx.Diagnostics
	sets  []string // the paths --set gave values to
}

// keyed makes each of yamlx.Check's diagnostics name its key: a value of the wrong type
// ("cannot unmarshal !!str `abc` into int", "expected a list, got ...") gets the key's
// path (below base, the path of the mapping checked) appended, and one that --set made,
// which has no line, the --set path in front.
func (d *decoder) keyed(ds []yamlx.Diagnostic, base string) []yamlx.Diagnostic {
	for i := range ds {
		dg := &ds[i]
		if dg.Line == 0 {
			if p := d.setBy(dg.Path); p != "" {
				dg.Msg = "--set " + p + ": " + dg.Msg
				continue
			}
		}
		key := strings.TrimPrefix(strings.TrimPrefix(dg.Path, base), ".")
		if key != "" && !strings.Contains(dg.Msg, lastKey(key)) {
			dg.Msg += " (key " + key + ")"
		}
	}
	return ds
}

// setBy returns the --set path that made the value at path (or the keys above it), or "".
func (d *decoder) setBy(path string) string {
	for _, p := range d.sets {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(p, path+".") {
			return p
		}
	}
	return ""
}

// lastKey is the last element of a dot path that is not a list index.
func lastKey(path string) string {
	parts := strings.Split(path, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		if _, err := strconv.Atoi(parts[i]); err != nil {
			return parts[i]
		}
	}
	return path
}

// failedSince reports whether an error was added after the first n diagnostics.
func (d *decoder) failedSince(n int) bool {
	for _, x := range d.diags[n:] {
		if !x.Warning {
			return true
		}
	}
	return false
}

func (d *decoder) add(ds []yamlx.Diagnostic) {
	for _, x := range ds {
		x.File = d.file
		d.diags = append(d.diags, x)
	}
}

func (d *decoder) errorAt(line, col int, path, msg string) {
	d.diags = append(d.diags, yamlx.Diagnostic{File: d.file, Line: line, Col: col, Path: path, Msg: msg})
}

func (d *decoder) warnAt(line, col int, path, msg string) {
	d.diags = append(d.diags, yamlx.Diagnostic{File: d.file, Line: line, Col: col, Path: path, Msg: msg, Warning: true})
}

func (d *decoder) errorNode(n *yaml.Node, path, msg string) {
	if n == nil {
		d.errorAt(0, 0, path, msg)
		return
	}
	d.errorAt(n.Line, n.Column, path, msg)
}

func (d *decoder) failed() bool {
	for _, x := range d.diags {
		if !x.Warning {
			return true
		}
	}
	return false
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	return strings.TrimSpace(msg)
}

// checkTop validates the top-level keys: the model(s), datasets, runtime, parallel.
func (d *decoder) checkTop(c *Config, doc *yaml.Node) {
	f := &c.File
	if f.Model == "" && len(f.Models) == 0 {
		d.errorAt(doc.Line, doc.Column, "model", "no model: give `model: path/to/model.onnx` or a `models:` list")
	}
	if f.Model != "" && len(f.Models) > 0 {
		d.errorNode(yamlx.Locate(doc, "models"), "models", "give either `model:` or `models:`, not both")
	}
	for i := range f.Models {
		m := &f.Models[i]
		path := fmt.Sprintf("models.%d", i)
		if m.node != nil && m.node.Kind == yaml.MappingNode {
			d.add(d.keyed(yamlx.Check(m.node, reflect.TypeOf(modelRefFields{}), path), path))
		}
		if m.Model == "" {
			d.errorNode(m.node, path, "a models entry needs a model path")
		}
		for name, spec := range m.Datasets {
			d.checkDataset(doc, path+".datasets."+name, name, spec)
		}
	}
	names := make([]string, 0, len(f.Datasets))
	for name := range f.Datasets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d.checkDataset(doc, "datasets."+name, name, f.Datasets[name])
	}
	switch f.Runtime.Optimization {
	case "", "none", "basic", "extended", "all":
	default:
		d.errorNode(yamlx.Locate(doc, "runtime.optimization"), "runtime.optimization",
			fmt.Sprintf("runtime.optimization %q: one of none, basic, extended, all", f.Runtime.Optimization))
	}
	if f.Runtime.Threads < 0 {
		d.errorNode(yamlx.Locate(doc, "runtime.threads"), "runtime.threads", "runtime.threads cannot be negative")
	}
	if f.Parallel < 0 {
		d.errorNode(yamlx.Locate(doc, "parallel"), "parallel", "parallel cannot be negative")
	}
	// Resolve relative paths against the config's folder.
	resolve := func(p string) string { return resolvePath(c.Dir, p) }
	f.Model = resolveNonEmpty(c.Dir, f.Model)
	f.Output = resolveNonEmpty(c.Dir, f.Output)
	f.Report = resolveNonEmpty(c.Dir, f.Report)
	f.Runtime.Library = resolveNonEmpty(c.Dir, f.Runtime.Library)
	for _, spec := range f.Datasets {
		if spec != nil {
			spec.ResolvePaths(resolve)
		}
	}
	for i := range f.Models {
		m := &f.Models[i]
		m.Model = resolveNonEmpty(c.Dir, m.Model)
		m.Output = resolveNonEmpty(c.Dir, m.Output)
		m.Report = resolveNonEmpty(c.Dir, m.Report)
		for _, spec := range m.Datasets {
			if spec != nil {
				spec.ResolvePaths(resolve)
			}
		}
	}
}

// modelRefFields is the shape of a `models:` mapping, for the strict key check.
type modelRefFields struct {
	Model    string                   `yaml:"model"`
	Output   string                   `yaml:"output"`
	Report   string                   `yaml:"report"`
	Datasets map[string]*dataset.Spec `yaml:"datasets"`
}

func (d *decoder) checkDataset(doc *yaml.Node, path, name string, spec *dataset.Spec) {
	if spec == nil {
		d.errorNode(yamlx.LocateKey(doc, path), path, fmt.Sprintf("dataset %q is empty: give at least its format and inputs", name))
		return
	}
	if err := spec.Validate(); err != nil {
		d.errorNode(yamlx.LocateKey(doc, path), path, fmt.Sprintf("dataset %q: %v", name, err))
	}
}

func resolveNonEmpty(dir, p string) string {
	if p == "" {
		return ""
	}
	return resolvePath(dir, p)
}

// resolvePath makes p absolute against dir (leaving absolute paths alone).
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// MarshalOptions renders options as canonical JSON (for manifests and config hashes).
func MarshalOptions(opts any) []byte {
	b, err := json.Marshal(opts)
	if err != nil {
		return []byte(fmt.Sprintf("%#v", opts))
	}
	var out bytes.Buffer
	_ = json.Compact(&out, b)
	return out.Bytes()
}

// errNoStages is reported when a config has no stages and no output.
var errNoStages = errors.New("nothing to do: the config has no stages and no output")

// Diagnostic is one problem found in a config, with its file:line:col.
type Diagnostic = yamlx.Diagnostic

// Diagnostics is the error Load, Parse and Config.Jobs return for a rejected config: every
// problem at once, in file order.
type Diagnostics = yamlx.Diagnostics

// Suggest returns the candidate nearest to name ("did you mean"), or "".
func Suggest(name string, candidates []string) string { return suggest.Closest(name, candidates) }

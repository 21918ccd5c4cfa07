package pipeline

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/report"
)

// Job is one model's run through the plan: what is fixed when jobs are expanded, and,
// unexported, the job's state while it runs (its models, datasets, artifacts), which
// stages reach through their Pass.
type Job struct {
	// Index is the job's position in the job list sorted by model path (0-based); shards
	// are taken by it.
	Index     int
	Name      string // the {name} placeholder: the model's base name without .onnx
	ModelPath string
	// Output is the final artifact ("" when the config has no output).
	Output string
	// ReportPrefix is the report path without .report.{json,md,html}.
	ReportPrefix string
	Datasets     map[string]*dataset.Spec
	Runtime      Runtime
	// Entries are the plan's entries with this job's placeholders substituted.
	Entries []*Entry

	// input is the model as loaded; model the current one (the same value until a stage
	// changes it); previous the model before the latest stage that changed it.
	input, model, previous *onnxio.Model
	// artifacts maps a name to a file a stage wrote (calibration cache, step saves).
	artifacts map[string]string
	// saved are the models written along the chain (save stages), in order.
	saved []report.File
	// opened are the datasets opened for this job, by name and model inputs; handed those
	// a stage had (and reported the warnings of).
	opened   map[string]*dataset.Dataset
	handed   map[string]bool
	openedMu sync.Mutex
	log      *slog.Logger
	progress func(stage string, done, total int)
}

// Artifacts maps a name to each file the job wrote besides its output (calibration
// cache, step saves, the report), after it ran.
func (j *Job) Artifacts() map[string]string { return j.artifacts }

// Dataset returns the spec of the named dataset for this job.
func (j *Job) Dataset(name string) (*dataset.Spec, error) {
	s, ok := j.Datasets[name]
	if !ok || s == nil {
		return nil, fmt.Errorf("dataset %q is not defined for model %s", name, j.ModelPath)
	}
	return s, nil
}

// openDataset opens the named dataset for a model with these inputs, or returns the one
// this job opened before for the same inputs; fresh says no stage had it before (its
// warnings are not reported yet).
func (j *Job) openDataset(name string, inputs []dataset.InputInfo) (ds *dataset.Dataset, fresh bool, err error) {
	if ds, err = j.dataset(name, inputs); err != nil {
		return nil, false, err
	}
	key := name + "\x00" + inputsKey(inputs)
	j.openedMu.Lock()
	defer j.openedMu.Unlock()
	if j.handed == nil {
		j.handed = map[string]bool{}
	}
	fresh = !j.handed[key]
	j.handed[key] = true
	return ds, fresh, nil
}

// dataset opens the named dataset for a model with these inputs, or returns the one this
// job opened before for the same inputs (the check before the first stage opens them).
func (j *Job) dataset(name string, inputs []dataset.InputInfo) (*dataset.Dataset, error) {
	spec, err := j.Dataset(name)
	if err != nil {
		return nil, err
	}
	key := name + "\x00" + inputsKey(inputs)
	j.openedMu.Lock()
	defer j.openedMu.Unlock()
	if ds := j.opened[key]; ds != nil {
		return ds, nil
	}
	ds, err := dataset.Open(spec, inputs)
	if err != nil {
		return nil, err
	}
	if j.opened == nil {
		j.opened = map[string]*dataset.Dataset{}
	}
	j.opened[key] = ds
	return ds, nil
}

// inputsKey identifies a model's inputs (names, types, shapes) for the dataset cache.
func inputsKey(inputs []dataset.InputInfo) string {
	var b strings.Builder
	for _, in := range inputs {
		fmt.Fprintf(&b, "%s:%d:%v;", in.Name, in.Type, in.Shape)
	}
	return b.String()
}

// closeDatasets closes the datasets the job opened.
func (j *Job) closeDatasets() {
	j.openedMu.Lock()
	defer j.openedMu.Unlock()
	for _, ds := range j.opened {
		_ = ds.Close()
	}
	j.opened, j.handed = nil, nil
}

// Jobs expands the config into its jobs, sorted by model path: globs are matched,
// per-model overrides applied, placeholders substituted. Two jobs that would write the
// same file, an output equal to its input, a file a job writes that it also reads (its
// model, the config, a dataset's file), a file a stage writes (an option tagged
// `onnxpipe:"path,writes"`, as save's path) that is an input model, an unknown
// placeholder, or a glob matching nothing are errors (yamlx.Diagnostics).
func (c *Config) Jobs() ([]*Job, error) {
	d := &decoder{file: c.Path}
	srcs := c.modelSources(d)
	inputs := map[string]string{} // absolute path -> the model as the config names it
	for _, s := range srcs {
		abs, _ := filepath.Abs(s.path)
		if _, dup := inputs[abs]; !dup {
			inputs[abs] = s.path
		}
	}
	var jobs []*Job
	seen := map[string]bool{}
	writers := map[string]string{} // file -> model that writes it
	claim := func(file, model string) {
		if file == "" {
			return
		}
		if other, ok := writers[file]; ok && other != model {
			d.errorAt(0, 0, "output", fmt.Sprintf("models %s and %s would both write %s; use {name} or {dir} in the path", other, model, file))
		}
		writers[file] = model
	}
	for _, s := range srcs {
		abs, _ := filepath.Abs(s.path)
		if seen[abs] {
			continue // listed twice (e.g. by a glob and by name): the first entry wins
		}
		seen[abs] = true
		j, err := c.newJob(s, abs)
		if err != nil {
			d.errorAt(0, 0, "model", fmt.Sprintf("model %s: %v", s.path, err))
			continue
		}
		for _, w := range j.writes() {
			for _, in := range j.reads(c.Path) {
				if samePath(w.path, in.path) {
					d.errorAt(0, 0, w.key, fmt.Sprintf("%s %s is %s; write the result elsewhere", w.key, w.path, in.what))
					break
				}
			}
		}
		claim(j.Output, s.path)
		claim(j.ReportPrefix+".report.json", s.path)
		for _, e := range j.Entries {
			walkWritten(reflect.ValueOf(e.Options), func(v reflect.Value, field string) {
				p := v.String()
				if p == "" {
					return
				}
				pabs, _ := filepath.Abs(p)
				other, isInput := inputs[pabs]
				if !isInput {
					return
				}
				at := e.writesAt[field]
				what := "the input model itself"
				if pabs != abs {
					what = fmt.Sprintf("the input model of another job (%s)", other)
				}
				d.errorAt(at.line, at.col, e.Path+"."+field,
					fmt.Sprintf("%s: %s %s is %s; write it elsewhere", e.Stage.Name, field, p, what))
			})
		}
		jobs = append(jobs, j)
	}
	if d.failed() {
		return nil, d.diags.Sort()
	}
	for i, j := range jobs {
		j.Index = i
	}
	return jobs, nil
}

// placeholders replaces {name} and {dir} by the model's base name and its folder's
// name. A value that would lead a path out of its folder ("", ".", "..", a separator) is
// an error: an output "out/{name}.onnx" must stay in out/. The name is always checked (the
// default report path holds it), the folder's name when usesDir.
func placeholders(name, dir string, usesDir bool) (*strings.Replacer, error) {
	for _, p := range [][2]string{{"{name}", name}, {"{dir}", dir}} {
		v := p[1]
		if p[0] == "{dir}" && !usesDir {
			continue
		}
		if v == "" || v == "." || v == ".." || strings.ContainsAny(v, `/\`) {
			return nil, fmt.Errorf("its %s would be %q, which does not name a file inside the output folder; rename the model file or its folder", p[0], v)
		}
	}
	return strings.NewReplacer("{name}", name, "{dir}", dir), nil
}

// modelSource is one model file of the config, with the models entry that names it (nil
// for the top-level model).
type modelSource struct {
	path string
	ref  *ModelRef
}

// modelSources lists the config's model files, globs matched, sorted by path. A bad
// glob or one matching no file is reported to d.
func (c *Config) modelSources(d *decoder) []modelSource {
	var srcs []modelSource
	if c.File.Model != "" {
		srcs = append(srcs, expandModel(d, c.File.Model, nil, "model")...)
	}
	for i := range c.File.Models {
		srcs = append(srcs, expandModel(d, c.File.Models[i].Model, &c.File.Models[i], fmt.Sprintf("models.%d", i))...)
	}
	sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].path < srcs[j].path })
	return srcs
}

// expandModel returns the files pattern names: itself when it is no glob, else the files
// (not folders) it matches. where is pattern's place in the config, for d's messages.
func expandModel(d *decoder, pattern string, ref *ModelRef, where string) []modelSource {
	if !strings.ContainsAny(pattern, "*?[") {
		return []modelSource{{pattern, ref}}
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		d.errorAt(0, 0, where, fmt.Sprintf("bad glob %q: %v", pattern, err))
		return nil
	}
	var srcs []modelSource
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && !st.IsDir() {
			srcs = append(srcs, modelSource{m, ref})
		}
	}
	if len(srcs) == 0 {
		line, col := 0, 0
		if ref != nil && ref.node != nil {
			line, col = ref.node.Line, ref.node.Column
		}
		d.errorAt(line, col, where, fmt.Sprintf("%s matches no files", pattern))
	}
	return srcs
}

// newJob makes the job of model s (abs is its absolute path): the config's output,
// report and datasets, overridden by s's models entry, with {name} and {dir} substituted
// in them and in the plan entries' path options; an error when a placeholder's value
// would lead out of the output folder.
func (c *Config) newJob(s modelSource, abs string) (*Job, error) {
	j := &Job{ModelPath: s.path, Name: strings.TrimSuffix(filepath.Base(s.path), ".onnx"),
		Runtime: c.File.Runtime, Datasets: map[string]*dataset.Spec{}}
	out, rep := c.File.Output, c.File.Report
	for k, v := range c.File.Datasets {
		j.Datasets[k] = v
	}
	if s.ref != nil {
		if s.ref.Output != "" {
			out = s.ref.Output
		}
		if s.ref.Report != "" {
			rep = s.ref.Report
		}
		for k, v := range s.ref.Datasets {
			j.Datasets[k] = v
		}
	}
	for _, p := range []jobFile{{path: out, key: "output"}, {path: rep, key: "report"}} {
		if err := unknownPlaceholder(p.key, p.path, c.Dir); err != nil {
			return nil, err
		}
	}
	for _, e := range c.Plan.Entries {
		var err error
		walkTagged(reflect.ValueOf(e.Options), func(tag string, v reflect.Value, field string) {
			if tag == "path" && err == nil {
				err = unknownPlaceholder(e.Path+"."+field, v.String(), c.Dir)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	vars, err := placeholders(j.Name, filepath.Base(filepath.Dir(abs)), strings.Contains(out+rep, "{dir}"))
	if err != nil {
		return nil, err
	}
	j.Output = vars.Replace(out)
	switch {
	case rep != "":
		j.ReportPrefix = vars.Replace(rep)
	case j.Output != "":
		j.ReportPrefix = strings.TrimSuffix(j.Output, ".onnx")
	default:
		j.ReportPrefix = filepath.Join(c.Dir, "out", j.Name)
	}
	for _, e := range c.Plan.Entries {
		ne := *e
		ne.Options = substitute(e.Options, vars)
		j.Entries = append(j.Entries, &ne)
	}
	link(j.Entries) // the requests, from this job's options (the plan checked the links)
	return j, nil
}

// jobFile is a file a job reads or writes: its path, and the config key that names it
// (key) or what it is (what), for messages.
type jobFile struct{ path, key, what string }

// writes lists the files the job writes: its output, its reports, and the paths its
// stages' options name, except a stage's model path (distill's student), which is read.
func (j *Job) writes() []jobFile {
	var out []jobFile
	if j.Output != "" {
		out = append(out, jobFile{path: j.Output, key: "output"})
	}
	for _, ext := range []string{".report.json", ".report.md", ".report.html"} {
		out = append(out, jobFile{path: j.ReportPrefix + ext, key: "report"})
	}
	for _, e := range j.Entries {
		walkTagged(reflect.ValueOf(e.Options), func(tag string, v reflect.Value, field string) {
			if tag == "path" && v.String() != "" && lastKey(field) != "model" {
				out = append(out, jobFile{path: v.String(), key: e.Path + "." + field})
			}
		})
	}
	return out
}

// reads lists the files the job reads and must not overwrite: its model, the config,
// and its datasets' files.
func (j *Job) reads(config string) []jobFile {
	out := []jobFile{{path: j.ModelPath, what: "the input model itself"}, {path: config, what: "the config file"}}
	for _, name := range slices.Sorted(maps.Keys(j.Datasets)) {
		spec := j.Datasets[name]
		if spec == nil || spec.Format == "random" {
			continue
		}
		for _, in := range slices.Sorted(maps.Keys(spec.Inputs)) {
			p := spec.Inputs[in]
			if i := strings.LastIndex(p, ".npz:"); i >= 0 {
				p = p[:i+len(".npz")] // file.npz:member
			}
			out = append(out, jobFile{path: p, what: fmt.Sprintf("a file of dataset %q (input %q)", name, in)})
		}
		if spec.Labels != "" && spec.Labels != dataset.LabelsFromFolders {
			p := spec.Labels
			if i := strings.LastIndex(p, ".npz:"); i >= 0 {
				p = p[:i+len(".npz")]
			}
			out = append(out, jobFile{path: p, what: fmt.Sprintf("the labels file of dataset %q", name)})
		}
	}
	return out
}

// samePath reports whether a and b name the same file: the same absolute path, or, when
// both exist, the same file through links.
func samePath(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// placeholderRE matches what looks like a placeholder: a word in braces.
var placeholderRE = regexp.MustCompile(`\{[A-Za-z_][A-Za-z0-9_]*\}`)

// unknownPlaceholder returns an error for the first placeholder of path (before
// substitution) that is neither {name} nor {dir}. Only what the config wrote is looked
// at: the part below the config's folder dir (which relative paths were resolved
// against, and whose own name may hold braces), or the file name of a path elsewhere.
func unknownPlaceholder(key, path, dir string) error {
	written := filepath.Base(path)
	if rel, err := filepath.Rel(dir, path); err == nil && filepath.IsLocal(rel) {
		written = rel
	}
	for _, m := range placeholderRE.FindAllString(written, -1) {
		if m != "{name}" && m != "{dir}" {
			return fmt.Errorf("%s %q: unknown placeholder %s; the placeholders are {name} and {dir}", key, path, m)
		}
	}
	return nil
}

// substitute returns a deep copy of opts with {name} and {dir} replaced in the fields
// tagged `onnxpipe:"path"`.
func substitute(opts any, vars *strings.Replacer) any {
	cp := deepCopy(reflect.ValueOf(opts)).Interface()
	walkTagged(reflect.ValueOf(cp), func(tag string, v reflect.Value, _ string) {
		if tag == "path" {
			v.SetString(vars.Replace(v.String()))
		}
	})
	return cp
}

// deepCopy copies structs, pointers, slices and maps so that per-job options share no
// memory with the plan's.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		cp := reflect.New(v.Type().Elem())
		cp.Elem().Set(deepCopy(v.Elem()))
		return cp
	case reflect.Struct:
		cp := reflect.New(v.Type()).Elem()
		cp.Set(v) // copies unexported fields too
		for i := 0; i < v.NumField(); i++ {
			if cp.Field(i).CanSet() {
				cp.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return cp
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			cp.Index(i).Set(deepCopy(v.Index(i)))
		}
		return cp
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		cp := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			cp.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return cp
	}
	return v
}

// ParseShard reads "i/n" (1-based i).
func ParseShard(s string) (i, n int, err error) {
	if _, err := fmt.Sscanf(s, "%d/%d", &i, &n); err != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("--shard %q: use i/n with 1 <= i <= n, e.g. --shard 2/4", s)
	}
	return i, n, nil
}

// Shard returns the jobs of shard i of n (1-based): those whose index is congruent to
// i-1 modulo n.
func Shard(jobs []*Job, i, n int) []*Job {
	var out []*Job
	for _, j := range jobs {
		if j.Index%n == i-1 {
			out = append(out, j)
		}
	}
	return out
}

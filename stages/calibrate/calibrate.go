// Package calibrate is the `calibrate` stage: activation ranges collected on real data.
package calibrate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize"
	"github.com/onnxpipe/onnxpipe/report"
)

// Stage is the calibrate stage.
var Stage = &pipeline.Stage{
	Name: "calibrate",
	Doc: `Collect activation ranges on a dataset.

Every float activation of the (prepared) graph, or the listed tensors, becomes an output of
a copy of the model; onnxruntime runs it batch by batch and each batch is folded into
streaming per-tensor statistics at once (min/max, or a histogram that grows its range
without losing counts), so memory does not grow with the number of samples. When one
pass's extra outputs would not fit in memory, the tensors are split into groups, one pass
each. The method chooses each tensor's range: minmax, percentile (of the histogram),
entropy (TensorRT's KL-divergence threshold search) or mse (the clipping threshold that
minimises the quantization error). The table records the hash of the graph it was made on
(quantize refuses a table made for another graph) and can be cached: a rerun with the
same model, dataset and method reuses it.

By default only the activations whose range quantize reads are measured (coverage:
quantize): with the options of the quantize stage that follows in the chain, or, when
none follows, under any of its options. A quantize stage with asymmetric activations on
the cpu profile folds each Relu into the range of the Conv or Add before it, whose own
range is then never read: leaving it out keeps onnxruntime's Conv+Relu fusions while it
calibrates (ResNet-18: 31 of 49 values).
Values that hold exactly another value's data (outputs of Reshape, Flatten, Squeeze,
Unsqueeze, Transpose, Identity, DepthToSpace, SpaceToDepth) are never exposed: the table
records them as aliases with their source's range. Exposing fewer values lets onnxruntime
keep more of its fusions. coverage: all (or a tensorrt_cache) measures every activation.`,
	NewOptions: func() any {
		return &Options{Method: "minmax", Percentile: 99.999, Tensors: TensorSelection{}, MovingAverage: 0, MaxPassBytes: 1 << 30, Coverage: calibrate.CoverageQuantize}
	},
	Run: run,
}

func init() { pipeline.Register(Stage) }

// Options are the calibrate stage's options.
type Options struct {
	// Dataset names the calibration dataset. Required.
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Method is minmax, percentile, entropy or mse.
	Method string `yaml:"method" json:"method"`
	// Percentile is the percentile kept by method percentile.
	Percentile float64 `yaml:"percentile" json:"percentile"`
	// Symmetric makes every range symmetric around zero.
	Symmetric bool `yaml:"symmetric" json:"symmetric"`
	// MovingAverage, when > 0, is the constant c of a moving average of per-batch minima
	// and maxima (ema = c*batch + (1-c)*ema; onnxruntime's default c is 0.01), for minmax.
	MovingAverage float64 `yaml:"moving_average" json:"moving_average,omitempty"`
	// Tensors limits calibration to these tensors (a list of names), or, written all,
	// measures every float activation (as coverage: all); empty, coverage decides.
	Tensors TensorSelection `yaml:"tensors" json:"tensors"`
	// Coverage, when Tensors is empty, is quantize (the default: the activations whose
	// range the quantize stage after this one reads with its options; with no quantize
	// stage after it in the chain, those quantize can read under any options) or all
	// (every float activation, as a TensorRT cache needs: TensorRTCache implies it).
	// Copies of another value are aliases either way.
	Coverage string `yaml:"coverage" json:"coverage"`
	// Cache is a JSON file the table is saved to and reused from when the model, dataset
	// and method are unchanged; {name} and {dir} are replaced per model.
	Cache string `yaml:"cache" json:"cache,omitempty" onnxpipe:"path"`
	// TensorRTCache, when set, also writes the table in TensorRT's calibration-cache text
	// format to this path.
	TensorRTCache string `yaml:"tensorrt_cache" json:"tensorrt_cache,omitempty" onnxpipe:"path"`
	// MaxPassBytes bounds the extra outputs of one inference pass; above it the tensors are
	// split into groups, one pass over the data each.
	MaxPassBytes int64 `yaml:"max_pass_bytes" json:"max_pass_bytes"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Dataset == "" {
		return fmt.Errorf("dataset is required")
	}
	if _, err := calibrate.ParseMethod(o.Method); err != nil {
		return err
	}
	if o.Percentile <= 50 || o.Percentile > 100 {
		return fmt.Errorf("percentile %g: between 50 and 100", o.Percentile)
	}
	if o.MovingAverage < 0 || o.MovingAverage >= 1 {
		return fmt.Errorf("moving_average %g: 0 (off) or a constant in (0, 1)", o.MovingAverage)
	}
	switch o.Coverage {
	case "", calibrate.CoverageQuantize, calibrate.CoverageAll:
	default:
		return fmt.Errorf("coverage %q: quantize or all", o.Coverage)
	}
	if o.MaxPassBytes < 1<<20 {
		return fmt.Errorf("max_pass_bytes must be at least 1 MiB")
	}
	return nil
}

// Warnings reports options the method ignores.
func (o *Options) Warnings() []string {
	var w []string
	if o.Method != "percentile" && o.Percentile != 99.999 {
		w = append(w, fmt.Sprintf("percentile is ignored with method %s", o.Method))
	}
	if o.Method != "minmax" && o.MovingAverage != 0 {
		w = append(w, fmt.Sprintf("moving_average is ignored with method %s", o.Method))
	}
	return w
}

var (
	_ pipeline.Validator = (*Options)(nil)
	_ pipeline.Warner    = (*Options)(nil)
)

// tableResult wraps the table for the report (a summary, not every tensor).
type tableResult struct{ *calibrate.Table }

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	spec, err := p.Job.Dataset(o.Dataset)
	if err != nil {
		return nil, err
	}
	m := p.Job.Model
	method, _ := calibrate.ParseMethod(o.Method)
	fingerprint, err := dataset.Fingerprint(spec)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", o.Dataset, err)
	}
	hash := m.GraphHash()
	coverage := o.coverage()
	tensors, aliases, err := o.measure(p, m, coverage)
	if err != nil {
		return nil, err
	}
	if o.Cache != "" {
		t, err := calibrate.LoadTable(o.Cache)
		switch {
		case err == nil && t.GraphSHA256 == hash && t.Dataset == fingerprint && t.Method == string(method) &&
			t.Symmetric == o.Symmetric && t.MovingAverage == o.MovingAverage && (method != calibrate.Percentile || t.Percentile == o.Percentile) &&
			covers(t, coverage, tensors, aliases):
			p.Note("calibration cache hit: %s (%d tensors, %d samples)", o.Cache, len(t.Tensors), t.Samples)
			p.Metric("cache_hit", 1, "")
			p.Job.Artifacts["calibration"] = o.Cache
			return t, nil
		case err == nil:
			p.Note("calibration cache %s is for another model, dataset or method: recalibrating", o.Cache)
		case !os.IsNotExist(err):
			p.Warn("calibration cache ignored: %v", err)
		}
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(m))
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", o.Dataset, err)
	}
	defer ds.Close()
	for _, w := range ds.Warnings() {
		p.Warn("dataset %q: %s", o.Dataset, w)
	}
	stats, err := calibrate.Collect(p.Ctx, m, ds, calibrate.CollectOptions{
		Method: method, Percentile: o.Percentile, Symmetric: o.Symmetric, MovingAverage: o.MovingAverage,
		Tensors: tensors, Aliases: aliases, MaxPassBytes: o.MaxPassBytes, Threads: p.Job.Runtime.Threads,
		Optimization: p.Job.Runtime.Optimization, Progress: p.Progress,
	})
	if err != nil {
		return nil, err
	}
	t := stats.Table
	t.Dataset = fingerprint
	t.Coverage = coverage
	t.NotFloat = stats.NonFloat
	p.Metric("tensors_measured", float64(len(tensors)), "")
	p.Metric("tensors", float64(len(t.Tensors)), "")
	p.Metric("samples", float64(t.Samples), "")
	p.Metric("passes", float64(stats.Passes), "")
	p.Metric("peak_heap", float64(stats.PeakHeapBytes)/(1<<20), "MiB")
	p.Metric("seconds", stats.Seconds, "s")
	for _, name := range stats.NonFinite {
		p.Warn("tensor %q had NaN or Inf values; they were left out of its range", name)
	}
	if o.Cache != "" {
		if err := os.MkdirAll(filepath.Dir(o.Cache), 0o755); err != nil {
			return nil, err
		}
		if err := t.Save(o.Cache); err != nil {
			return nil, err
		}
		p.Job.Artifacts["calibration"] = o.Cache
		p.Note("calibration table saved to %s", o.Cache)
	}
	if o.TensorRTCache != "" {
		if err := writeTensorRT(t, o.TensorRTCache); err != nil {
			return nil, err
		}
	}
	for _, name := range worstClipped(t, 3) {
		h := stats.Set.Histogram(name)
		if h == nil {
			continue
		}
		lo, width, counts := h.Bins()
		c := report.Chart{Title: "activation histogram: " + name, Kind: "hist", XLabel: "value", YLabel: "count",
			Series: []report.Series{{Name: name}}}
		for i, v := range counts {
			c.XNum = append(c.XNum, lo+(float64(i)+0.5)*width)
			c.Series[0].Values = append(c.Series[0].Values, report.Float(v))
		}
		p.Chart(c)
	}
	return t, nil
}

// coverage is what the table must hold: listed tensors, every activation (also for a
// TensorRT cache), or those quantize reads.
func (o *Options) coverage() string {
	switch {
	case len(o.Tensors.Names) > 0:
		return calibrate.CoverageListed
	case o.Coverage == calibrate.CoverageAll || o.Tensors.All || o.TensorRTCache != "":
		return calibrate.CoverageAll
	}
	return calibrate.CoverageQuantize
}

// RangeReader is implemented by the options of a stage that reads the calibration table
// (quantize): by default calibrate measures the ranges the first such stage after it
// reads with its options.
type RangeReader interface {
	// CalibrationOptions returns the options the table is read with; ok is false when
	// this entry reads no table (quantize mode dynamic).
	CalibrationOptions() (o quantize.Options, ok bool)
}

// measure lists the values to expose and the aliases to record: the listed tensors;
// every activation (coverage all); or, for coverage quantize, the ranges the quantize
// stage after this one reads with its options (quantize.CalibrationTensorsFor: a Conv's
// output that a folded Relu replaces is left out), or, with no such stage in this
// chain, the ranges quantize reads under any options.
func (o *Options) measure(p *pipeline.Pass, m *onnxio.Model, coverage string) ([]string, map[string]string, error) {
	switch coverage {
	case calibrate.CoverageListed:
		return o.Tensors.Names, nil, nil
	case calibrate.CoverageAll:
		t, a := quantize.CalibrationTensors(m, true)
		return t, a, nil
	}
	var tensors []string
	var aliases map[string]string
	if qo, ok := reader(p); ok {
		var err error
		if tensors, aliases, err = quantize.CalibrationTensorsFor(m, qo); err != nil {
			return nil, nil, fmt.Errorf("the quantize stage's options: %w", err)
		}
	} else {
		tensors, aliases = quantize.CalibrationTensors(m, false)
	}
	if len(tensors) == 0 { // nothing quantize reads: measure every activation
		tensors, aliases = quantize.CalibrationTensors(m, true)
	}
	return tensors, aliases, nil
}

// reader returns the options of the first stage after p that reads the table p makes,
// if any: it looks no further than the next calibrate stage or a stage that replaces the
// model (which would make a table for another graph).
func reader(p *pipeline.Pass) (quantize.Options, bool) {
	for _, e := range p.Later {
		if r, ok := e.Options.(RangeReader); ok {
			return r.CalibrationOptions()
		}
		if e.Stage.Name == "calibrate" || e.Stage.Mutates {
			break
		}
	}
	return quantize.Options{}, false
}

// covers reports whether cached table t holds what this calibration would measure: for
// coverage all, every activation; otherwise a range (or a record that it is not float)
// for each of tensors and aliases.
func covers(t *calibrate.Table, coverage string, tensors []string, aliases map[string]string) bool {
	full := t.Coverage == "" || t.Coverage == calibrate.CoverageAll
	if coverage == calibrate.CoverageAll || full {
		return full
	}
	has := func(n string) bool { return t.Tensors[n] != nil || slices.Contains(t.NotFloat, n) }
	for _, n := range tensors {
		if !has(n) {
			return false
		}
	}
	for a, src := range aliases {
		if t.Tensors[src] != nil && t.Tensors[a] == nil {
			return false
		}
	}
	return true
}

func writeTensorRT(t *calibrate.Table, path string) error {
	f, err := onnxio.CreateTemp(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := t.WriteTensorRTCache(f, "EntropyCalibration2"); err != nil {
		return err
	}
	return f.Commit()
}

// RunSamples runs m on the first n samples of the job's calibration dataset (the dataset
// of the latest calibrate stage) and checks the outputs are finite: the quantize stage's
// proof that its result runs.
func RunSamples(p *pipeline.Pass, m *onnxio.Model, n int) error {
	var spec *dataset.Spec
	for i := p.Entry - 1; i >= 0; i-- {
		if e := p.Job.Entries[i]; e.Stage == Stage {
			s, err := p.Job.Dataset(e.Options.(*Options).Dataset)
			if err != nil {
				return err
			}
			spec = s
			break
		}
	}
	if spec == nil {
		return nil
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(m))
	if err != nil {
		return err
	}
	defer ds.Close()
	data, err := m.Bytes()
	if err != nil {
		return err
	}
	s, err := ort.NewSession(data, ort.Options{Threads: p.Job.Runtime.Threads, Optimization: p.Job.Runtime.Optimization})
	if err != nil {
		return err
	}
	defer s.Close()
	done := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return err
		}
		out, err := s.Run(b.Inputs)
		if err != nil {
			return fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		for name, t := range out {
			if vals, err := t.Float32s(); err == nil {
				for _, v := range vals {
					if v != v || v > 3.4e38 || v < -3.4e38 {
						return fmt.Errorf("output %q is not finite on samples %d..%d", name, b.Index, b.Index+b.N-1)
					}
				}
			}
		}
		if done += b.N; done >= n {
			break
		}
	}
	return nil
}

// worstClipped names the n tensors whose chosen range clips the most of their observed
// range: the ones whose histograms are worth a look.
func worstClipped(t *calibrate.Table, n int) []string {
	type kv struct {
		name string
		frac float64
	}
	var all []kv
	for name, r := range t.Tensors {
		if r.AliasOf != "" {
			continue // its source's histogram
		}
		span := float64(r.ObservedMax - r.ObservedMin)
		if span <= 0 {
			continue
		}
		kept := float64(min(r.Max, r.ObservedMax) - max(r.Min, r.ObservedMin))
		all = append(all, kv{name, 1 - kept/span})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].frac != all[j].frac {
			return all[i].frac > all[j].frac
		}
		return all[i].name < all[j].name
	})
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].name)
	}
	return out
}

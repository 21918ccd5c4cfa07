// Package calibrate is the `calibrate` stage: activation ranges collected on real data.
package calibrate

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/calibrate/collect"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/stages/internal/results"
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
quantize): those the quantize stage that reads this table asks for (its options decide
them), or, when no stage reads it, those quantize reads under any of its options. A quantize stage with asymmetric activations on
the cpu profile folds each Relu into the range of the Conv or Add before it, whose own
range is then never read: leaving it out keeps onnxruntime's Conv+Relu fusions while it
calibrates (ResNet-18: 31 of 49 values).
Values that hold exactly another value's data (outputs of Reshape, Flatten, Squeeze,
Unsqueeze, Transpose, Identity, DepthToSpace, SpaceToDepth) are never exposed: the table
records them as aliases with their source's range. Exposing fewer values lets onnxruntime
keep more of its fusions. coverage: all (or a tensorrt_cache) measures every activation.`,
	NewOptions: func() any {
		return &Options{Method: calibrate.MinMax, Percentile: calibrate.DefaultPercentile, Tensors: TensorSelection{},
			MaxPassBytes: 1 << 30, Coverage: CoverageQuantize}
	},
	ResultType: reflect.TypeFor[*results.Calibration](),
	Run:        run,
}

// Coverage says which activations a calibration measures when no tensors are listed.
type Coverage string

// The coverages.
const (
	// CoverageQuantize measures the ranges the quantize stage reads.
	CoverageQuantize Coverage = calibrate.CoverageQuantize
	// CoverageAll measures every float activation.
	CoverageAll Coverage = calibrate.CoverageAll
)

// Values lists the coverages.
func (Coverage) Values() []string { return []string{calibrate.CoverageQuantize, calibrate.CoverageAll} }

// Options are the calibrate stage's options.
type Options struct {
	// Dataset names the calibration dataset. Required.
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Method chooses each range: minmax (the observed extremes), percentile (the tails
	// of the histogram cut at percentile), entropy (TensorRT's KL-divergence threshold)
	// or mse (the clipping threshold with the least quantization error).
	Method calibrate.Method `yaml:"method" json:"method"`
	// Percentile is the percentile kept by method percentile.
	Percentile float64 `yaml:"percentile" json:"percentile"`
	// Symmetric makes every range symmetric around zero.
	Symmetric bool `yaml:"symmetric" json:"symmetric"`
	// MovingAverage, for method minmax, is the constant c of a moving average of the
	// per-batch minima and maxima (ema = c*batch + (1-c)*ema; onnxruntime's default c is
	// 0.01); 0 takes the plain extremes.
	MovingAverage float64 `yaml:"moving_average" json:"moving_average,omitempty"`
	// Tensors limits calibration to these tensors (a list of names), or, written all,
	// measures every float activation (as coverage: all); empty, coverage decides.
	Tensors TensorSelection `yaml:"tensors" json:"tensors"`
	// Coverage, when Tensors is empty, is quantize (the activations whose range the
	// quantize stage that reads this table reads with its options; with no such stage,
	// those quantize can read under any options) or all (every float activation, as a
	// TensorRT cache needs: TensorRTCache implies it). Copies of another value are
	// aliases either way.
	Coverage Coverage `yaml:"coverage" json:"coverage"`
	// Cache is a JSON file the table is saved to and reused from when the model, dataset
	// and method are unchanged; {name} and {dir} are replaced per model.
	Cache string `yaml:"cache" json:"cache,omitempty" onnxpipe:"path,writes"`
	// TensorRTCache, when set, also writes the table in TensorRT's calibration-cache text
	// format to this path.
	TensorRTCache string `yaml:"tensorrt_cache" json:"tensorrt_cache,omitempty" onnxpipe:"path,writes"`
	// MaxPassBytes bounds the extra outputs of one inference pass; above it the tensors are
	// split into groups, one pass over the data each.
	MaxPassBytes int64 `yaml:"max_pass_bytes" json:"max_pass_bytes"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if o.Dataset == "" {
		ps.Add("dataset", "is required: name one of the config's datasets")
	}
	if o.Percentile <= 50 || o.Percentile > 100 {
		ps.Add("percentile", "%g: between 50 and 100", o.Percentile)
	}
	if o.MovingAverage < 0 || o.MovingAverage >= 1 {
		ps.Add("moving_average", "%g: 0 (off) or a constant in (0, 1)", o.MovingAverage)
	}
	if o.MaxPassBytes < 1<<20 {
		ps.Add("max_pass_bytes", "%d: at least 1 MiB (1048576)", o.MaxPassBytes)
	}
	return ps.Err()
}

// Warnings reports options the method ignores.
func (o *Options) Warnings() []string {
	var w []string
	if o.Method != calibrate.Percentile && o.Percentile != calibrate.DefaultPercentile {
		w = append(w, fmt.Sprintf("percentile is ignored with method %s", o.Method))
	}
	if o.Method != calibrate.MinMax && o.MovingAverage != 0 {
		w = append(w, fmt.Sprintf("moving_average is ignored with method %s", o.Method))
	}
	return w
}

var (
	_ pipeline.Validator = (*Options)(nil)
	_ pipeline.Warner    = (*Options)(nil)
)

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	spec, err := p.DatasetSpec(o.Dataset)
	if err != nil {
		return nil, err
	}
	m := p.Model()
	fingerprint, err := dataset.Fingerprint(spec)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: %w", o.Dataset, err)
	}
	coverage := o.coverage()
	tensors, aliases, err := measure(p.Requests, m, coverage, o.Tensors.Names)
	if err != nil {
		return nil, err
	}
	if t := o.cached(p, m.GraphHash(), fingerprint, coverage, tensors, aliases); t != nil {
		return &results.Calibration{Table: t, Dataset: o.Dataset}, nil
	}
	ds, err := p.Dataset(o.Dataset, dataset.InputsOf(m))
	if err != nil {
		return nil, err
	}
	stats, err := collect.Run(p.Ctx, m, ds, collect.Options{
		Method: o.Method, Percentile: o.Percentile, Symmetric: o.Symmetric, MovingAverage: o.MovingAverage,
		Tensors: tensors, Aliases: aliases, MaxPassBytes: o.MaxPassBytes, Threads: p.Runtime().Threads,
		Optimization: p.Runtime().Optimization, Progress: p.Progress,
	})
	if err != nil {
		return nil, err
	}
	t := stats.Table
	t.Dataset = fingerprint
	t.Coverage = coverage
	t.NotFloat = stats.NonFloat
	if err := o.write(p, t); err != nil {
		return nil, err
	}
	record(p, stats, len(tensors))
	return &results.Calibration{Table: t, Dataset: o.Dataset}, nil
}

// cached returns the table of the cache file when it was made on this graph and
// dataset with these options and holds every value this calibration measures; nil
// otherwise (with a note saying why).
func (o *Options) cached(p *pipeline.Pass, hash, fingerprint, coverage string, tensors []string, aliases map[string]string) *calibrate.Table {
	if o.Cache == "" {
		return nil
	}
	t, err := calibrate.LoadTable(o.Cache)
	switch {
	case err == nil && t.GraphSHA256 == hash && t.Dataset == fingerprint && t.Method == string(o.Method) &&
		t.Symmetric == o.Symmetric && t.MovingAverage == o.MovingAverage && (o.Method != calibrate.Percentile || t.Percentile == o.Percentile) &&
		covers(t, coverage, tensors, aliases):
		p.Note("calibration cache hit: %s (%d tensors, %d samples)", o.Cache, len(t.Tensors), t.Samples)
		p.Metric("cache_hit", 1, "")
		p.AddArtifact("calibration", o.Cache)
		return t
	case err == nil:
		p.Note("calibration cache %s is for another model, dataset or method: recalibrating", o.Cache)
	case !os.IsNotExist(err):
		p.Warn("calibration cache ignored: %v", err)
	}
	return nil
}

// write saves the table to the cache and the TensorRT cache the options name.
func (o *Options) write(p *pipeline.Pass, t *calibrate.Table) error {
	if o.Cache != "" {
		if err := os.MkdirAll(filepath.Dir(o.Cache), 0o755); err != nil {
			return err
		}
		if err := t.Save(o.Cache); err != nil {
			return err
		}
		p.AddArtifact("calibration", o.Cache)
		p.Note("calibration table saved to %s", o.Cache)
	}
	if o.TensorRTCache != "" {
		if err := writeTensorRT(t, o.TensorRTCache); err != nil {
			return err
		}
	}
	return nil
}

// record puts the calibration's figures and the histograms worth a look in the report.
func record(p *pipeline.Pass, stats *collect.Stats, measured int) {
	t := stats.Table
	p.Metric("tensors_measured", float64(measured), "")
	p.Metric("tensors", float64(len(t.Tensors)), "")
	p.Metric("samples", float64(t.Samples), "")
	p.Metric("passes", float64(stats.Passes), "")
	p.Metric("peak_heap", float64(stats.PeakHeapBytes)/(1<<20), "MiB")
	p.Metric("seconds", stats.Seconds, "s")
	for _, name := range stats.NonFinite {
		p.Warn("tensor %q had NaN or Inf values; they were left out of its range", name)
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
}

// coverage is what the table must hold: listed tensors, every activation (also for a
// TensorRT cache), or those quantize reads.
func (o *Options) coverage() string {
	switch {
	case len(o.Tensors.Names) > 0:
		return calibrate.CoverageListed
	case o.Coverage == CoverageAll || o.Tensors.All || o.TensorRTCache != "":
		return calibrate.CoverageAll
	}
	return calibrate.CoverageQuantize
}

// measure lists the values to expose and the aliases to record: the listed tensors;
// every activation (coverage all); or, for coverage quantize, the ranges the readers of
// the table ask for (results.RangeRequest: a Conv's output that a folded Relu replaces is
// left out), or, when nothing reads it in this chain, the ranges quantize reads under any
// options.
func measure(requests []any, m *onnxio.Model, coverage string, listed []string) ([]string, map[string]string, error) {
	switch coverage {
	case calibrate.CoverageListed:
		return listed, nil, nil
	case calibrate.CoverageAll:
		t, a := quantize.CalibrationTensors(m, true)
		return t, a, nil
	}
	var tensors []string
	aliases := map[string]string{}
	asked := false
	for _, r := range requests {
		req, ok := r.(results.RangeRequest)
		if !ok {
			continue
		}
		t, a, err := req(m)
		if err != nil {
			return nil, nil, fmt.Errorf("the ranges the quantize stage reads: %w", err)
		}
		asked = true
		for _, n := range t {
			if !slices.Contains(tensors, n) {
				tensors = append(tensors, n)
			}
		}
		for k, v := range a {
			aliases[k] = v
		}
	}
	if !asked {
		tensors, aliases = quantize.CalibrationTensors(m, false)
	}
	if len(tensors) == 0 { // nothing quantize reads: measure every activation
		tensors, aliases = quantize.CalibrationTensors(m, true)
	}
	return tensors, aliases, nil
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

// Package calibrate is the `calibrate` stage: activation ranges collected on real data.
package calibrate

import (
	"fmt"
	"os"
	"path/filepath"
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

By default only the activations whose range quantize can read are measured (coverage:
quantize): the inputs and outputs of the ops it quantizes, under any of its options.
Values that hold exactly another value's data (outputs of Reshape, Flatten, Squeeze,
Unsqueeze, Transpose, Identity, DepthToSpace, SpaceToDepth) are never exposed: the table
records them as aliases with their source's range. Exposing fewer values lets onnxruntime
keep more of its fusions. coverage: all (or a tensorrt_cache) measures every activation.`,
	NewOptions: func() any {
		return &Options{Method: "minmax", Percentile: 99.999, Tensors: []string{}, MovingAverage: 0, MaxPassBytes: 1 << 30, Coverage: calibrate.CoverageQuantize}
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
	// Tensors limits calibration to these tensors; empty means every float activation.
	Tensors []string `yaml:"tensors" json:"tensors"`
	// Coverage, when Tensors is empty, is quantize (the activations whose range quantize
	// can read; the default) or all (every float activation, as a TensorRT cache needs:
	// TensorRTCache implies it). Copies of another value are aliases either way.
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
	if o.Cache != "" {
		t, err := calibrate.LoadTable(o.Cache)
		switch {
		case err == nil && t.GraphSHA256 == hash && t.Dataset == fingerprint && t.Method == string(method) &&
			t.Symmetric == o.Symmetric && t.MovingAverage == o.MovingAverage && (method != calibrate.Percentile || t.Percentile == o.Percentile) &&
			covers(t, coverage, o.Tensors):
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
	tensors, aliases := o.Tensors, map[string]string(nil)
	if len(tensors) == 0 {
		tensors, aliases = quantize.CalibrationTensors(m, coverage == calibrate.CoverageAll)
		if len(tensors) == 0 { // nothing quantize reads: measure every activation
			tensors, aliases = quantize.CalibrationTensors(m, true)
		}
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
	case len(o.Tensors) > 0:
		return calibrate.CoverageListed
	case o.Coverage == calibrate.CoverageAll || o.TensorRTCache != "":
		return calibrate.CoverageAll
	}
	return calibrate.CoverageQuantize
}

// covers reports whether cached table t holds what a calibration of this coverage (and
// these listed tensors) would.
func covers(t *calibrate.Table, coverage string, listed []string) bool {
	full := t.Coverage == "" || t.Coverage == calibrate.CoverageAll
	switch coverage {
	case calibrate.CoverageAll:
		return full
	case calibrate.CoverageQuantize:
		return full || t.Coverage == calibrate.CoverageQuantize
	}
	for _, n := range listed {
		if t.Tensors[n] == nil {
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

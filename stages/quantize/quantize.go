// Package quantize is the `quantize` stage: int8 QDQ (static), dynamic quantization, or
// onnxruntime's QOperator form.
package quantize

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	q "github.com/onnxpipe/onnxpipe/quantize"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/stages/internal/results"
	"github.com/onnxpipe/onnxpipe/verify"
)

// Stage is the quantize stage.
var Stage = &pipeline.Stage{
	Name: "quantize",
	Doc: `Quantize the model to int8.

mode static rewrites the graph into QuantizeLinear/DequantizeLinear (QDQ) form from the
calibration table of the calibrate stage before it (made on this same graph): int8
weights per output channel behind a DequantizeLinear, int32 biases, calibrated Q/DQ on
activations, Relu/Clip folded into ranges, data-movement ops sharing their input's
parameters, placed so that onnxruntime fuses the groups into QLinearConv, QLinearMatMul,
QGemm, QLinearAdd and friends. The stage then opens the result in onnxruntime, runs it on
a few calibration samples, and reports which quantized Conv/MatMul/Gemm nodes became
int8 kernels. mode dynamic needs no calibration: MatMul and Gemm weights become int8
and activations are quantized at run time (DynamicQuantizeLinear + MatMulInteger).
format qoperator writes onnxruntime's fused QLinear* graph instead of QDQ (it then runs
in onnxruntime only). profile tensorrt places Q/DQ as TensorRT's parser wants them.`,
	NewOptions: func() any { return defaults() },
	Requires:   requires,
	ResultType: reflect.TypeFor[*results.Quantization](),
	Mutates:    pipeline.Always,
	Run:        run,
}

// requires asks, in mode static, for the calibration of this same graph, and tells the
// calibrate stage which ranges these options read.
func requires(opts any) []pipeline.Requirement {
	o := opts.(*Options)
	if o.Mode != Static {
		return nil
	}
	qo := o.quantizeOptions()
	read := func(m *onnxio.Model) ([]string, map[string]string, error) { return q.CalibrationTensorsFor(m, qo) }
	return []pipeline.Requirement{{Result: reflect.TypeFor[*results.Calibration](), SameModel: true,
		Request: results.RangeRequest(read)}}
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	m := p.Model()
	if what := quantizedAs(m); what != "" {
		if o.IfQuantized == "skip" {
			p.Warn("the model is already %s: passed through unchanged (if_quantized: skip)", what)
			return &results.Quantization{Result: &q.Result{Quantized: map[string]int{}}}, nil
		}
		return nil, fmt.Errorf("the model is already quantized (%s); quantize a float model, or set if_quantized: skip", what)
	}
	if o.ReduceRange == "auto" && o.ReduceRange.on(o.Profile) {
		p.Note("reduce_range auto: 7-bit weights, as this CPU (x86-64 without VNNI) saturates onnxruntime's int8 products with full-range weights; set reduce_range: false for a deployment CPU with VNNI")
	}
	qz := &quantizer{opts: o, runtime: p.Runtime()}
	if cal, ok := pipeline.Result[*results.Calibration](p); ok {
		qz.table = cal.Table
		qz.samples = func(inputs []dataset.InputInfo) (*dataset.Dataset, error) { return p.Dataset(cal.Dataset, inputs) }
	}
	out, res, err := qz.apply(p.Ctx, m, nil)
	if err != nil {
		return nil, err
	}
	if o.Format == QOperator {
		p.Note("format qoperator: the graph is onnxruntime's optimized form (QLinear* and com.microsoft ops); it runs in onnxruntime only")
	}
	record(p, res, m, out)
	if len(res.SampleSQNR) > 0 {
		p.Metric("check_sqnr_db", float64(slices.Min(slices.Collect(maps.Values(res.SampleSQNR)))), "dB")
	}
	if res.NodesQuantized() == 0 {
		why := "the model has no node of a supported op type (" + strings.Join(q.SupportedOps(), ", ") + ")"
		if o.Mode == Dynamic {
			why = "the model has no " + strings.Join(q.DynamicOps(), " or ") + " node with a constant weight (dynamic mode quantizes those only; a conv net wants mode: static after a calibrate stage)"
		}
		if len(res.Skipped) > 0 {
			why = "every candidate was left in float: " + strings.Join(res.Skipped, "; ")
		}
		if !o.AllowNone {
			return nil, fmt.Errorf("no node was quantized: %s; change op_types or exclude_nodes, or set allow_none: true to pass the float model on", why)
		}
		p.Warn("no node was quantized: %s", why)
	}
	if reasons := floor(o, res.SampleSQNR); len(reasons) > 0 {
		if judgedLater(p.Requests) {
			p.Warn("%s; the verify with auto_exclude after this stage judges", strings.Join(reasons, "; "))
		} else {
			return res, &pipeline.Rejected{Reasons: append(reasons, "the int8 model does not compute what the float model does: try another calibration method, exclude_nodes, a verify with auto_exclude, or min_sqnr_db: 0 to keep it")}
		}
	}
	p.SetModel(out)
	return res, nil
}

// judgedLater reports whether a later stage asked to judge the quantization itself.
func judgedLater(requests []any) bool {
	for _, r := range requests {
		if _, ok := r.(results.JudgedLater); ok {
			return true
		}
	}
	return false
}

// quantizedAs says how m is quantized already ("" for a float32 model).
func quantizedAs(m *onnxio.Model) string {
	s := onnxio.Summarize(m)
	switch {
	case s.Float16:
		return "float16"
	case s.Quantization != "none":
		return s.Quantization
	}
	return ""
}

// quantizer quantizes with one entry's options and calibration; its apply is the
// result's Requantize.
type quantizer struct {
	opts    *Options
	runtime pipeline.Runtime
	table   *calibrate.Table
	// samples opens the calibration dataset for the check run (nil: none).
	samples func([]dataset.InputInfo) (*dataset.Dataset, error)
}

// apply quantizes a copy of m with exclude kept in float besides the options' own
// exclusions, opens the result in onnxruntime (for the fusion report, and the graph of
// format qoperator) and runs it on a few calibration samples.
func (z *quantizer) apply(ctx context.Context, m *onnxio.Model, exclude []string) (*onnxio.Model, *results.Quantization, error) {
	qo := z.opts.quantizeOptions()
	qo.ExcludeNodes = append(slices.Clone(qo.ExcludeNodes), exclude...)
	out := m.Clone()
	var res *q.Result
	var err error
	switch z.opts.Mode {
	case Static:
		if z.table == nil {
			return nil, nil, fmt.Errorf("no calibration table: put a calibrate stage before quantize")
		}
		if h := out.GraphHash(); z.table.GraphSHA256 != h {
			return nil, nil, fmt.Errorf("the calibration table was made on another graph (%.12s, this one is %.12s): put calibrate right before quantize, after every stage that changes the model", z.table.GraphSHA256, h)
		}
		res, err = q.Static(out, z.table, qo)
	default:
		res, err = q.Dynamic(out, qo)
	}
	if err != nil {
		return nil, nil, err
	}
	fusion, optimized, err := fusionOf(z.runtime, res, out)
	if err != nil {
		return nil, nil, fmt.Errorf("onnxruntime cannot open the quantized model: %w", err)
	}
	if z.opts.Format == QOperator {
		out = optimized
	}
	if err := onnxio.Check(out); err != nil {
		return nil, nil, err
	}
	sqnr, err := z.check(ctx, m, out)
	if err != nil {
		return nil, nil, fmt.Errorf("the quantized model does not run: %w", err)
	}
	return out, &results.Quantization{Result: res, Fusion: fusion, SampleSQNR: sqnr, Exclude: qo.ExcludeNodes, Requantize: z.apply}, nil
}

// check runs the quantized model on the first CheckSamples calibration samples, and the
// float model beside it: the SQNR of each float output (nil when no samples are run).
func (z *quantizer) check(ctx context.Context, float, quantized *onnxio.Model) (map[string]report.Float, error) {
	if z.opts.CheckSamples == 0 || z.samples == nil {
		return nil, nil
	}
	ds, err := z.samples(dataset.InputsOf(quantized))
	if err != nil {
		return nil, err
	}
	return verify.SampleCheck(ctx, float, quantized, ds, z.opts.CheckSamples, ort.Options{Threads: z.runtime.Threads, Optimization: z.runtime.Optimization})
}

// floor is the verdict of MinSQNRdB on the check samples' SQNR: the reasons the result
// falls short, in output order.
func floor(o *Options, sqnr map[string]report.Float) []string {
	var reasons []string
	for _, name := range slices.Sorted(maps.Keys(sqnr)) {
		if db := float64(sqnr[name]); o.MinSQNRdB > 0 && db < o.MinSQNRdB {
			reasons = append(reasons, fmt.Sprintf("output %q is %.1f dB from the float model on %d calibration samples, under min_sqnr_db %g", name, db, o.CheckSamples, o.MinSQNRdB))
		}
	}
	return reasons
}

// removeStaleFusionDirs removes the fusionOf folders of processes that no longer run
// (killed before their deferred clean-up): onnxpipe-fusion-<pid>-<random> in the
// temporary folder.
func removeStaleFusionDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "onnxpipe-fusion-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "onnxpipe-fusion-%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// fusionOf opens m in onnxruntime with its optimized graph saved, and compares.
func fusionOf(rt pipeline.Runtime, res *q.Result, m *onnxio.Model) (*q.Fusion, *onnxio.Model, error) {
	removeStaleFusionDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("onnxpipe-fusion-%d-", os.Getpid()))
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "optimized.onnx")
	data, err := m.Bytes()
	if err != nil {
		return nil, nil, err
	}
	level := rt.Optimization
	if level == "" || level == "all" {
		level = "extended" // the QDQ fusions, without layout-specific (NCHWc) rewrites
	}
	s, err := ort.NewSession(data, ort.Options{Threads: rt.Threads, Optimization: level, OptimizedModelPath: path})
	if err != nil {
		return nil, nil, err
	}
	s.Close()
	opt, err := onnxio.Load(path)
	if err != nil {
		return nil, nil, err
	}
	opt.Path, opt.Dir = "", ""
	return q.FusionReport(res, m, opt), opt, nil
}

// record puts what the quantization did into the stage's report: counts, fused share,
// size ratio, notes and warnings.
func record(p *pipeline.Pass, r *results.Quantization, before, after *onnxio.Model) {
	total := 0
	var parts []string
	for op, n := range r.Quantized {
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", op, n))
	}
	p.Metric("nodes_quantized", float64(total), "")
	p.Metric("activations_quantized", float64(r.ActivationsQuantized), "")
	p.Metric("weights_quantized", float64(r.WeightsQuantized), "")
	if f := r.Fusion; f != nil {
		p.Metric("int8_kernel_ratio", f.Ratio, "")
		if len(f.Float) > 0 {
			p.Warn("quantized nodes that onnxruntime still runs in float: %s", strings.Join(f.Float, ", "))
		}
	}
	if b, err := before.Bytes(); err == nil {
		if a, err := after.Bytes(); err == nil {
			p.Metric("size_ratio", float64(len(a))/float64(len(b)), "x")
		}
	}
	if len(parts) > 0 {
		p.Note("quantized: %s", strings.Join(sortedCopy(parts), ", "))
	}
	for _, s := range r.Skipped {
		p.Note("left in float: %s", s)
	}
	for _, n := range r.BiasAdjusted {
		p.Warn("weight scale raised so the int32 bias fits: %s", n)
	}
	for _, n := range r.Notes {
		p.Note("%s", n)
	}
}

// sortedCopy returns s sorted (in place) for joining.
func sortedCopy(s []string) []string {
	sort.Strings(s)
	return s
}

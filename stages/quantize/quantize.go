// Package quantize is the `quantize` stage: int8 QDQ (static), dynamic quantization, or
// onnxruntime's QOperator form.
package quantize

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	q "github.com/onnxpipe/onnxpipe/quantize"
	calibstage "github.com/onnxpipe/onnxpipe/stages/calibrate"
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
	NewOptions: func() any {
		return &Options{Mode: "static", Format: "qdq", Profile: "cpu", ActivationType: "uint8", WeightType: "int8",
			WeightSymmetric: true, PerChannel: true, IfQuantized: "error", CheckSamples: 4,
			OpTypes: []string{}, ExcludeNodes: []string{}, Overrides: map[string]q.Override{}}
	},
	Requires: func(opts any) []*pipeline.Stage {
		if opts.(*Options).Mode == "static" {
			return []*pipeline.Stage{calibstage.Stage}
		}
		return nil
	},
	Mutates: true,
	Run:     run,
}

func init() { pipeline.Register(Stage) }

// Options are the quantize stage's options.
type Options struct {
	// Mode is static (QDQ from a calibration of this same graph) or dynamic (no calibration).
	Mode string `yaml:"mode" json:"mode"`
	// Format is qdq (portable ONNX) or qoperator (onnxruntime's fused QLinear* ops).
	Format string `yaml:"format" json:"format"`
	// Profile is cpu, or tensorrt: symmetric int8 activations, Q/DQ pairs on float weights,
	// float biases, a Q/DQ pair per consumer.
	Profile string `yaml:"profile" json:"profile"`
	// ActivationType is the activations' type: uint8 or int8 (int16/uint16 for overrides).
	ActivationType string `yaml:"activation_type" json:"activation_type"`
	// WeightType is the weights' type: int8 or uint8.
	WeightType string `yaml:"weight_type" json:"weight_type"`
	// ActivationSymmetric makes activation ranges symmetric around zero.
	ActivationSymmetric bool `yaml:"activation_symmetric" json:"activation_symmetric"`
	// WeightSymmetric makes weight ranges symmetric around zero (zero point 0 for int8).
	WeightSymmetric bool `yaml:"weight_symmetric" json:"weight_symmetric"`
	// PerChannel gives each output channel of a weight its own scale.
	PerChannel bool `yaml:"per_channel" json:"per_channel"`
	// ReduceRange quantizes weights to 7 bits, for CPUs without VNNI whose u8s8 dot
	// products saturate.
	ReduceRange bool `yaml:"reduce_range" json:"reduce_range"`
	// OpTypes limits quantization to these op types; empty means every supported type.
	OpTypes []string `yaml:"op_types" json:"op_types"`
	// ExcludeNodes are node names or glob patterns (path.Match) kept in float.
	ExcludeNodes []string `yaml:"exclude_nodes" json:"exclude_nodes"`
	// Overrides maps a tensor name to {type, symmetric, min, max}.
	Overrides map[string]q.Override `yaml:"overrides" json:"overrides"`
	// IfQuantized says what to do with a model that is already quantized or float16:
	// error, or skip (pass it through unchanged with a note).
	IfQuantized string `yaml:"if_quantized" json:"if_quantized"`
	// CheckSamples is how many calibration samples the result is run on before the stage
	// returns (0: only open it).
	CheckSamples int `yaml:"check_samples" json:"check_samples"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Mode != "static" && o.Mode != "dynamic" {
		return fmt.Errorf("mode %q: static or dynamic", o.Mode)
	}
	if o.Format != "qdq" && o.Format != "qoperator" {
		return fmt.Errorf("format %q: qdq or qoperator", o.Format)
	}
	if o.IfQuantized != "error" && o.IfQuantized != "skip" {
		return fmt.Errorf("if_quantized %q: error or skip", o.IfQuantized)
	}
	if o.Mode == "dynamic" && o.Profile == q.ProfileTensorRT {
		return fmt.Errorf("profile tensorrt needs mode static")
	}
	if o.CheckSamples < 0 {
		return fmt.Errorf("check_samples cannot be negative")
	}
	qo, err := o.quantizeOptions()
	if err != nil {
		return err
	}
	return qo.Validate()
}

// Warnings points out options the chosen mode ignores.
func (o *Options) Warnings() []string {
	var w []string
	if o.Mode == "dynamic" {
		if o.ActivationType != "uint8" || o.ActivationSymmetric {
			w = append(w, "activation_type and activation_symmetric are ignored by mode dynamic (DynamicQuantizeLinear is uint8, asymmetric)")
		}
		if len(o.Overrides) > 0 {
			w = append(w, "overrides are ignored by mode dynamic")
		}
	}
	if o.Profile == q.ProfileTensorRT && (o.ActivationType != "uint8" || !o.WeightSymmetric) {
		w = append(w, "profile tensorrt always uses symmetric int8 activations and weights")
	}
	return w
}

var (
	_ pipeline.Validator = (*Options)(nil)
	_ pipeline.Warner    = (*Options)(nil)
)

func (o *Options) quantizeOptions() (q.Options, error) {
	at, err := onnxio.ParseDataType(o.ActivationType)
	if err != nil {
		return q.Options{}, fmt.Errorf("activation_type: %v", err)
	}
	wt, err := onnxio.ParseDataType(o.WeightType)
	if err != nil {
		return q.Options{}, fmt.Errorf("weight_type: %v", err)
	}
	return q.Options{ActivationType: at, WeightType: wt, ActivationSymmetric: o.ActivationSymmetric,
		WeightSymmetric: o.WeightSymmetric, PerChannel: o.PerChannel, ReduceRange: o.ReduceRange,
		OpTypes: o.OpTypes, ExcludeNodes: o.ExcludeNodes, Overrides: o.Overrides, Profile: o.Profile}, nil
}

// CalibrationOptions returns the options Static reads the calibration table with, so
// that the calibrate stage before this one measures those ranges only; ok is false in
// mode dynamic, which reads no table.
func (o *Options) CalibrationOptions() (q.Options, bool) {
	if o.Mode != "static" {
		return q.Options{}, false
	}
	qo, err := o.quantizeOptions()
	return qo, err == nil
}

var _ calibstage.RangeReader = (*Options)(nil)

// Result is what the stage returns to later stages (verify's auto_exclude reads it).
type Result struct {
	*q.Result
	Fusion *q.Fusion `json:"fusion,omitempty"`
	// Options are the options used, so that a stage can quantize again with more nodes
	// excluded.
	Options *Options `json:"-"`
	// Before is the model as it was before this stage.
	Before *onnxio.Model `json:"-"`
}

// ReportData is the part of the result the report shows.
func (r *Result) ReportData() any { return r }

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	if s := onnxio.Summarize(p.Job.Model); s.Quantization != "none" || s.Float16 {
		what := s.Quantization
		if s.Float16 {
			what = "float16"
		}
		if o.IfQuantized == "skip" {
			p.Warn("the model is already %s: passed through unchanged (if_quantized: skip)", what)
			return &Result{Result: &q.Result{Quantized: map[string]int{}}, Options: o, Before: p.Job.Model}, nil
		}
		return nil, fmt.Errorf("the model is already quantized (%s); quantize a float model, or set if_quantized: skip", what)
	}
	// Apply works on a copy: the model before quantization stays as it is, for verify's
	// auto_exclude to quantize it again.
	return Apply(p, o, p.Job.Model)
}

// Apply quantizes a copy of the float model before with options o and makes it the job's
// model; verify's accuracy-aware mode calls it again with more nodes excluded.
func Apply(p *pipeline.Pass, o *Options, before *onnxio.Model) (*Result, error) {
	qo, err := o.quantizeOptions()
	if err != nil {
		return nil, err
	}
	m := before.Clone()
	var res *q.Result
	var samples *calibrate.Table
	switch o.Mode {
	case "static":
		table, ok := p.ResultOf[calibstage.Stage].(*calibrate.Table)
		if !ok || table == nil {
			return nil, fmt.Errorf("no calibration table: put a calibrate stage before quantize")
		}
		if h := m.GraphHash(); table.GraphSHA256 != h {
			return nil, fmt.Errorf("the calibration table was made on another graph (%.12s, this one is %.12s): put calibrate right before quantize, after every stage that changes the model", table.GraphSHA256, h)
		}
		samples = table
		res, err = q.Static(m, table, qo)
	default:
		res, err = q.Dynamic(m, qo)
	}
	if err != nil {
		return nil, err
	}
	out := &Result{Result: res, Options: o, Before: before}
	fusion, optimized, err := fusionOf(p, res, m)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime cannot open the quantized model: %w", err)
	}
	out.Fusion = fusion
	if o.Format == "qoperator" {
		m = optimized
		p.Note("format qoperator: the graph is onnxruntime's optimized form (QLinear* and com.microsoft ops); it runs in onnxruntime only")
	}
	if err := onnxio.Check(m); err != nil {
		return nil, err
	}
	if o.CheckSamples > 0 && samples != nil {
		if err := calibstage.RunSamples(p, m, o.CheckSamples); err != nil {
			return nil, fmt.Errorf("the quantized model does not run: %w", err)
		}
	}
	report(p, out, before, m)
	p.SetModel(m)
	return out, nil
}

// fusionOf opens m in onnxruntime with its optimized graph saved, and compares.
func fusionOf(p *pipeline.Pass, res *q.Result, m *onnxio.Model) (*q.Fusion, *onnxio.Model, error) {
	dir, err := os.MkdirTemp("", "onnxpipe-fusion")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "optimized.onnx")
	data, err := m.Bytes()
	if err != nil {
		return nil, nil, err
	}
	level := p.Job.Runtime.Optimization
	if level == "" || level == "all" {
		level = "extended" // the QDQ fusions, without layout-specific (NCHWc) rewrites
	}
	s, err := ort.NewSession(data, ort.Options{Threads: p.Job.Runtime.Threads, Optimization: level, OptimizedModelPath: path})
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

func report(p *pipeline.Pass, r *Result, before, after *onnxio.Model) {
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

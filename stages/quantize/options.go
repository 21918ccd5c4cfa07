package quantize

import (
	"errors"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
	q "github.com/onnxpipe/onnxpipe/quantize"
)

// Options are the quantize stage's options.
type Options struct {
	// Mode is static (QDQ from a calibration of this same graph) or dynamic (no
	// calibration: activations are quantized at run time).
	Mode Mode `yaml:"mode" json:"mode"`
	// Format is qdq (portable ONNX) or qoperator (onnxruntime's fused QLinear* ops).
	Format Format `yaml:"format" json:"format"`
	// Profile is cpu, or tensorrt: symmetric int8 activations, Q/DQ pairs on float weights,
	// float biases, a Q/DQ pair per consumer.
	Profile Profile `yaml:"profile" json:"profile"`
	// ActivationType is the activations' type: uint8 or int8 (int16 and uint16 keep more
	// precision where onnxruntime has kernels for them).
	ActivationType ActivationType `yaml:"activation_type" json:"activation_type"`
	// WeightType is the weights' type: int8 or uint8.
	WeightType WeightType `yaml:"weight_type" json:"weight_type"`
	// ActivationSymmetric makes activation ranges symmetric around zero.
	ActivationSymmetric bool `yaml:"activation_symmetric" json:"activation_symmetric"`
	// WeightSymmetric makes weight ranges symmetric around zero (zero point 0 for int8).
	WeightSymmetric bool `yaml:"weight_symmetric" json:"weight_symmetric"`
	// PerChannel gives each output channel of a weight its own scale.
	PerChannel bool `yaml:"per_channel" json:"per_channel"`
	// ReduceRange quantizes weights to 7 bits, for CPUs whose int8 kernels in onnxruntime
	// saturate full-range weights (x86-64 without VNNI: AVX2, AVX-512 before Cascade
	// Lake, AMD before Zen 4): true, false, or auto (true with profile cpu when the CPU
	// running onnxpipe is one of those, where verify would measure a saturated model).
	// Set it for the CPU the model will be deployed on when that is another one.
	ReduceRange ReduceRange `yaml:"reduce_range" json:"reduce_range"`
	// OpTypes limits quantization to these op types; empty means every supported type.
	OpTypes []string `yaml:"op_types" json:"op_types"`
	// ExcludeNodes are node names or glob patterns (path.Match) kept in float.
	ExcludeNodes []string `yaml:"exclude_nodes" json:"exclude_nodes"`
	// Overrides maps a tensor name to {type, symmetric, min, max}.
	Overrides map[string]q.Override `yaml:"overrides" json:"overrides"`
	// IfQuantized says what to do with a model that is already quantized or float16:
	// error, or skip (pass it through unchanged with a warning).
	IfQuantized IfQuantized `yaml:"if_quantized" json:"if_quantized"`
	// CheckSamples is how many calibration samples the result is run on before the stage
	// returns (0: only open it).
	CheckSamples int `yaml:"check_samples" json:"check_samples"`
	// MinSQNRdB is the verdict without thresholds: an output of the quantized model that
	// is less than this many dB from the float model's on the check samples rejects the
	// job (15 dB: an error 18% of the output's RMS; the int8 models that keep their task
	// measure 30-45 dB, broken ones 0-11). 0 turns it off; a verify with auto_exclude
	// after this stage judges instead (the floor is then a warning).
	MinSQNRdB float64 `yaml:"min_sqnr_db" json:"min_sqnr_db"`
	// AllowNone lets a model through in which no node could be quantized (every supported
	// node excluded, skipped or absent), with a warning; by default that fails the job, as
	// the "quantized" artifact would be the float model.
	AllowNone bool `yaml:"allow_none" json:"allow_none"`
}

// Mode is how the stage quantizes.
type Mode string

// The modes.
const (
	Static  Mode = "static"
	Dynamic Mode = "dynamic"
)

// Values lists the modes.
func (Mode) Values() []string { return []string{string(Static), string(Dynamic)} }

// Format is the form of the quantized graph.
type Format string

// The formats.
const (
	QDQ       Format = "qdq"
	QOperator Format = "qoperator"
)

// Values lists the formats.
func (Format) Values() []string { return []string{string(QDQ), string(QOperator)} }

// Profile is where the QDQ graph will run.
type Profile string

// Values lists the profiles.
func (Profile) Values() []string { return []string{q.ProfileCPU, q.ProfileTensorRT} }

// IfQuantized is what the stage does with a model that is quantized already.
type IfQuantized string

// Values lists the choices.
func (IfQuantized) Values() []string { return []string{"error", "skip"} }

// ActivationType is the integer type of quantized activations.
type ActivationType string

// Values lists the activation types.
func (ActivationType) Values() []string { return []string{"uint8", "int8", "uint16", "int16"} }

// WeightType is the integer type of quantized weights.
type WeightType string

// Values lists the weight types.
func (WeightType) Values() []string { return []string{"int8", "uint8"} }

// ReduceRange says whether weights are quantized to 7 bits: auto, true or false.
type ReduceRange string

// Values lists the settings of reduce_range.
func (ReduceRange) Values() []string { return []string{"auto", "true", "false"} }

// on resolves the setting for a profile on this machine.
func (r ReduceRange) on(profile Profile) bool {
	switch r {
	case "true":
		return true
	case "auto":
		return profile == q.ProfileCPU && q.HostSaturatesU8S8()
	}
	return false
}

// dataType is the ONNX type an integer type name stands for.
func dataType(name string) onnxio.DataType {
	switch name {
	case "uint8":
		return onnxio.TypeUint8
	case "int16":
		return onnxio.TypeInt16
	case "uint16":
		return onnxio.TypeUint16
	}
	return onnxio.TypeInt8
}

func defaults() *Options {
	return &Options{Mode: Static, Format: QDQ, Profile: q.ProfileCPU, ActivationType: "uint8", WeightType: "int8",
		WeightSymmetric: true, PerChannel: true, IfQuantized: "error", CheckSamples: 4, ReduceRange: "auto", MinSQNRdB: 15,
		OpTypes: []string{}, ExcludeNodes: []string{}, Overrides: map[string]q.Override{}}
}

// Validate checks the options.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if o.Mode == Dynamic && o.Profile == q.ProfileTensorRT {
		ps.Add("profile", "tensorrt needs mode static")
	}
	if o.CheckSamples < 0 {
		ps.Add("check_samples", "%d: cannot be negative", o.CheckSamples)
	}
	if o.MinSQNRdB < 0 {
		ps.Add("min_sqnr_db", "%g: cannot be negative (0 turns the floor off)", o.MinSQNRdB)
	}
	qo := o.quantizeOptions()
	if err := qo.Validate(); err != nil {
		for _, e := range unjoin(err) {
			var oe *q.OptionError
			if errors.As(e, &oe) {
				ps.Add(oe.Option, "%s", oe.Msg)
			} else {
				ps.Add("", "%v", e)
			}
		}
	}
	return ps.Err()
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Warnings points out options the chosen mode ignores.
func (o *Options) Warnings() []string {
	var w []string
	if o.Mode == Dynamic {
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

// quantizeOptions are the options of package quantize these stand for.
func (o *Options) quantizeOptions() q.Options {
	return q.Options{ActivationType: dataType(string(o.ActivationType)), WeightType: dataType(string(o.WeightType)),
		ActivationSymmetric: o.ActivationSymmetric, WeightSymmetric: o.WeightSymmetric, PerChannel: o.PerChannel,
		ReduceRange: o.ReduceRange.on(o.Profile), OpTypes: o.OpTypes, ExcludeNodes: o.ExcludeNodes, Overrides: o.Overrides,
		Profile: string(o.Profile)}
}

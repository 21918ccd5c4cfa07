package quantize

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// Profiles say where the QDQ graph will run.
const (
	// ProfileCPU places Q/DQ for onnxruntime's CPU fusions: int8 weights with a
	// DequantizeLinear, int32 biases, outputs quantized, Relu folded into ranges.
	ProfileCPU = "cpu"
	// ProfileTensorRT places Q/DQ as TensorRT's ONNX parser accepts them: symmetric int8
	// activations on the inputs of quantized ops only, float weights with a Q/DQ pair,
	// float biases, a pair per consumer.
	ProfileTensorRT = "tensorrt"
)

// Options controls Static and Dynamic.
type Options struct {
	ActivationType      onnxio.DataType // TypeUint8 (default) or TypeInt8
	WeightType          onnxio.DataType // TypeInt8 (default) or TypeUint8
	ActivationSymmetric bool
	WeightSymmetric     bool
	PerChannel          bool
	// ReduceRange quantizes weights to 7 bits (int8 [-64, 64], uint8 [0, 127]).
	ReduceRange bool
	// OpTypes limits quantization to these op types (empty: every supported type).
	OpTypes []string
	// ExcludeNodes are node names or path.Match patterns kept in float.
	ExcludeNodes []string
	// Overrides fix the type, symmetry or range of individual tensors.
	Overrides map[string]Override
	// Profile is ProfileCPU (default) or ProfileTensorRT.
	Profile string
}

// Override changes how one tensor is quantized.
type Override struct {
	// Type replaces the activation (or weight) type for this tensor: int8, uint8, int16, uint16.
	Type string `yaml:"type" json:"type,omitempty"`
	// Symmetric forces a symmetric (true) or asymmetric (false) range.
	Symmetric *bool `yaml:"symmetric" json:"symmetric,omitempty"`
	// Min and Max replace the calibrated range.
	Min *float32 `yaml:"min" json:"min,omitempty"`
	Max *float32 `yaml:"max" json:"max,omitempty"`
}

// DefaultOptions are onnxruntime's CPU defaults with per-channel weights, and 7-bit
// weights where this machine's CPU would saturate full-range ones (HostSaturatesU8S8).
func DefaultOptions() Options {
	return Options{ActivationType: onnxio.TypeUint8, WeightType: onnxio.TypeInt8, WeightSymmetric: true,
		PerChannel: true, Profile: ProfileCPU, ReduceRange: HostSaturatesU8S8()}
}

// OptionError is one problem with Options, named by the option (as a config writes
// it: "weight_type", "overrides.x.min").
type OptionError struct {
	Option string
	Msg    string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Msg }

// Validate checks the options and returns every problem, each an *OptionError, joined.
func (o *Options) Validate() error {
	var errs []error
	bad := func(option, format string, args ...any) {
		errs = append(errs, &OptionError{Option: option, Msg: fmt.Sprintf(format, args...)})
	}
	switch o.ActivationType {
	case onnxio.TypeUint8, onnxio.TypeInt8, onnxio.TypeUint16, onnxio.TypeInt16:
	default:
		bad("activation_type", "%s: int8, uint8, int16 or uint16", o.ActivationType)
	}
	switch o.WeightType {
	case onnxio.TypeUint8, onnxio.TypeInt8:
	default:
		bad("weight_type", "%s: int8 or uint8", o.WeightType)
	}
	if o.ActivationType == onnxio.TypeInt8 && o.WeightType == onnxio.TypeUint8 {
		bad("weight_type", "int8 activations with uint8 weights have no onnxruntime kernels; use int8 weights")
	}
	switch o.Profile {
	case "", ProfileCPU, ProfileTensorRT:
	default:
		bad("profile", "%q: cpu or tensorrt", o.Profile)
	}
	for _, op := range o.OpTypes {
		if !slices.Contains(SupportedOps(), op) {
			bad("op_types", "%s is not quantized by onnxpipe; supported: %s", op, strings.Join(SupportedOps(), ", "))
		}
	}
	for _, p := range o.ExcludeNodes {
		if _, err := path.Match(p, ""); err != nil {
			bad("exclude_nodes", "bad pattern %q", p)
		}
	}
	for name, ov := range o.Overrides {
		if ov.Type != "" {
			if _, err := onnxio.ParseDataType(ov.Type); err != nil {
				bad("overrides."+name+".type", "%v", err)
			}
		}
		for _, v := range []*float32{ov.Min, ov.Max} {
			if v != nil && !finite(*v) {
				bad("overrides."+name, "min and max must be finite")
			}
		}
		if ov.Min != nil && ov.Max != nil && *ov.Min > *ov.Max {
			bad("overrides."+name, "min > max")
		}
	}
	return errors.Join(errs...)
}

// excluded reports whether a node name matches ExcludeNodes.
func (o *Options) excluded(name string) bool {
	for _, p := range o.ExcludeNodes {
		if p == name {
			return true
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func (o *Options) opAllowed(op string) bool {
	return len(o.OpTypes) == 0 || slices.Contains(o.OpTypes, op)
}

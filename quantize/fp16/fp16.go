// Package fp16 converts float32 ONNX models to float16 or bfloat16.
//
// Convert rewrites a model in place: float32 initializers and Constant values become
// float16 (values beyond the format's range clamped, tiny ones raised to its smallest
// subnormal, both counted), graph and value_info element types follow, Cast nodes to
// float cast to float16, and the dtype attributes of generator ops (RandomNormal,
// EyeLike, ConstantOfShape's value...) change with them. Nodes whose op type or name is
// blocked, and the inputs of unblocked nodes whose type constraint is float32 only
// (Resize scales, NonMaxSuppression boxes...), stay float32 with Cast nodes around them.
// If/Loop/Scan bodies are converted with their node, consistently. The result keeps no
// redundant Cast pairs and runs in onnxruntime.
//
// This follows onnxruntime's transformers/float16.py (itself a fork of
// onnxconverter-common's float16.py), with these differences: element types come from a
// built-in inference over the op specifications rather than from onnx shape inference;
// constants read by both float32 and float16 nodes are duplicated (a float32 copy for the
// blocked ones) instead of being cast; outer values captured by subgraphs get Casts where
// the subgraph needs another type; redundant Casts are removed afterwards.
//
// DefaultBlockOps gives the op types an execution provider cannot run in float16; the
// cpu list was measured on onnxruntime's CPU provider (see docs/float16-ops.md).
// AutoMixed searches for the fewest nodes to keep in float32 for a metric bound.
//
// On onnxruntime's CPU provider few ops have float16 kernels: it runs the others in
// float32 behind Casts it inserts itself (and drops the Cast pairs between them), so a
// float16 model there mostly saves file size and memory, not time, and hides overflows
// that float16 arithmetic on a GPU would show. Almost no op has a bfloat16 CPU kernel:
// for the CPU, bfloat16 is a storage format (ForceInitializers).
package fp16

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// Options configures Convert. The zero value converts to float16 with the cpu block
// list, float16 graph inputs and outputs, and onnxruntime's float16.py range handling.
type Options struct {
	// Type is the target element type: onnxio.TypeFloat16 (default) or
	// onnxio.TypeBFloat16.
	Type onnxio.DataType
	// KeepIOTypes keeps float32 graph inputs and outputs float32, with Cast nodes
	// after the inputs and before the outputs. (Initializers also listed as graph
	// inputs, as IR < 4 models do, count as constants, not inputs.)
	KeepIOTypes bool
	// Target is the execution provider whose default block list applies when BlockOps
	// is nil: "cpu" (default) or "cuda".
	Target string
	// BlockOps lists op types kept in float32, with Casts around them. nil means
	// DefaultBlockOpsFor(Target, Type); an empty, non-nil slice blocks nothing.
	BlockOps []string
	// BlockNodes lists node names kept in float32.
	BlockNodes []string
	// MinPositive is the smallest magnitude a non-zero constant keeps: non-zero values
	// below it become ±MinPositive (counted in Report.Flushed) instead of rounding to
	// zero. 0 means the smallest positive subnormal of Type (5.96e-8 for float16).
	MinPositive float32
	// MaxFinite is the largest magnitude a finite constant keeps: finite values beyond
	// it become ±MaxFinite (counted in Report.Clamped) instead of overflowing to
	// infinity. 0 means the largest finite value of Type (65504 for float16).
	MaxFinite float32
	// ForceInitializers converts float32 constants read only by float32 nodes too,
	// with a Cast back to float32 in front of those nodes (onnxruntime's
	// force_fp16_initializers): smaller files, weights rounded even where the
	// arithmetic stays float32. By default such constants stay float32.
	ForceInitializers bool
	// ConvertIsolated converts data-movement nodes (Reshape, Transpose, Gather,
	// Concat...) even when every float value they read or write stays float32 for
	// other reasons. By default such nodes stay float32 too: converting them would only
	// add a Cast pair and a rounding.
	ConvertIsolated bool
	// KeepRoundingCasts keeps float32 -> float16 -> float32 Cast pairs. Removing such
	// a pair (done by default, and only when nothing else reads the float16 value)
	// skips a rounding step, so the result differs from the unsimplified graph's.
	KeepRoundingCasts bool
}

// Report describes what Convert did.
type Report struct {
	// Type is the target element type.
	Type onnxio.DataType `json:"type"`
	// InitializersConverted counts float32 initializers rewritten to Type.
	InitializersConverted int `json:"initializers_converted"`
	// ConstantsConverted counts float32 tensors of Constant nodes and ConstantOfShape
	// values rewritten to Type.
	ConstantsConverted int `json:"constants_converted"`
	// ConstantsDuplicated counts constants read at two types, which got a second copy
	// (the float32 original for blocked readers, or a converted copy).
	ConstantsDuplicated int `json:"constants_duplicated"`
	// ValuesConverted counts graph inputs, outputs and value_info entries whose
	// declared element type changed.
	ValuesConverted int `json:"values_converted"`
	// NodesConverted counts nodes (subgraphs included) that compute in Type.
	NodesConverted int `json:"nodes_converted"`
	// CastTargetsChanged counts Cast nodes whose `to` changed from float to Type and
	// dtype attributes changed the same way.
	CastTargetsChanged int `json:"cast_targets_changed"`
	// Kept lists the nodes that read or write float32 values and stay float32.
	Kept []KeptNode `json:"kept"`
	// Clamped counts finite constant values beyond ±MaxFinite set to ±MaxFinite.
	Clamped int64 `json:"clamped"`
	// Flushed counts non-zero constant values below MinPositive in magnitude set to
	// ±MinPositive.
	Flushed int64 `json:"flushed"`
	// CastsInserted counts Cast nodes added; CastsRemoved counts Cast nodes removed by
	// the final simplification (added or original).
	CastsInserted int `json:"casts_inserted"`
	CastsRemoved  int `json:"casts_removed"`
	// BytesBefore and BytesAfter are the serialized model sizes.
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
	// Warnings lists things left as they were (unknown ops, sparse constants).
	Warnings []string `json:"warnings,omitempty"`
	// Evals is the number of candidate models AutoMixed evaluated (0 for Convert).
	Evals int `json:"evals,omitempty"`
	// Metric is the eval result of the model AutoMixed returned.
	Metric float64 `json:"metric,omitempty"`
	// Search lists AutoMixed's evaluations in order.
	Search []SearchStep `json:"search,omitempty"`
}

// KeptNode is a node left in float32, and why.
type KeptNode struct {
	Name   string `json:"name"`
	OpType string `json:"op_type"`
	// Reason is one of ReasonBlockedOp, ReasonBlockedNode, ReasonAutoMixed,
	// ReasonInsideBlocked, ReasonUnknownOp, ReasonUnknownType, ReasonIsolated.
	Reason string `json:"reason"`
}

// Reasons for keeping a node in float32.
const (
	ReasonBlockedOp     = "op type in block list"
	ReasonBlockedNode   = "node name in block list"
	ReasonAutoMixed     = "kept by AutoMixed"
	ReasonInsideBlocked = "inside the subgraph of a blocked node"
	ReasonUnknownOp     = "no type rule for this op"
	ReasonUnknownType   = "an input's element type is unknown"
	ReasonIsolated      = "data movement between float32 values"
)

// Ratio is BytesAfter / BytesBefore.
func (r *Report) Ratio() float64 {
	if r.BytesBefore == 0 {
		return 0
	}
	return float64(r.BytesAfter) / float64(r.BytesBefore)
}

// String summarizes the report in one line.
func (r *Report) String() string {
	return fmt.Sprintf("%s: %d initializers, %d constants converted (%d duplicated), %d nodes converted, %d kept float32, %d casts inserted, %d removed, %d clamped, %d flushed, %d -> %d bytes (%.3fx)",
		r.Type, r.InitializersConverted, r.ConstantsConverted, r.ConstantsDuplicated, r.NodesConverted, len(r.Kept),
		r.CastsInserted, r.CastsRemoved, r.Clamped, r.Flushed, r.BytesBefore, r.BytesAfter, r.Ratio())
}

// Type limits.
const (
	float16Max         = 65504
	float16MinPositive = 5.960464477539063e-08  // 2^-24
	bfloat16Max        = 3.3895313892515355e+38 // (2 - 2^-7) * 2^127
)

// normalize fills defaults and checks o.
func (o *Options) normalize() error {
	if o.Type == onnxio.TypeUndefined {
		o.Type = onnxio.TypeFloat16
	}
	var maxF, minP float32
	switch o.Type {
	case onnxio.TypeFloat16:
		maxF, minP = float16Max, float16MinPositive
	case onnxio.TypeBFloat16:
		maxF, minP = bfloat16Max, math.Float32frombits(1<<16) // 2^-133 (a float32 subnormal: 2^16 * 2^-149)
	default:
		return fmt.Errorf("fp16: target type %s: use float16 or bfloat16", o.Type)
	}
	if o.MaxFinite == 0 {
		o.MaxFinite = maxF
	}
	if o.MinPositive == 0 {
		o.MinPositive = minP
	}
	if !(o.MaxFinite > 0) || o.MaxFinite > maxF {
		return fmt.Errorf("fp16: MaxFinite %g is outside (0, %g], the largest finite %s", o.MaxFinite, maxF, o.Type)
	}
	if !(o.MinPositive >= minP) || o.MinPositive >= o.MaxFinite {
		return fmt.Errorf("fp16: MinPositive %g is below %g, the smallest positive %s, or not below MaxFinite", o.MinPositive, minP, o.Type)
	}
	if o.Target == "" {
		o.Target = "cpu"
	}
	if o.BlockOps == nil {
		ops, err := DefaultBlockOpsFor(o.Target, o.Type)
		if err != nil {
			return err
		}
		o.BlockOps = ops
	}
	return nil
}

// Convert converts m in place from float32 to opts.Type and reports what it did. On
// error m may be partly converted: convert a clone when the original matters.
func Convert(m *onnxio.Model, opts Options) (*Report, error) {
	rep, _, err := convert(m, opts, nil)
	return rep, err
}

// convert is Convert keeping the nodes named in auto in float32 too (AutoMixed's
// choice); it also returns the names of the main-graph nodes it converted.
func convert(m *onnxio.Model, opts Options, auto map[string]bool) (*Report, []string, error) {
	if m == nil || m.Proto == nil || m.Proto.Graph == nil {
		return nil, nil, errors.New("fp16: the model has no graph")
	}
	if err := opts.normalize(); err != nil {
		return nil, nil, err
	}
	if v := m.Opset(""); opts.Type == onnxio.TypeBFloat16 && v < 13 {
		return nil, nil, fmt.Errorf("fp16: the model imports opset %d; bfloat16 needs opset 13 or later (Cast-13 is the first to take it)", v)
	}
	rep := &Report{Type: opts.Type, BytesBefore: int64(proto.Size(m.Proto))}
	c := newConverter(m, opts, rep)
	c.autoNodes = auto
	if err := c.run(); err != nil {
		return nil, nil, err
	}
	rep.BytesAfter = int64(proto.Size(m.Proto))
	return rep, c.converted, nil
}

// DefaultBlockOps returns the op types that target ("cpu" or "cuda") cannot run in
// float16. The cpu list was generated by running one-op float16 models on onnxruntime's
// CPU provider (docs/float16-ops.md); the cuda list is onnxruntime float16.py's
// DEFAULT_OP_BLOCK_LIST, not measured here.
func DefaultBlockOps(target string) ([]string, error) {
	return DefaultBlockOpsFor(target, onnxio.TypeFloat16)
}

// DefaultBlockOpsFor is DefaultBlockOps for float16 or bfloat16.
func DefaultBlockOpsFor(target string, t onnxio.DataType) ([]string, error) {
	if t == onnxio.TypeUndefined {
		t = onnxio.TypeFloat16
	}
	if t != onnxio.TypeFloat16 && t != onnxio.TypeBFloat16 {
		return nil, fmt.Errorf("fp16: no block list for %s", t)
	}
	switch target {
	case "", "cpu":
		if t == onnxio.TypeBFloat16 {
			return slices.Clone(cpuBlockOpsBFloat16), nil
		}
		return slices.Clone(cpuBlockOpsFloat16), nil
	case "cuda":
		return slices.Clone(cudaBlockOps), nil
	}
	return nil, fmt.Errorf("fp16: unknown target %q: use cpu or cuda", target)
}

// cudaBlockOps is onnxruntime float16.py's DEFAULT_OP_BLOCK_LIST (ai.onnx.ml ops left
// out: they never run in float16). It has NOT been measured on a GPU here.
var cudaBlockOps = []string{
	"CumSum", "Max", "Min", "NonMaxSuppression", "Range", "RandomUniformLike", "Resize",
	"RoiAlign", "TopK", "Upsample",
}

package train

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// A kernel is one compiled node: its attributes are parsed once, at Compile.
type kernel interface {
	// forward computes the node's outputs. Inputs are never written; an output may
	// share an input's memory (Reshape, Identity) when the op only relabels it.
	forward(c *ctx, in []*Tensor) ([]*Tensor, error)
}

// A gradKernel can also run backwards: given the gradients of its outputs (nil for an
// output that received none), it returns the gradients of its inputs, nil where
// c.needGrad(i) is false. A returned gradient may be one of gout itself.
type gradKernel interface {
	kernel
	backward(c *ctx, in, out, gout []*Tensor) ([]*Tensor, error)
}

// opSpec describes one supported op type.
type opSpec struct {
	make func(a attrs) (kernel, error)
	// diff reports whether input i is differentiable (gradients flow into it, and a float
	// initializer there is trainable). nil means no input is.
	diff func(i int) bool
	// state lists inputs that hold running statistics (updated by the op, exported,
	// never trained).
	state []int
	// outputs is the number of outputs the op can produce (0 means 1).
	outputs int
	// limits documents attribute limits for Ops.
	limits string
	// learnable lists differentiable inputs (QuantizeLinear's scale) whose float
	// initializers are trainable only when CompileOptions.LearnScales selects them.
	learnable []int
}

func inputs(idx ...int) func(int) bool { return func(i int) bool { return slices.Contains(idx, i) } }
func allInputs(int) bool               { return true }

var registry map[string]opSpec

func init() {
	registry = map[string]opSpec{}
	for name, s := range elementwiseOps() {
		registry[name] = s
	}
	for name, s := range matmulOps() {
		registry[name] = s
	}
	for name, s := range convOps() {
		registry[name] = s
	}
	for name, s := range normOps() {
		registry[name] = s
	}
	for name, s := range shapeOps() {
		registry[name] = s
	}
	for name, s := range quantOps() {
		registry[name] = s
	}
	for name, s := range extraOps() {
		registry[name] = s
	}
}

// OpInfo describes a supported op type.
type OpInfo struct {
	Type   string
	Limits string // attribute or input limits; "" when the op is supported as ONNX defines it
}

// Ops lists the supported op types (default ONNX domain), sorted by name.
func Ops() []OpInfo {
	var out []OpInfo
	for name, s := range registry {
		out = append(out, OpInfo{Type: name, Limits: s.limits})
	}
	slices.SortFunc(out, func(a, b OpInfo) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// attrs reads a node's attributes.
type attrs struct {
	n     *onnxpb.NodeProto
	opset int64
	types map[string]onnxio.DataType // element types of the graph's values, where known
}

func (a attrs) get(name string) *onnxpb.AttributeProto {
	for _, at := range a.n.GetAttribute() {
		if at.GetName() == name {
			return at
		}
	}
	return nil
}

func (a attrs) has(name string) bool { return a.get(name) != nil }

func (a attrs) int(name string, def int) int {
	if at := a.get(name); at != nil {
		return int(at.GetI())
	}
	return def
}

func (a attrs) float(name string, def float32) float32 {
	if at := a.get(name); at != nil {
		return at.GetF()
	}
	return def
}

func (a attrs) ints(name string) []int {
	at := a.get(name)
	if at == nil {
		return nil
	}
	out := make([]int, len(at.GetInts()))
	for i, v := range at.GetInts() {
		out[i] = int(v)
	}
	return out
}

func (a attrs) str(name, def string) string {
	if at := a.get(name); at != nil {
		return string(at.GetS())
	}
	return def
}

// ctx is what a kernel sees while it runs: the tape that owns its buffers (nil while
// Compile folds constants), its node and the training flag.
type ctx struct {
	tape     *Tape
	g        *Graph
	n        *node
	training bool
}

// alloc returns a zeroed float32 tensor.
func (c *ctx) alloc(shape ...int) *Tensor {
	t := c.allocRaw(shape...)
	clear(t.Data)
	return t
}

// allocRaw returns a float32 tensor whose contents are arbitrary.
func (c *ctx) allocRaw(shape ...int) *Tensor {
	n := numel(shape)
	var data []float32
	if c.tape != nil {
		data = c.tape.get(n)
	} else {
		data = make([]float32, n)
	}
	return &Tensor{Shape: slices.Clone(shape), Data: data}
}

func (c *ctx) allocInts(shape ...int) *Tensor {
	return &Tensor{DType: Int64, Shape: slices.Clone(shape), Ints: make([]int64, numel(shape))}
}

// save keeps v for the node's backward pass.
func (c *ctx) save(v any) {
	if c.tape != nil {
		c.tape.saved[c.n.idx] = v
	}
}

func (c *ctx) saved() any { return c.tape.saved[c.n.idx] }

// needGrad reports whether input i needs a gradient.
func (c *ctx) needGrad(i int) bool { return i < len(c.n.needGrad) && c.n.needGrad[i] }

// paramGrad returns Param.Grad when the node's input i is a trainable parameter whose
// gradient is wanted, and nil otherwise. A backward kernel may add that input's
// gradient into it directly (and return nil for it) rather than into a buffer of its
// own that Backward then adds to Param.Grad.
func (c *ctx) paramGrad(i int) *Tensor {
	if !c.needGrad(i) || i >= len(c.n.in) || c.n.in[i] < 0 {
		return nil
	}
	v := c.g.vals[c.n.in[i]]
	if v.kind != vkParam || v.param == nil {
		return nil
	}
	return v.param.Grad
}

// input returns input i or nil when it is absent.
func input(in []*Tensor, i int) *Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

func wantFloat(op string, ts ...*Tensor) error {
	for _, t := range ts {
		if t != nil && t.DType != Float32 {
			return fmt.Errorf("%s needs float32 inputs, got %s", op, t.DType)
		}
	}
	return nil
}

// intsOf reads an int64 tensor's elements as ints.
func intsOf(t *Tensor) ([]int, error) {
	if t.DType != Int64 {
		return nil, fmt.Errorf("expected an int64 tensor, got %s", t)
	}
	out := make([]int, len(t.Ints))
	for i, v := range t.Ints {
		out[i] = int(v)
	}
	return out, nil
}

package distill

import (
	"fmt"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/train"
)

// Architecture describes a student network built by our code; exactly one of MLP and CNN
// is set.
type Architecture struct {
	// MLP is a multilayer perceptron: every input flattened and concatenated, then fully
	// connected hidden layers, then one linear head per teacher output.
	MLP *MLP `yaml:"mlp,omitempty" json:"mlp,omitempty"`
	// CNN is a convolutional network for one NCHW image input: per entry of channels, a
	// same-padded convolution, an activation and 2x2 max pooling; then fully connected
	// hidden layers and one linear head per teacher output.
	CNN *CNN `yaml:"cnn,omitempty" json:"cnn,omitempty"`
}

// MLP is the spec of a multilayer perceptron student.
type MLP struct {
	// Hidden lists the widths of the hidden layers, e.g. [800, 800].
	Hidden []int `yaml:"hidden" json:"hidden"`
	// Activation is relu, leaky_relu, gelu, tanh or sigmoid.
	Activation string `yaml:"activation,omitempty" json:"activation,omitempty" default:"relu"`
	// Dropout is the dropout ratio after each hidden layer while training (0: none).
	Dropout float64 `yaml:"dropout,omitempty" json:"dropout,omitempty"`
}

// CNN is the spec of a convolutional student.
type CNN struct {
	// Channels lists the output channels of the convolution blocks, e.g. [16, 32].
	Channels []int `yaml:"channels" json:"channels"`
	// Kernel is the (odd) convolution kernel size.
	Kernel int `yaml:"kernel,omitempty" json:"kernel,omitempty" default:"3"`
	// Hidden lists the widths of the fully connected layers after the convolutions.
	Hidden []int `yaml:"hidden,omitempty" json:"hidden,omitempty"`
	// Activation is relu, leaky_relu, gelu, tanh or sigmoid.
	Activation string `yaml:"activation,omitempty" json:"activation,omitempty" default:"relu"`
	// BatchNorm adds a BatchNormalization after each convolution.
	BatchNorm bool `yaml:"batchnorm,omitempty" json:"batchnorm,omitempty"`
	// Dropout is the dropout ratio after each hidden fully connected layer (0: none).
	Dropout float64 `yaml:"dropout,omitempty" json:"dropout,omitempty"`
}

// Validate checks the spec without a model.
func (a *Architecture) Validate() error {
	switch {
	case a.MLP == nil && a.CNN == nil:
		return fmt.Errorf("architecture needs an mlp: or cnn: entry")
	case a.MLP != nil && a.CNN != nil:
		return fmt.Errorf("architecture takes one of mlp: and cnn:, not both")
	case a.MLP != nil:
		if err := checkWidths("mlp.hidden", a.MLP.Hidden); err != nil {
			return err
		}
		return checkActDrop("mlp", a.MLP.Activation, a.MLP.Dropout)
	}
	c := a.CNN
	if len(c.Channels) == 0 {
		return fmt.Errorf("cnn.channels: give at least one convolution, e.g. [16, 32]")
	}
	if err := checkWidths("cnn.channels", c.Channels); err != nil {
		return err
	}
	if err := checkWidths("cnn.hidden", c.Hidden); err != nil {
		return err
	}
	if k := c.Kernel; k != 0 && (k < 1 || k%2 == 0) {
		return fmt.Errorf("cnn.kernel %d: an odd size such as 3 or 5", k)
	}
	return checkActDrop("cnn", c.Activation, c.Dropout)
}

func checkWidths(key string, w []int) error {
	for _, n := range w {
		if n < 1 {
			return fmt.Errorf("%s: widths must be positive, got %d", key, n)
		}
	}
	return nil
}

var activations = []string{"relu", "leaky_relu", "gelu", "tanh", "sigmoid"}

func checkActDrop(key, act string, drop float64) error {
	if act != "" && !contains(activations, act) {
		return fmt.Errorf("%s.activation %q: use one of %s", key, act, strings.Join(activations, ", "))
	}
	if drop < 0 || drop >= 1 {
		return fmt.Errorf("%s.dropout %g: a ratio in [0, 1)", key, drop)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Port is a model input or output as the student must match it: its name, element type
// and the shape of one sample (without the batch axis; -1 for a dimension that varies).
type Port struct {
	Name   string
	Type   onnxio.DataType
	Sample []int64
	// Softmax, on an output, says that the teacher's is probabilities (a final Softmax
	// over the last axis, SoftmaxLogits): the built student ends in one too, so that it
	// keeps the teacher's output contract.
	Softmax bool
}

// Build makes the student network as an ONNX model (opset 13) taking inputs and giving
// outputs with the teacher's names and per-sample shapes; the batch axis is dynamic.
// Weights are drawn deterministically from seed as PyTorch initializes new layers.
func (a *Architecture) Build(inputs, outputs []Port, seed uint64) (*onnxio.Model, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if len(outputs) == 0 {
		return nil, fmt.Errorf("the teacher has no outputs")
	}
	for _, o := range outputs {
		if o.Type != onnxio.TypeFloat {
			return nil, fmt.Errorf("teacher output %q is %s: students are built for float outputs only", o.Name, o.Type)
		}
		if n := prod(o.Sample); n < 1 {
			return nil, fmt.Errorf("teacher output %q has sample shape %v: a built student needs fixed output shapes", o.Name, o.Sample)
		}
	}
	s := &builder{b: onnxio.NewBuilder(13)}
	for _, in := range inputs {
		if in.Type != onnxio.TypeFloat {
			return nil, fmt.Errorf("teacher input %q is %s: built students take float inputs only (give student.model instead)", in.Name, in.Type)
		}
		if prod(in.Sample) < 1 {
			return nil, fmt.Errorf("teacher input %q has sample shape %v: a built student needs fixed input shapes", in.Name, in.Sample)
		}
		s.b.Input(in.Name, onnxio.TypeFloat, append([]int64{-1}, in.Sample...), "batch")
	}
	var x string
	var width int64
	var hidden []int
	var act string
	var drop float64
	if a.MLP != nil {
		x, width = s.flattenAll(inputs)
		hidden, act, drop = a.MLP.Hidden, a.MLP.Activation, a.MLP.Dropout
	} else {
		var err error
		if x, width, err = s.convs(inputs, a.CNN); err != nil {
			return nil, err
		}
		hidden, act, drop = a.CNN.Hidden, a.CNN.Activation, a.CNN.Dropout
	}
	for i, h := range hidden {
		x = s.linear(fmt.Sprintf("fc%d", i+1), x, width, int64(h))
		x = s.activation(x, act)
		if drop > 0 {
			x = s.dropout(x, drop)
		}
		width = int64(h)
	}
	for i, o := range outputs {
		name := "head"
		if len(outputs) > 1 {
			name = fmt.Sprintf("head%d", i+1)
		}
		y := s.linear(name, x, width, prod(o.Sample))
		if len(o.Sample) != 1 {
			shape := s.b.Initializer(name+".shape", onnxio.NewTensor([]int64{int64(len(o.Sample) + 1)}, append([]int64{-1}, o.Sample...)))
			y = s.b.Op("Reshape", []string{y, shape})
		}
		if o.Softmax {
			y = s.b.Op("Softmax", []string{y}, onnxio.AttrInt("axis", -1))
		}
		s.rename(y, o.Name)
		s.b.Output(o.Name, onnxio.TypeFloat, append([]int64{-1}, o.Sample...), "batch")
	}
	m, err := s.b.Model()
	if err != nil {
		return nil, err
	}
	g, err := train.Compile(m, train.CompileOptions{})
	if err != nil {
		return nil, fmt.Errorf("built student: %w", err)
	}
	g.Reinit(seed)
	return g.Export()
}

type builder struct{ b *onnxio.Builder }

// flattenAll flattens every input to [N, d] and concatenates them.
func (s *builder) flattenAll(inputs []Port) (string, int64) {
	var parts []string
	var width int64
	for _, in := range inputs {
		x := in.Name
		if len(in.Sample) != 1 {
			x = s.b.Op("Flatten", []string{x}, onnxio.AttrInt("axis", 1))
		}
		parts = append(parts, x)
		width += prod(in.Sample)
	}
	if len(parts) == 1 {
		return parts[0], width
	}
	return s.b.Op("Concat", parts, onnxio.AttrInt("axis", 1)), width
}

func (s *builder) convs(inputs []Port, c *CNN) (string, int64, error) {
	if len(inputs) != 1 || len(inputs[0].Sample) != 3 {
		return "", 0, fmt.Errorf("a cnn student takes one image input of shape [N, C, H, W]; the teacher's inputs do not fit (use mlp or student.model)")
	}
	k := int64(c.Kernel)
	if k == 0 {
		k = 3
	}
	x := inputs[0].Name
	ch, h, w := inputs[0].Sample[0], inputs[0].Sample[1], inputs[0].Sample[2]
	for i, out := range c.Channels {
		name := fmt.Sprintf("conv%d", i+1)
		wt := s.b.Initializer(name+".weight", onnxio.NewTensor([]int64{int64(out), ch, k, k}, make([]float32, int64(out)*ch*k*k)))
		b := s.b.Initializer(name+".bias", onnxio.NewTensor([]int64{int64(out)}, make([]float32, out)))
		x = s.b.Op("Conv", []string{x, wt, b}, onnxio.AttrInts("kernel_shape", k, k),
			onnxio.AttrInts("pads", k/2, k/2, k/2, k/2))
		if c.BatchNorm {
			bn := fmt.Sprintf("bn%d", i+1)
			ones := make([]float32, out)
			for j := range ones {
				ones[j] = 1
			}
			x = s.b.Op("BatchNormalization", []string{x,
				s.b.Initializer(bn+".weight", onnxio.NewTensor([]int64{int64(out)}, ones)),
				s.b.Initializer(bn+".bias", onnxio.NewTensor([]int64{int64(out)}, make([]float32, out))),
				s.b.Initializer(bn+".running_mean", onnxio.NewTensor([]int64{int64(out)}, make([]float32, out))),
				s.b.Initializer(bn+".running_var", onnxio.NewTensor([]int64{int64(out)}, append([]float32(nil), ones...))),
			}, onnxio.AttrFloat("momentum", 0.9), onnxio.AttrFloat("epsilon", 1e-5))
		}
		x = s.activation(x, c.Activation)
		if h < 2 || w < 2 {
			return "", 0, fmt.Errorf("cnn: %d convolution blocks pool a %dx%d input below 1x1; use fewer channels entries", len(c.Channels), inputs[0].Sample[1], inputs[0].Sample[2])
		}
		x = s.b.Op("MaxPool", []string{x}, onnxio.AttrInts("kernel_shape", 2, 2), onnxio.AttrInts("strides", 2, 2))
		ch, h, w = int64(out), h/2, w/2
	}
	return s.b.Op("Flatten", []string{x}, onnxio.AttrInt("axis", 1)), ch * h * w, nil
}

// linear is PyTorch's nn.Linear: Gemm with the weight stored [out, in] and transB.
func (s *builder) linear(name, x string, in, out int64) string {
	w := s.b.Initializer(name+".weight", onnxio.NewTensor([]int64{out, in}, make([]float32, out*in)))
	b := s.b.Initializer(name+".bias", onnxio.NewTensor([]int64{out}, make([]float32, out)))
	return s.b.Op("Gemm", []string{x, w, b}, onnxio.AttrInt("transB", 1))
}

func (s *builder) activation(x, act string) string {
	switch act {
	case "leaky_relu":
		return s.b.Op("LeakyRelu", []string{x}, onnxio.AttrFloat("alpha", 0.01))
	case "tanh":
		return s.b.Op("Tanh", []string{x})
	case "sigmoid":
		return s.b.Op("Sigmoid", []string{x})
	case "gelu": // x * 0.5 * (1 + erf(x / sqrt(2))), as PyTorch exports nn.GELU at opset 13
		sqrt2 := s.b.Initializer(s.unique("gelu.sqrt2"), onnxio.NewTensor([]int64{}, []float32{1.4142135}))
		one := s.b.Initializer(s.unique("gelu.one"), onnxio.NewTensor([]int64{}, []float32{1}))
		half := s.b.Initializer(s.unique("gelu.half"), onnxio.NewTensor([]int64{}, []float32{0.5}))
		e := s.b.Op("Erf", []string{s.b.Op("Div", []string{x, sqrt2})})
		return s.b.Op("Mul", []string{s.b.Op("Mul", []string{x, s.b.Op("Add", []string{e, one})}), half})
	}
	return s.b.Op("Relu", []string{x})
}

func (s *builder) dropout(x string, ratio float64) string {
	r := s.b.Initializer(s.unique("dropout.ratio"), onnxio.NewTensor([]int64{}, []float32{float32(ratio)}))
	return s.b.Node("Dropout", []string{x, r}, 1)[0]
}

// unique returns base, or base with a number, not yet used in the graph.
func (s *builder) unique(base string) string {
	used := map[string]bool{}
	for _, t := range s.b.Graph().Initializer {
		used[t.GetName()] = true
	}
	name := base
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s%d", base, i)
	}
	return name
}

// rename renames the value have to want wherever a node produces it.
func (s *builder) rename(have, want string) {
	g := s.b.Graph()
	for _, n := range g.Node {
		for i, o := range n.Output {
			if o == have {
				n.Output[i] = want
			}
		}
	}
}

func prod(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

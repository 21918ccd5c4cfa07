package distill

import (
	"fmt"
	"slices"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/train"
)

// Hint is a feature loss (FitNets): weight * MSE(adapter(student tensor), teacher tensor),
// where the adapter is a linear map learned with the student.
type Hint struct {
	// Student names an intermediate (or output) tensor of the student.
	Student string `yaml:"student" json:"student"`
	// Teacher names an intermediate (or output) tensor of the teacher.
	Teacher string `yaml:"teacher" json:"teacher"`
	// Weight multiplies the loss (default 1).
	Weight float64 `yaml:"weight" json:"weight"`
}

// adapter maps a student feature to the teacher feature's shape: a 1x1 convolution when
// both are [N, C, H, W] maps of the same H and W, else a fully connected layer on the
// flattened feature.
type adapter struct {
	hint Hint
	g    *train.Graph
}

func newAdapter(h Hint, student, teacher []int64, seed uint64) (*adapter, error) {
	b := onnxio.NewBuilder(13)
	x := b.Input("x", onnxio.TypeFloat, append([]int64{-1}, student...), "batch")
	var y string
	if len(student) == 3 && len(teacher) == 3 && slices.Equal(student[1:], teacher[1:]) {
		w := b.Initializer("adapter.weight", onnxio.NewTensor([]int64{teacher[0], student[0], 1, 1}, make([]float32, teacher[0]*student[0])))
		bias := b.Initializer("adapter.bias", onnxio.NewTensor([]int64{teacher[0]}, make([]float32, teacher[0])))
		y = b.Op("Conv", []string{x, w, bias}, onnxio.AttrInts("kernel_shape", 1, 1))
	} else {
		in, out := prod(student), prod(teacher)
		if len(student) != 1 {
			x = b.Op("Flatten", []string{x}, onnxio.AttrInt("axis", 1))
		}
		w := b.Initializer("adapter.weight", onnxio.NewTensor([]int64{out, in}, make([]float32, out*in)))
		bias := b.Initializer("adapter.bias", onnxio.NewTensor([]int64{out}, make([]float32, out)))
		y = b.Op("Gemm", []string{x, w, bias}, onnxio.AttrInt("transB", 1))
		if len(teacher) != 1 {
			shape := b.Initializer("adapter.shape", onnxio.NewTensor([]int64{int64(len(teacher) + 1)}, append([]int64{-1}, teacher...)))
			y = b.Op("Reshape", []string{y, shape})
		}
	}
	b.Output(y, onnxio.TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		return nil, err
	}
	g, err := train.Compile(m, train.CompileOptions{InputGrads: true})
	if err != nil {
		return nil, fmt.Errorf("hint %s -> %s: adapter: %w", h.Student, h.Teacher, err)
	}
	g.Reinit(seed)
	return &adapter{hint: h, g: g}, nil
}

// loss runs the adapter on the student's feature and returns the weighted MSE to the
// teacher's feature and its gradient with respect to the student's feature; the
// adapter's own gradients are added to its parameters.
func (a *adapter) loss(feature, target *train.Tensor, training bool) (float64, *train.Tensor, error) {
	tape, err := a.g.Forward(map[string]*train.Tensor{"x": feature}, training)
	if err != nil {
		return 0, nil, err
	}
	defer tape.Release()
	y := tape.Output(a.g.Outputs()[0])
	if !slices.Equal(y.Shape, target.Shape) {
		return 0, nil, fmt.Errorf("hint %s -> %s: the adapter gives %v, the teacher's tensor is %v", a.hint.Student, a.hint.Teacher, y.Shape, target.Shape)
	}
	l, g := train.MSE(y, target)
	if !training {
		return a.hint.Weight * l, nil, nil
	}
	g.Scale(float32(a.hint.Weight))
	if err := tape.Backward(map[string]*train.Tensor{a.g.Outputs()[0]: g}); err != nil {
		return 0, nil, err
	}
	return a.hint.Weight * l, tape.Grad("x").Clone(), nil
}

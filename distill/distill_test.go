package distill

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/train"
)

func loadTeacher(t testing.TB) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(filepath.Join("..", "testdata", "models", "mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// openMNIST opens n samples of the MNIST training (train=true) or test set for m.
func openMNIST(t testing.TB, m *onnxio.Model, train bool, n int) *dataset.Dataset {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Skip(err)
	}
	img, lab := mnist.TestImages, mnist.TestLabels
	if train {
		img, lab = mnist.TrainImages, mnist.TrainLabels
	}
	spec := &dataset.Spec{Format: "idx", Inputs: map[string]string{"input": filepath.Join(dir, img)},
		Labels: filepath.Join(dir, lab), Limit: n, Batch: 100}
	ds, err := dataset.Open(spec, dataset.InputsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

func ports(t testing.TB, m *onnxio.Model) (in, out []Port) {
	for _, i := range dataset.InputsOf(m) {
		in = append(in, Port{Name: i.Name, Type: i.Type, Sample: i.Shape[1:]})
	}
	return in, []Port{{Name: "logits", Type: onnxio.TypeFloat, Sample: []int64{10}}}
}

// TestOfflineMNIST distils a small MLP from the CNN on a subset of MNIST: the student
// learns (accuracy far above chance), the exported ONNX runs in onnxruntime and gives
// the engine's outputs.
func TestOfflineMNIST(t *testing.T) {
	teacher := loadTeacher(t)
	in, out := ports(t, teacher)
	arch := &Architecture{MLP: &MLP{Hidden: []int{64}}}
	student, err := arch.Build(in, out, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mode: Offline, Temperature: 4, SoftWeight: 1, HardWeight: 0.5, Epochs: 5, Batch: 32,
		Optimizer: train.OptimizerConfig{Name: "adam", LR: 2e-3}, Seed: 1, Logf: t.Logf}
	res, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 3000), openMNIST(t, teacher, false, 1000), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.History) != 5 || res.TrainSamples != 3000 || res.ValSamples != 1000 {
		t.Fatalf("history %d epochs, %d/%d samples", len(res.History), res.TrainSamples, res.ValSamples)
	}
	last := res.History[4]
	if last.ValAccuracy < 0.86 || last.TeacherAccuracy < 0.97 {
		t.Errorf("val accuracy %.4f (teacher %.4f): the student did not learn", last.ValAccuracy, last.TeacherAccuracy)
	}
	if !(res.History[4].TrainLoss < res.History[0].TrainLoss) {
		t.Errorf("training loss did not fall: %v", res.History)
	}
	checkRuntimeMatchesEngine(t, res.Student, in)
}

// checkRuntimeMatchesEngine runs m in onnxruntime and in the engine on the same input.
func checkRuntimeMatchesEngine(t *testing.T, m *onnxio.Model, in []Port) {
	t.Helper()
	x := make([]float32, 4*prod(in[0].Sample))
	for i := range x {
		x[i] = float32(i%97) / 97
	}
	shape := append([]int64{4}, in[0].Sample...)
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	got, err := sess.Run(map[string]*onnxio.Tensor{in[0].Name: onnxio.NewTensor(shape, x)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := train.Compile(m, train.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tape, err := g.Forward(map[string]*train.Tensor{in[0].Name: train.NewTensor(ints(shape), x)}, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range got {
		want := tape.Output(name).Data
		for i, v := range o.Data.([]float32) {
			if d := math.Abs(float64(v - want[i])); d > 1e-4*(1+math.Abs(float64(v))) {
				t.Fatalf("output %s[%d]: onnxruntime %v, engine %v", name, i, v, want[i])
			}
		}
	}
}

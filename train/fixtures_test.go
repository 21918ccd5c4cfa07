package train

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"
	"path/filepath"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

var fixtures = []struct {
	name  string
	shape []int // one sample
}{
	{"mnist_cnn", []int{1, 28, 28}},
	{"resnet_small", []int{3, 32, 32}},
	{"tiny_transformer", []int{16, 32}},
}

func loadFixture(t testing.TB, name string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(filepath.Join("..", "testdata", "models", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fixtureInput(seed uint64, batch int, sample []int) map[string]*Tensor {
	r := rand.New(rand.NewPCG(seed, 3))
	shape := append([]int{batch}, sample...)
	return map[string]*Tensor{"input": NewTensor(shape, genData(r, normal, numel(shape)))}
}

// TestFixturesParityORT runs the three PyTorch-exported fixtures on random batches in
// the engine and in onnxruntime.
func TestFixturesParityORT(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			m := loadFixture(t, f.name)
			for _, batch := range []int{1, 5} {
				e := compareORT(t, m, fixtureInput(uint64(batch), batch, f.shape))
				if e > 1e-4 {
					t.Errorf("batch %d: relative error %.3g > 1e-4", batch, e)
				}
				t.Logf("batch %d: relative error %.3g", batch, e)
			}
		})
	}
}

// TestFixturesGradients checks the fixtures' gradients (a few elements of every
// parameter and of the input) against finite differences, in inference mode and, for
// the batch-norm models, in training mode.
func TestFixturesGradients(t *testing.T) {
	for _, f := range fixtures {
		for _, training := range []bool{false, true} {
			if training && f.name == "tiny_transformer" {
				continue // no batch norm or dropout: training mode is the same graph
			}
			name := f.name + map[bool]string{false: "/inference", true: "/training"}[training]
			t.Run(name, func(t *testing.T) {
				m := loadFixture(t, f.name)
				// ReLU's kink at 0 and MaxPool's switch between near-equal elements make
				// finite differences of a whole network unreliable: a step in one weight
				// moves thousands of values, and some cross a kink (the differences then
				// only converge below eps = 1e-4, where float32 noise takes over). The
				// check therefore runs on the same graph with Tanh for ReLU and
				// AveragePool (same window) for MaxPool; those two ops' own gradients are
				// checked in TestOpsGradients.
				for _, n := range m.Proto.GetGraph().GetNode() {
					switch n.GetOpType() {
					case "Relu":
						n.OpType = proto.String("Tanh")
					case "MaxPool":
						n.OpType = proto.String("AveragePool")
					}
				}
				res := gradCheck(t, m, fixtureInput(9, 2, f.shape), training, 3e-3, 3)
				t.Logf("%d elements, worst %.3g (%s)", res.checked, res.worst, res.where)
				if res.worst > 5e-3 {
					t.Errorf("gradient error %.3g > 5e-3 (in %s)", res.worst, res.where)
				}
			})
		}
	}
}

func TestFixtureCompile(t *testing.T) {
	want := map[string]struct{ params, states int }{
		"mnist_cnn":        {12, 4},
		"resnet_small":     {29, 18},
		"tiny_transformer": {26, 0},
	}
	for _, f := range fixtures {
		g, err := Compile(loadFixture(t, f.name), CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w := want[f.name]
		if len(g.Params()) != w.params || len(g.State()) != w.states {
			t.Errorf("%s: %d params, %d state tensors; want %d, %d", f.name, len(g.Params()), len(g.State()), w.params, w.states)
		}
		unknown := 0
		for _, p := range g.Params() {
			if p.role == roleOther {
				unknown++
				t.Logf("%s: %s has no init role", f.name, p.Name)
			}
		}
		if unknown > 0 {
			t.Errorf("%s: %d parameters without an init role", f.name, unknown)
		}
		t.Logf("%s: %d nodes run (of %d), %d params", f.name, g.NumNodes(), len(g.src.GetGraph().GetNode()), len(g.Params()))
	}
}

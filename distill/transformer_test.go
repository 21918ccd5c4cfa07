package distill

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/train"
)

// constantInitializers returns m with its Constant nodes turned into initializers (as
// exporters that fold constants write them: GELU's constants, the attention scale and
// the shape tensors become initializers) and its classifier weight read through an
// Identity (a weight PyTorch shares between two uses).
func constantInitializers(t *testing.T, m *onnxio.Model) *onnxio.Model {
	t.Helper()
	mp := proto.Clone(m.Proto).(*onnxpb.ModelProto)
	gp := mp.Graph
	kept := []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Name: proto.String("share"),
		Input: []string{"fc.weight"}, Output: []string{"fc.weight.shared"}}}
	for _, n := range gp.Node {
		if n.GetOpType() == "Gemm" && n.Input[1] == "fc.weight" {
			n.Input[1] = "fc.weight.shared"
		}
		if n.GetOpType() != "Constant" {
			kept = append(kept, n)
			continue
		}
		tp := proto.Clone(onnxio.Attr(n, "value").GetT()).(*onnxpb.TensorProto)
		tp.Name = proto.String(n.GetOutput()[0])
		gp.Initializer = append(gp.Initializer, tp)
	}
	gp.Node = kept
	return &onnxio.Model{Proto: mp}
}

// TestTransformerStudentKeep distils into the PyTorch-exported tiny transformer kept
// as it is (init keep), with constants as initializers and a weight shared through
// Identity, at Adam's ordinary rate 1e-3: the loss is finite and falls, and the
// student's constants come back unchanged. The teacher is the same architecture with
// other weights (Reinit), so that the student has something to learn.
func TestTransformerStudentKeep(t *testing.T) {
	orig, err := onnxio.Load(filepath.Join("..", "testdata", "models", "tiny_transformer.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	teacher, err := reinit(orig, 11)
	if err != nil {
		t.Fatal(err)
	}
	student := constantInitializers(t, orig)
	rng := rand.New(rand.NewPCG(1, 2))
	var feeds []map[string]*onnxio.Tensor
	for range 4 {
		feeds = append(feeds, testutil.RandomFeed(rng, "input", []int64{16, 16, 32}))
	}
	spec, err := testutil.NPYDataset(t.TempDir(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(orig))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	cfg := Config{Mode: Offline, Temperature: 2, SoftWeight: 1, MSEWeight: 1, Epochs: 4, Batch: 16,
		Optimizer: train.OptimizerConfig{Name: "adam", LR: 1e-3}, Seed: 1, Logf: t.Logf}
	res, err := Run(context.Background(), teacher, student, ds, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := res.History
	for _, e := range h {
		if math.IsNaN(e.TrainLoss) || math.IsInf(e.TrainLoss, 0) {
			t.Fatalf("loss not finite: %+v", h)
		}
	}
	if !(h[len(h)-1].TrainLoss < 0.7*h[0].TrainLoss) {
		t.Fatalf("loss %.4g → %.4g: it did not fall", h[0].TrainLoss, h[len(h)-1].TrainLoss)
	}
	t.Logf("loss %.4g → %.4g", h[0].TrainLoss, h[len(h)-1].TrainLoss)
	before := map[string]*onnxpb.TensorProto{}
	for _, tp := range student.Proto.Graph.Initializer {
		before[tp.GetName()] = tp
	}
	weights := map[string]bool{} // the fixture's own initializers: the module's weights
	for _, tp := range orig.Proto.Graph.Initializer {
		weights[tp.GetName()] = true
	}
	changed := 0
	for _, tp := range res.Student.Proto.Graph.Initializer {
		if proto.Equal(tp, before[tp.GetName()]) {
			continue
		}
		changed++
		if !weights[tp.GetName()] {
			t.Errorf("initializer %q changed: only the module's weights may", tp.GetName())
		}
	}
	if changed != 26 {
		t.Errorf("%d initializers changed, want the 26 weights", changed)
	}
}

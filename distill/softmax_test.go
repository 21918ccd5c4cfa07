package distill

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/train"
)

// softmaxTeacher is the MNIST CNN with a final Softmax: its output "probs" is
// probabilities.
func softmaxTeacher(t *testing.T) *onnxio.Model {
	t.Helper()
	m := loadTeacher(t)
	g := m.Proto.Graph
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String("Softmax"), Name: proto.String("probs"),
		Input: []string{"logits"}, Output: []string{"probs"}, Attribute: []*onnxpb.AttributeProto{onnxio.AttrInt("axis", 1)}})
	g.Output = []*onnxpb.ValueInfoProto{onnxio.ValueInfo("probs", onnxio.TypeFloat, []int64{-1, 10}, "batch")}
	return m
}

func TestSoftmaxLogits(t *testing.T) {
	if got := SoftmaxLogits(softmaxTeacher(t), "probs"); got != "logits" {
		t.Errorf("SoftmaxLogits = %q, want logits", got)
	}
	if got := SoftmaxLogits(loadTeacher(t), "logits"); got != "" {
		t.Errorf("a Gemm output: SoftmaxLogits = %q, want none", got)
	}
	for _, c := range []struct {
		opset int64
		axis  int64 // -2: no attribute
		rank  int
		want  bool
	}{{13, -2, 3, true}, {13, 1, 2, true}, {13, 1, 3, false}, {11, -2, 2, true}, {11, -2, 3, false}, {11, -1, 3, true}, {13, 0, 2, false}} {
		b := onnxio.NewBuilder(c.opset)
		shape := make([]int64, c.rank)
		for i := range shape {
			shape[i] = 3
		}
		b.Input("x", onnxio.TypeFloat, shape)
		var attrs []*onnxpb.AttributeProto
		if c.axis != -2 {
			attrs = append(attrs, onnxio.AttrInt("axis", c.axis))
		}
		y := b.Op("Softmax", []string{"x"}, attrs...)
		b.Output(y, onnxio.TypeFloat, shape)
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		if got := SoftmaxLogits(m, y) == "x"; got != c.want {
			t.Errorf("opset %d axis %d rank %d: last-axis Softmax %v, want %v", c.opset, c.axis, c.rank, got, c.want)
		}
	}
}

// TestSoftmaxTeacher distils from a teacher that ends in Softmax into a built MLP
// student: the student ends in a Softmax too (its "probs" are probabilities in
// onnxruntime), the student learns, a log line says that the losses compare logits,
// and they do: the MSE of the untrained student is far above 1, which no two
// probability vectors reach.
func TestSoftmaxTeacher(t *testing.T) {
	teacher := softmaxTeacher(t)
	in, _ := ports(t, teacher)
	student, err := (&Architecture{MLP: &MLP{Hidden: []int{64}}}).Build(in,
		[]Port{{Name: "probs", Type: onnxio.TypeFloat, Sample: []int64{10}, Softmax: true}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if SoftmaxLogits(student, "probs") == "" {
		t.Fatal("the built student does not end in a Softmax")
	}
	var logs []string
	cfg := Config{Mode: Offline, Temperature: 4, SoftWeight: 1, Epochs: 3, Batch: 32,
		Optimizer: train.OptimizerConfig{Name: "adam", LR: 2e-3}, Seed: 1,
		Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)); t.Logf(f, a...) }}
	res, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 2000), openMNIST(t, teacher, false, 500), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(logs, "\n"), `the teacher's output "probs" is a Softmax of "logits": the losses compare logits`) {
		t.Errorf("no log line about the Softmax: %q", logs)
	}
	last := res.History[len(res.History)-1]
	if last.ValAccuracy < 0.8 || last.TeacherAccuracy < 0.97 {
		t.Errorf("val accuracy %.4f (teacher %.4f): the student did not learn from the teacher's logits", last.ValAccuracy, last.TeacherAccuracy)
	}
	cfg.SoftWeight, cfg.MSEWeight, cfg.Epochs = 0, 1, 0
	mse, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 100), openMNIST(t, teacher, false, 200), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l := mse.Generations[0].InitialLoss; !(l > 1) {
		t.Errorf("MSE of the untrained student %.4g: not logits (probabilities differ by at most 1)", l)
	}
	b, err := res.Student.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	x := make([]float32, 2*784)
	for i := range x {
		x[i] = float32(i%89) / 89
	}
	out, err := sess.Run(map[string]*onnxio.Tensor{"input": onnxio.NewTensor([]int64{2, 1, 28, 28}, x)})
	if err != nil {
		t.Fatal(err)
	}
	p := out["probs"].Data.([]float32)
	for r := range 2 {
		var s float64
		for _, v := range p[r*10 : r*10+10] {
			if v < 0 {
				t.Fatalf("probs %v: negative", p)
			}
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("row %d of the student's probs sums to %v, not 1: %v", r, s, p)
		}
	}
}

// TestSoftmaxTeacherLogitStudent: a student that does not end in a Softmax under the
// teacher's probabilities' name is compared by that output, as logits, with the
// teacher's logits, and a warning says that the contract differs.
func TestSoftmaxTeacherLogitStudent(t *testing.T) {
	teacher := softmaxTeacher(t)
	in, _ := ports(t, teacher)
	student, err := (&Architecture{MLP: &MLP{Hidden: []int{16}}}).Build(in, []Port{{Name: "probs", Type: onnxio.TypeFloat, Sample: []int64{10}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	cfg := Config{Mode: Offline, Temperature: 4, MSEWeight: 1, Epochs: 0, Batch: 32, Optimizer: train.OptimizerConfig{Name: "adam", LR: 1e-3},
		Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	res, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 100), openMNIST(t, teacher, false, 100), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(logs, "\n"), `warning: the teacher's output "probs" is a Softmax of "logits" but the student's is not`) {
		t.Errorf("no warning: %q", logs)
	}
	if l := res.Generations[0].InitialLoss; !(l > 1) {
		t.Errorf("MSE %.4g: not against the teacher's logits", l)
	}
}

package distill_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

func config(t *testing.T, stages string) string {
	return testutil.MNISTConfig(t, "student.onnx", 500, 200, stages)
}

// TestConfigErrors: mistakes in a distill entry are config errors that name the key and
// its line, before any model is read.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ stage, want string }{
		{"  - distill: {dataset: train}", "student: give model: or architecture:"},
		{"  - distill: {dataset: train, mode: self, student: {architecture: {mlp: {hidden: [8]}}}}", "mode self"},
		{"  - distill: {dataset: train, mode: mutual, student: {architecture: {mlp: {hidden: [8]}}}}", `mode: "mutual" is not one of offline, online, self`},
		{"  - distill: {dataset: train, student: {architecture: {mlp: {hidden: [8]}, cnn: {channels: [4]}}}}", "not both"},
		{"  - distill: {dataset: train, generations: 3, student: {architecture: {mlp: {hidden: [8]}}}}", "only mode self"},
		{"  - distill: {dataset: train, early_stopping: {patience: 2}, student: {architecture: {mlp: {hidden: [8]}}}}", "needs validation"},
		{"  - distill: {dataset: train, losses: [{hint: {student: a}}], student: {architecture: {mlp: {hidden: [8]}}}}", "c.yaml:14:41: distill: losses.0.hint: needs student: and teacher:"},
		{"  - distill: {dataset: trian, student: {architecture: {mlp: {hidden: [8]}}}}", `did you mean "train"`},
		{"  - distill: {dataset: train, student: {architecture: {mlp: {hiden: [8]}}}}", "hiden"},
	} {
		_, err := pipeline.Load(config(t, tc.stage), pipeline.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml:") {
			t.Errorf("%s\n  error %v\n  want %q with file:line", tc.stage, err, tc.want)
		}
	}
}

// TestStageRun runs distill through the pipeline: the job's model becomes the student,
// the report has the figures and curves; hard_weight without labels fails the job.
func TestStageRun(t *testing.T) {
	path := config(t, `  - distill:
      dataset: train
      validation: train
      student: {architecture: {mlp: {hidden: [16]}}}
      hard_weight: 0.5
      epochs: 2
      batch: 50
`)
	res := testutil.RunConfig(t, path)
	if res.Failed() != 0 {
		t.Fatalf("run failed: %+v", res)
	}
	out := strings.Replace(res.Outcomes[0].Job.Output, "{name}", "mnist_cnn", 1)
	m, err := onnxio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if s := onnxio.Summarize(m); s.Params.Count != 784*16+16+16*10+10 {
		t.Errorf("student has %d parameters", s.Params.Count)
	}
	b, err := os.ReadFile(strings.TrimSuffix(out, ".onnx") + ".report.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Stages []struct {
			Metrics []struct{ Name string }
			Charts  []struct{ Title string }
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range rep.Stages[0].Metrics {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "student_accuracy") || !strings.Contains(got, "params_ratio") {
		t.Errorf("metrics %s", got)
	}
	if len(rep.Stages[0].Charts) != 2 {
		t.Errorf("charts: %+v", rep.Stages[0].Charts)
	}

	path = config(t, "  - distill: {dataset: plain, hard_weight: 1, epochs: 1, student: {architecture: {mlp: {hidden: [8]}}}}\n")
	if res := testutil.RunConfig(t, path); res.Failed() != 1 {
		t.Fatalf("hard_weight without labels: %+v", res)
	}
}

// TestSoftmaxTeacherStage: a teacher whose output comes from a final Softmax teaches a
// built student that ends in one too (the teacher's output contract: probabilities under
// the same name), and the report says that the losses compared logits.
func TestSoftmaxTeacherStage(t *testing.T) {
	path := config(t, "  - distill: {dataset: train, epochs: 1, student: {architecture: {mlp: {hidden: [16]}}}}\n")
	m, err := onnxio.Load(testutil.Fixture("mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Proto.Graph
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String("Softmax"), Input: []string{"logits"}, Output: []string{"probs"}})
	g.Output = []*onnxpb.ValueInfoProto{onnxio.ValueInfo("probs", onnxio.TypeFloat, []int64{-1, 10}, "batch")}
	teacher := filepath.Join(filepath.Dir(path), "softmax_cnn.onnx")
	if err := m.Save(teacher, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(text), testutil.Fixture("mnist_cnn.onnx"), teacher, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	res := testutil.RunConfig(t, path)
	if res.Failed() != 0 {
		t.Fatalf("run failed: %v", res.Outcomes[0].Err)
	}
	rec := testutil.StageRecord(t, res.Outcomes[0], "distill")
	if !strings.Contains(strings.Join(rec.Notes, "\n"), `the teacher's output "probs" is a Softmax's: the losses compared logits`) {
		t.Errorf("notes %q", rec.Notes)
	}
	student, err := onnxio.Load(strings.Replace(res.Outcomes[0].Job.Output, "{name}", "softmax_cnn", 1))
	if err != nil {
		t.Fatal(err)
	}
	nodes := student.Proto.Graph.Node
	if last := nodes[len(nodes)-1]; last.GetOpType() != "Softmax" || last.GetOutput()[0] != "probs" {
		t.Errorf("the student ends in %s → %v, want a Softmax giving probs", last.GetOpType(), last.GetOutput())
	}
}

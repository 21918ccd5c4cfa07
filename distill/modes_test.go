package distill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/train"
)

func smallConfig(mode string) Config {
	return Config{Mode: mode, Temperature: 4, SoftWeight: 1, HardWeight: 0.5, Epochs: 2, Batch: 50,
		Optimizer: train.OptimizerConfig{Name: "adam", LR: 2e-3}, Seed: 3}
}

func mlpStudent(t *testing.T, teacher *onnxio.Model, hidden ...int) *onnxio.Model {
	t.Helper()
	in, out := ports(t, teacher)
	m, err := (&Architecture{MLP: &MLP{Hidden: hidden}}).Build(in, out, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalParams(t *testing.T, a, b *onnxio.Model) bool {
	t.Helper()
	ga, err := train.Compile(a, train.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gb, err := train.Compile(b, train.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ga.Params() {
		q := gb.Param(p.Name)
		for i, v := range p.Value.Data {
			if q == nil || q.Value.Data[i] != v {
				return false
			}
		}
	}
	return true
}

// TestDeterministicAndResume: two runs with one seed give identical students; a run
// interrupted after its first epoch resumes from the checkpoint and ends with the same
// weights as the uninterrupted run; a finished checkpoint gives the result at once.
func TestDeterministicAndResume(t *testing.T) {
	teacher := loadTeacher(t)
	student := mlpStudent(t, teacher, 32)
	run := func(cfg Config) (*Result, error) {
		return Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 600), openMNIST(t, teacher, false, 200), cfg)
	}
	cfg := smallConfig(Offline)
	a, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !equalParams(t, a.Student, b.Student) {
		t.Fatal("two runs with the same seed differ")
	}

	// Interrupt after epoch 1: the progress callback cancels the context.
	cfg.Checkpoint = filepath.Join(t.TempDir(), "run.ckpt")
	ctx, cancel := context.WithCancel(context.Background())
	steps := 600 / cfg.Batch
	cfg.Progress = func(done, total int) {
		if done == steps+1 {
			cancel()
		}
	}
	_, err = Run(ctx, teacher, student, openMNIST(t, teacher, true, 600), openMNIST(t, teacher, false, 200), cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	cfg.Progress = nil
	var notes []string
	cfg.Logf = func(f string, args ...any) { notes = append(notes, fmt.Sprintf(f, args...)) }
	c, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Resumed != "generation 1, epoch 1" || len(c.History) != 2 {
		t.Fatalf("resumed %q with %d epochs of history", c.Resumed, len(c.History))
	}
	if !equalParams(t, a.Student, c.Student) {
		t.Fatal("the resumed run ends with other weights than the uninterrupted one")
	}
	d, err := run(cfg) // the checkpoint now holds the finished run
	if err != nil || !equalParams(t, a.Student, d.Student) {
		t.Fatalf("finished checkpoint: %v", err)
	}
	// Another configuration ignores the checkpoint (and says so).
	cfg.Seed = 4
	notes = nil
	if _, err := run(cfg); err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], "another run") {
		t.Errorf("a foreign checkpoint was not reported: %q", notes)
	}
	// A corrupt checkpoint is reported and the run starts afresh.
	os.WriteFile(cfg.Checkpoint, []byte("garbage"), 0o644)
	notes = nil
	if _, err := run(cfg); err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], "unreadable") {
		t.Errorf("a corrupt checkpoint was not reported: %q", notes)
	}
}

// TestOnlineSelfHintSpill covers the other modes and options on a small subset: online
// mutual learning trains the teacher too; born-again generations; a hint loss through an
// adapter; data spilled to disk gives the same result as in memory.
func TestOnlineSelfHintSpill(t *testing.T) {
	teacher := loadTeacher(t)
	t.Run("online", func(t *testing.T) {
		cfg := smallConfig(Online)
		cfg.Epochs = 1
		res, err := Run(context.Background(), teacher, mlpStudent(t, teacher, 32), openMNIST(t, teacher, true, 400), openMNIST(t, teacher, false, 200), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Teacher == nil || equalParams(t, teacher, res.Teacher) {
			t.Fatal("online mode did not train the teacher")
		}
		if e := res.History[0]; math.IsNaN(e.TeacherAccuracy) || e.TeacherAccuracy < 0.9 {
			t.Errorf("online teacher accuracy %v", e.TeacherAccuracy)
		}
	})
	t.Run("self", func(t *testing.T) {
		cfg := smallConfig(Self)
		cfg.Generations, cfg.Epochs = 2, 1
		res, err := Run(context.Background(), teacher, nil, openMNIST(t, teacher, true, 300), openMNIST(t, teacher, false, 200), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Generations) != 2 || res.Generations[1].ValAccuracy < 0.5 {
			t.Fatalf("generations: %+v", res.Generations)
		}
		// Generation 2 is taught by generation 1, not by the original teacher.
		if g := res.History[1]; g.TeacherAccuracy == res.History[0].TeacherAccuracy {
			t.Errorf("generation 2's teacher has the original's accuracy %v", g.TeacherAccuracy)
		}
	})
	t.Run("hint", func(t *testing.T) {
		cfg := smallConfig(Offline)
		cfg.Epochs = 1
		student := mlpStudent(t, teacher, 32)
		feature := student.Proto.GetGraph().GetNode()[2].GetOutput()[0] // the hidden layer's Relu
		cfg.Hints = []Hint{{Student: feature, Teacher: "/classifier/classifier.2/Relu_output_0", Weight: 0.1}}
		res, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 300), nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !(res.History[0].Hint > 0) {
			t.Errorf("hint loss %v", res.History[0].Hint)
		}
		cfg.Hints[0].Teacher = "nope"
		if _, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 100), nil, cfg); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("unknown hint tensor: %v", err)
		}
	})
	t.Run("spill", func(t *testing.T) {
		cfg := smallConfig(Offline)
		cfg.Epochs = 1
		student := mlpStudent(t, teacher, 16)
		mem, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 200), nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MemoryLimit = 1000
		disk, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 200), nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if mem.Spilled || !disk.Spilled || !equalParams(t, mem.Student, disk.Student) {
			t.Fatalf("spilled %v/%v, same weights %v", mem.Spilled, disk.Spilled, equalParams(t, mem.Student, disk.Student))
		}
	})
}

// TestCNNStudentAndErrors builds a CNN student and checks the errors users meet.
func TestCNNStudentAndErrors(t *testing.T) {
	teacher := loadTeacher(t)
	in, out := ports(t, teacher)
	arch := &Architecture{CNN: &CNN{Channels: []int{4, 8}, Hidden: []int{16}, BatchNorm: true, Activation: "gelu", Dropout: 0.1}}
	student, err := arch.Build(in, out, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig(Offline)
	cfg.Epochs = 1
	res, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 200), openMNIST(t, teacher, false, 100), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRuntimeMatchesEngine(t, res.Student, in)

	for _, tc := range []struct {
		arch Architecture
		want string
	}{
		{Architecture{}, "mlp: or cnn:"},
		{Architecture{MLP: &MLP{Hidden: []int{0}}}, "positive"},
		{Architecture{MLP: &MLP{Activation: "swish"}}, "activation"},
		{Architecture{CNN: &CNN{Channels: []int{4}, Kernel: 4}}, "odd"},
		{Architecture{CNN: &CNN{Channels: []int{1, 1, 1, 1, 1, 1}}}, "below 1x1"},
	} {
		if _, err := tc.arch.Build(in, out, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.arch, err, tc.want)
		}
	}
	// Hard loss without labels, a student lacking the output, an exploding loss.
	unlabeled := openMNIST(t, teacher, true, 100)
	cfg = smallConfig(Offline)
	cfg.Output = "nope"
	if _, err := Run(context.Background(), teacher, student, unlabeled, nil, cfg); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown output: %v", err)
	}
	cfg = smallConfig(Offline)
	cfg.Optimizer.LR = 1e6
	cfg.SoftWeight, cfg.HardWeight = 0, 1
	_, err = Run(context.Background(), teacher, mlpStudent(t, teacher, 8), openMNIST(t, teacher, true, 500), nil, cfg)
	if err == nil || !strings.Contains(err.Error(), "learning rate") {
		t.Logf("lr 1e6: %v", err) // not every explosion reaches Inf within the run
	}
}

// TestResumeDropoutAndData: a student with Dropout resumed after its first epoch ends
// with the uninterrupted run's weights (the masks are drawn per epoch from the seed),
// and a checkpoint is not resumed on other data of the same size.
func TestResumeDropoutAndData(t *testing.T) {
	teacher := loadTeacher(t)
	in, out := ports(t, teacher)
	student, err := (&Architecture{MLP: &MLP{Hidden: []int{32}, Dropout: 0.3}}).Build(in, out, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig(Offline)
	whole, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 400), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Checkpoint = filepath.Join(t.TempDir(), "run.ckpt")
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(done, total int) {
		if done == 400/cfg.Batch+1 {
			cancel()
		}
	}
	if _, err := Run(ctx, teacher, student, openMNIST(t, teacher, true, 400), nil, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	cfg.Progress = nil
	resumed, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 400), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Resumed == "" || !equalParams(t, whole.Student, resumed.Student) {
		t.Fatalf("resumed %q: weights differ from the uninterrupted run", resumed.Resumed)
	}
	// Same size, other samples (the test set instead of the training set): not resumed.
	var notes []string
	cfg.Logf = func(f string, args ...any) { notes = append(notes, fmt.Sprintf(f, args...)) }
	other, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, false, 400), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if other.Resumed != "" || len(notes) == 0 || !strings.Contains(notes[0], "another run") {
		t.Fatalf("a checkpoint of other data was resumed (%q): %q", other.Resumed, notes)
	}
}

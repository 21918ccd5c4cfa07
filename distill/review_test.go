package distill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// openMNISTLabels opens n MNIST training images with the labels given (labels nil: none).
func openMNISTLabels(t *testing.T, m *onnxio.Model, n int, labels []int) *dataset.Dataset {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Skip(err)
	}
	spec := &dataset.Spec{Format: "idx", Inputs: map[string]string{"input": filepath.Join(dir, mnist.TrainImages)}, Limit: n, Batch: 50}
	if labels != nil {
		var b strings.Builder
		for _, l := range labels {
			fmt.Fprintln(&b, l)
		}
		spec.Labels = filepath.Join(t.TempDir(), "labels.txt")
		if err := os.WriteFile(spec.Labels, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

// TestDistillLabelsOutOfRange: a label outside the output's classes is an error that
// names it, not a panic in the cross-entropy (hard loss, online teacher).
func TestDistillLabelsOutOfRange(t *testing.T) {
	teacher := loadTeacher(t)
	labels := make([]int, 60000) // one per image of the file; the run uses 100
	labels[37] = 10              // the teacher has 10 classes
	for _, mode := range []string{Offline, Online} {
		cfg := smallConfig(mode)
		cfg.Epochs = 1
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			_, err = Run(context.Background(), teacher, mlpStudent(t, teacher, 8), openMNISTLabels(t, teacher, 100, labels), nil, cfg)
		}()
		if err == nil || strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "label 10") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: label out of range: %v", mode, err)
		}
	}
}

// TestDistillUnlabeledValidation: hard_weight with a validation set without labels is
// an error before training, not a panic after the first epoch.
func TestDistillUnlabeledValidation(t *testing.T) {
	teacher := loadTeacher(t)
	cfg := smallConfig(Offline)
	cfg.Epochs = 1
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		_, err = Run(context.Background(), teacher, mlpStudent(t, teacher, 8), openMNIST(t, teacher, true, 100), openMNISTLabels(t, teacher, 100, nil), cfg)
	}()
	if err == nil || strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "validation") {
		t.Errorf("unlabeled validation with hard_weight: %v", err)
	}
	// Without hard_weight it runs, and the accuracy is unknown (NaN), not 0.
	cfg.HardWeight = 0
	res, err := Run(context.Background(), teacher, mlpStudent(t, teacher, 8), openMNIST(t, teacher, true, 100), openMNISTLabels(t, teacher, 100, nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := res.History[0].ValAccuracy; a == a {
		t.Errorf("validation accuracy without labels is %v, want NaN", a)
	}
}

// TestDistillCanceledLoad: an error while the data loads (here, a canceled context) is
// returned, not a nil-pointer panic in the cleanup.
func TestDistillCanceledLoad(t *testing.T) {
	teacher := loadTeacher(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		_, err = Run(ctx, teacher, mlpStudent(t, teacher, 8), openMNIST(t, teacher, true, 100), nil, smallConfig(Offline))
	}()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled load: %v", err)
	}
}

// TestDistillZeroSizeRows: rows of a zero-size sample shape are an error, not a
// division by zero.
func TestDistillZeroSizeRows(t *testing.T) {
	for _, spill := range []bool{false, true} {
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			var r *rows
			if r, err = newRows([]int64{3, 0}, 4, spill); err == nil {
				defer r.close()
				err = r.addTensor(onnxio.NewTensor([]int64{4, 3, 0}, []float32{}), "teacher output \"x\"")
			}
		}()
		if err == nil || strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "no elements") {
			t.Errorf("spill %v: zero-size rows: %v", spill, err)
		}
	}
}

// TestDistillHintWeightConfig: a hint's weight 0 means 1 (its documented default), so a
// run with only a hint loss is valid; a negative hint weight is an error.
func TestDistillHintWeightConfig(t *testing.T) {
	cfg := Config{Mode: Offline, Temperature: 1, Batch: 1, Hints: []Hint{{Student: "a", Teacher: "b"}}}
	if err := cfg.check(); err != nil {
		t.Errorf("hint with the default weight only: %v", err)
	}
	cfg = Config{Mode: Offline, Temperature: 1, Batch: 1, SoftWeight: 1, Hints: []Hint{{Student: "a", Teacher: "b", Weight: -1}}}
	if err := cfg.check(); err == nil || !strings.Contains(err.Error(), "weight") {
		t.Errorf("negative hint weight: %v", err)
	}
}

// TestDistillOnlineFinishedCheckpoint: rerunning an online run whose checkpoint holds
// the finished run gives the trained teacher back too (teacher_output is written).
func TestDistillOnlineFinishedCheckpoint(t *testing.T) {
	teacher := loadTeacher(t)
	cfg := smallConfig(Online)
	cfg.Epochs = 1
	cfg.Checkpoint = filepath.Join(t.TempDir(), "online.ckpt")
	student := mlpStudent(t, teacher, 8)
	a, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 100), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), teacher, student, openMNIST(t, teacher, true, 100), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.Resumed == "" {
		t.Fatal("the finished checkpoint was not used")
	}
	if b.Teacher == nil || !equalParams(t, a.Teacher, b.Teacher) {
		t.Errorf("the resumed online run lost the trained teacher (%v)", b.Teacher == nil)
	}
}

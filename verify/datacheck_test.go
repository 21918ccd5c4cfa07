package verify_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/verify"
)

// mnistData writes n random 1x28x28 images (one with NaN at sample nanAt, unless -1) and
// labels as .npy files and opens them for the mnist fixture.
func mnistData(t *testing.T, m *onnxio.Model, n, nanAt int, labels []int64) *dataset.Dataset {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, n*784)
	for i := range x {
		x[i] = rng.Float32()
	}
	if nanAt >= 0 {
		x[nanAt*784+100] = float32(math.NaN())
	}
	xp, lp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := testutil.WriteNPY(xp, onnxio.NewTensor([]int64{int64(n), 1, 28, 28}, x)); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WriteNPY(lp, onnxio.NewTensor([]int64{int64(n)}, labels)); err != nil {
		t.Fatal(err)
	}
	in := m.Graph().GetInput()[0].GetName()
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{in: xp}, Labels: lp, Batch: 4}
	ds, err := dataset.Open(spec, verify.DataInputs(spec, m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

// NaN in the verify data and labels outside the model's classes are errors naming the
// sample, not a comparison judged on what is left or an accuracy of 0.
func TestVerifyRefusesBadData(t *testing.T) {
	m, err := onnxio.Load(testutil.Fixture("mnist_cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	good := []int64{0, 1, 2, 3, 4, 5, 6, 7}
	for _, c := range []struct {
		name   string
		nanAt  int
		labels []int64
		want   []string
	}{
		{"clean", -1, good, nil},
		{"NaN in sample 5", 5, good, []string{"verify data", "sample 5", "NaN"}},
		{"label 99", -1, []int64{0, 1, 2, 3, 4, 5, 99, 7}, []string{"label 99", "sample 6", "10 classes"}},
		{"label -1", -1, []int64{-1, 1, 2, 3, 4, 5, 6, 7}, []string{"label -1", "sample 0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds := mnistData(t, m, 8, c.nanAt, c.labels)
			_, err := verify.Run(context.Background(), m, m.Clone(), ds, verify.Options{})
			if c.want == nil {
				if err != nil {
					t.Fatalf("clean data: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("verify accepted the data")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

package onnxio_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"codeberg.org/sbinet/npyio"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

func readNpy(t *testing.T, path string) ([]float32, []int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npyio.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var data []float32
	if err := r.Read(&data); err != nil {
		t.Fatal(err)
	}
	var shape []int64
	for _, d := range r.Header.Descr.Shape {
		shape = append(shape, int64(d))
	}
	return data, shape
}

func runModel(t *testing.T, data []byte, in *onnxio.Tensor) []float32 {
	t.Helper()
	s, err := ort.NewSession(data, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(map[string]*onnxio.Tensor{"input": in})
	if err != nil {
		t.Fatal(err)
	}
	return out["logits"].Data.([]float32)
}

// TestFixtureRoundTrip: load -> save -> load keeps every fixture exactly, onnxruntime's
// outputs of the original and the round-tripped file are bit-identical, and both match
// PyTorch's recorded outputs.
func TestFixtureRoundTrip(t *testing.T) {
	for _, name := range []string{"mnist_cnn", "resnet_small", "tiny_transformer"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("..", "testdata", "models", name+".onnx")
			m, err := onnxio.Load(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, opts := range []onnxio.SaveOptions{{}, {External: onnxio.ExternalAlways, Threshold: 256}} {
				dst := filepath.Join(t.TempDir(), "copy.onnx")
				if err := m.Save(dst, opts); err != nil {
					t.Fatal(err)
				}
				back, err := onnxio.Load(dst)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(m.Proto, back.Proto) {
					t.Fatalf("external=%v: the round trip changed the model", opts.External)
				}
				x, shape := readNpy(t, filepath.Join("..", "testdata", "models", name+".input.npy"))
				in := onnxio.NewTensor(shape, x)
				orig, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				backBytes, err := back.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				a, b := runModel(t, orig, in), runModel(t, backBytes, in)
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("output %d differs: %v vs %v", i, a[i], b[i])
					}
				}
				want, _ := readNpy(t, filepath.Join("..", "testdata", "models", name+".output.npy"))
				for i := range want {
					if d := math.Abs(float64(a[i] - want[i])); d > 1e-4+1e-4*math.Abs(float64(want[i])) {
						t.Fatalf("onnxruntime vs PyTorch: output %d is %v, PyTorch %v", i, a[i], want[i])
					}
				}
			}
		})
	}
}

package badinput

import (
	"fmt"
	"os"
	"path/filepath"

	"codeberg.org/sbinet/npyio"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Fixture is one model of testdata/models with its sample batch.
type Fixture struct {
	// Name is the short name cases are prefixed with (mnist, resnet, transformer); File
	// the fixture's base name (mnist_cnn).
	Name, File string
	Model      *onnxpb.ModelProto
	// Input is <File>.input.npy (4 samples), Output <File>.output.npy (PyTorch's
	// logits for them) and Labels the argmax of Output.
	Input, Output, Labels *onnxio.Tensor
	// InputName and OutputName are the model's graph input and output.
	InputName, OutputName string
}

// fixtureFiles are the fixtures, short name -> base name.
var fixtureFiles = [][2]string{{"mnist", "mnist_cnn"}, {"resnet", "resnet_small"}, {"transformer", "tiny_transformer"}}

// LoadFixtures reads the fixtures from dir (testdata/models).
func LoadFixtures(dir string) (map[string]*Fixture, error) {
	out := map[string]*Fixture{}
	for _, f := range fixtureFiles {
		data, err := os.ReadFile(filepath.Join(dir, f[1]+".onnx"))
		if err != nil {
			return nil, err
		}
		mp := &onnxpb.ModelProto{}
		if err := proto.Unmarshal(data, mp); err != nil {
			return nil, fmt.Errorf("%s: %w", f[1], err)
		}
		fx := &Fixture{Name: f[0], File: f[1], Model: mp,
			InputName: mp.GetGraph().GetInput()[0].GetName(), OutputName: mp.GetGraph().GetOutput()[0].GetName()}
		if fx.Input, err = readNPY(filepath.Join(dir, f[1]+".input.npy")); err != nil {
			return nil, err
		}
		if fx.Output, err = readNPY(filepath.Join(dir, f[1]+".output.npy")); err != nil {
			return nil, err
		}
		logits := fx.Output.Data.([]float32)
		n, c := int(fx.Output.Shape[0]), int(fx.Output.Shape[1])
		labels := make([]int64, n)
		for i := range n {
			for k := range c {
				if logits[i*c+k] > logits[i*c+int(labels[i])] {
					labels[i] = int64(k)
				}
			}
		}
		fx.Labels = onnxio.NewTensor([]int64{int64(n)}, labels)
		out[f[0]] = fx
	}
	return out, nil
}

// readNPY reads a float32 .npy file.
func readNPY(path string) (*onnxio.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := npyio.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var v []float32
	if err := r.Read(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	shape := make([]int64, len(r.Header.Descr.Shape))
	for i, d := range r.Header.Descr.Shape {
		shape[i] = int64(d)
	}
	return onnxio.NewTensor(shape, v), nil
}

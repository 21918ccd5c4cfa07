// Package testutil holds what the tests and benchmarks of several packages share:
// model builders (a ResNet-18 of any width) and datasets written from in-memory
// tensors. It is imported by _test files only.
package testutil

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// ResNet18 builds ResNet-18 as a PyTorch export looks after BatchNormalization folding
// (Conv with bias + Relu), input [N, 3, size, size] named "input", output "logits" [N,
// 1000], with seeded random weights scaled like Kaiming init; width multiplies the
// channel counts (1 = the real ResNet-18, 11.7 M parameters).
func ResNet18(width float64, size int64) (*onnxio.Model, error) {
	b := onnxio.NewBuilder(13)
	rng := rand.New(rand.NewPCG(7, 7))
	ch := func(c int) int { return int(math.Round(float64(c) * width)) }
	weight := func(shape ...int64) string {
		n, fan := int64(1), int64(1)
		for i, d := range shape {
			n *= d
			if i > 0 {
				fan *= d
			}
		}
		w := make([]float32, n)
		std := math.Sqrt(2 / float64(fan))
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
		}
		return b.Initializer(fmt.Sprintf("w%d", len(b.Graph().Initializer)), onnxio.NewTensor(shape, w))
	}
	bias := func(n int64) string {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.1)
		}
		return b.Initializer(fmt.Sprintf("b%d", len(b.Graph().Initializer)), onnxio.NewTensor([]int64{n}, v))
	}
	conv := func(x string, cin, cout, k, stride int, relu bool) string {
		y := b.Op("Conv", []string{x, weight(int64(cout), int64(cin), int64(k), int64(k)), bias(int64(cout))},
			onnxio.AttrInts("kernel_shape", int64(k), int64(k)), onnxio.AttrInts("strides", int64(stride), int64(stride)),
			onnxio.AttrInts("pads", int64(k/2), int64(k/2), int64(k/2), int64(k/2)))
		if relu {
			y = b.Op("Relu", []string{y})
		}
		return y
	}
	x := b.Input("input", onnxio.TypeFloat, []int64{-1, 3, size, size}, "batch")
	y := conv(x, 3, ch(64), 7, 2, true)
	y = b.Op("MaxPool", []string{y}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("strides", 2, 2), onnxio.AttrInts("pads", 1, 1, 1, 1))
	cin := ch(64)
	for i, c := range []int{64, 128, 256, 512} {
		for blk := 0; blk < 2; blk++ {
			stride := 1
			if i > 0 && blk == 0 {
				stride = 2
			}
			h := conv(y, cin, ch(c), 3, stride, true)
			h = conv(h, ch(c), ch(c), 3, 1, false)
			short := y
			if stride != 1 || cin != ch(c) {
				short = conv(y, cin, ch(c), 1, stride, false)
			}
			y = b.Op("Relu", []string{b.Op("Add", []string{h, short})})
			cin = ch(c)
		}
	}
	y = b.Op("GlobalAveragePool", []string{y})
	y = b.Op("Flatten", []string{y})
	b.Op("Gemm", []string{y, weight(1000, int64(cin)), bias(1000)}, onnxio.AttrInt("transB", 1))
	b.Graph().Node[len(b.Graph().Node)-1].Output[0] = "logits"
	b.Output("logits", onnxio.TypeFloat, []int64{-1, 1000}, "batch")
	return b.Model()
}

// RandomFeed is one input tensor of standard normal values.
func RandomFeed(rng *rand.Rand, name string, shape []int64) map[string]*onnxio.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return map[string]*onnxio.Tensor{name: onnxio.NewTensor(shape, v)}
}

// WriteNPY writes t as a .npy file (NPY).
func WriteNPY(path string, t *onnxio.Tensor) error {
	data, err := NPY(t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// NPYDataset concatenates the feeds' tensors of each input along axis 0, writes one
// .npy per input into dir and returns the npy dataset spec reading them (batch: the
// first feed's batch size, so batches match the feeds).
func NPYDataset(dir string, feeds []map[string]*onnxio.Tensor) (*dataset.Spec, error) {
	if len(feeds) == 0 {
		return nil, fmt.Errorf("NPYDataset: no feeds")
	}
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{}}
	var names []string
	for name := range feeds[0] {
		names = append(names, name)
	}
	sort.Strings(names)
	for k, name := range names {
		var shape []int64
		var all []float32
		for _, f := range feeds {
			t := f[name]
			v, ok := t.Data.([]float32)
			if !ok {
				return nil, fmt.Errorf("NPYDataset: input %s is %T, not float32", name, t.Data)
			}
			if shape == nil {
				shape = append([]int64(nil), t.Shape...)
				if k == 0 {
					spec.Batch = int(t.Shape[0])
				}
			} else {
				shape[0] += t.Shape[0]
			}
			all = append(all, v...)
		}
		p := filepath.Join(dir, fmt.Sprintf("input%d.npy", k))
		if err := WriteNPY(p, onnxio.NewTensor(shape, all)); err != nil {
			return nil, err
		}
		spec.Inputs[name] = p
	}
	return spec, nil
}

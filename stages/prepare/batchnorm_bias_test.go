package prepare_test

import (
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// bnAfter appends BatchNormalization over 3 channels with non-trivial parameters.
func bnAfter(b *onnxio.Builder, x string) string {
	p := func(name string, v ...float32) string { return b.Initializer(name, onnxio.NewTensor([]int64{3}, v)) }
	return b.Op("BatchNormalization", []string{x, p("gamma", 2, 0.5, 1.5), p("beta", 1, -1, 0.25), p("mean", 0.5, 1, -2), p("var", 4, 0.25, 1)})
}

// TestFoldBatchNormBiasNotFoldable: when the producer's bias is not a constant of C
// values (a broadcast [1] bias of Gemm, a computed bias of Conv), the fold is given up
// or done exactly; either way the prepared model computes what the input did (a fold
// that scaled the weight and then kept the BatchNormalization multiplied twice).
func TestFoldBatchNormBiasNotFoldable(t *testing.T) {
	t.Run("Gemm with a broadcast bias [1]", func(t *testing.T) {
		b := onnxio.NewBuilder(13)
		x := b.Input("x", onnxio.TypeFloat, []int64{-1, 4})
		w := b.Initializer("W", onnxio.NewTensor([]int64{3, 4}, []float32{1, 2, 3, 4, -1, 0, 1, 0, 0.5, 0.5, 0.5, 0.5}))
		c := b.Initializer("C", onnxio.NewTensor([]int64{1}, []float32{0.5}))
		y := b.Op("Gemm", []string{x, w, c}, onnxio.AttrInt("transB", 1))
		bnAfter(b, y)
		g := b.Graph()
		g.Node[len(g.Node)-1].Output[0] = "y"
		b.Output("y", onnxio.TypeFloat, []int64{-1, 3})
		src := save(t, b, "gemm_bn.onnx")
		_, m := mustRun(t, src, "  - prepare\n")
		feeds := map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{2, 4}, []float32{1, 2, 3, 4, -1, 0.5, 2, 0})}
		t.Logf("BatchNormalization nodes left: %d", ops(m)["BatchNormalization"])
		sameOutputs(t, load(t, src), m, feeds, 1e-5)
	})
	t.Run("Conv with a computed bias", func(t *testing.T) {
		b := onnxio.NewBuilder(13)
		x := b.Input("x", onnxio.TypeFloat, []int64{-1, 2, 2, 2})
		w := b.Initializer("W", onnxio.NewTensor([]int64{3, 2, 1, 1}, []float32{1, 2, -1, 0.5, 0.25, 3}))
		b0 := b.Initializer("b0", onnxio.NewTensor([]int64{3}, []float32{0.1, 0.2, 0.3}))
		bias := b.Op("Relu", []string{b.Op("Mul", []string{b0, b.Op("ReduceMax", []string{x}, onnxio.AttrInt("keepdims", 0))})})
		y := b.Op("Conv", []string{x, w, bias}, onnxio.AttrInts("kernel_shape", 1, 1))
		bnAfter(b, y)
		g := b.Graph()
		g.Node[len(g.Node)-1].Output[0] = "y"
		b.Output("y", onnxio.TypeFloat, []int64{-1, 3, 2, 2})
		src := save(t, b, "conv_bn.onnx")
		_, m := mustRun(t, src, "  - prepare\n")
		feeds := map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{1, 2, 2, 2}, []float32{1, 2, 3, 4, -1, 0.5, 2, 0})}
		t.Logf("BatchNormalization nodes left: %d", ops(m)["BatchNormalization"])
		sameOutputs(t, load(t, src), m, feeds, 1e-5)
	})
}

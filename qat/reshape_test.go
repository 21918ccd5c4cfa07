package qat

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/train"
)

// reshapedModel builds x [N,2,8,8] → Reshape(x, [N, -1]) (the shape from Shape →
// Gather → Unsqueeze → Concat, as PyTorch exports x.view(x.size(0), -1)) → Gemm
// (transB, weight [8,128]); Flatten(x) → MatMul [128,8]; Reshape(x, [-1, 128]) with a
// constant shape → Gemm [128,8] (transB 0); y is their sum.
func reshapedModel(t *testing.T, opset int64) (*onnxio.Model, map[string]*train.Tensor) {
	t.Helper()
	b := onnxio.NewBuilder(opset)
	b.Input("x", onnxio.TypeFloat, []int64{-1, 2, 8, 8}, "batch")
	r := rand.New(rand.NewPCG(uint64(opset), 1))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() / 10)
		}
		return v
	}
	s := b.Op("Shape", []string{"x"})
	n := b.Op("Gather", []string{s, b.Initializer("zero", onnxio.NewTensor([]int64{}, []int64{0}))}, onnxio.AttrInt("axis", 0))
	var nu string
	if opset < 13 {
		nu = b.Op("Unsqueeze", []string{n}, onnxio.AttrInts("axes", 0))
	} else {
		nu = b.Op("Unsqueeze", []string{n, b.Initializer("ax", onnxio.NewTensor([]int64{1}, []int64{0}))})
	}
	shape := b.Op("Concat", []string{nu, b.Initializer("rest", onnxio.NewTensor([]int64{1}, []int64{-1}))}, onnxio.AttrInt("axis", 0))
	g1 := b.Op("Gemm", []string{b.Op("Reshape", []string{"x", shape}), b.Initializer("w1", onnxio.NewTensor([]int64{8, 128}, rnd(8*128))),
		b.Initializer("b1", onnxio.NewTensor([]int64{8}, rnd(8)))}, onnxio.AttrInt("transB", 1))
	g2 := b.Op("MatMul", []string{b.Op("Flatten", []string{"x"}), b.Initializer("w2", onnxio.NewTensor([]int64{128, 8}, rnd(128*8)))})
	c := b.Op("Reshape", []string{"x", b.Initializer("s3", onnxio.NewTensor([]int64{2}, []int64{-1, 128}))})
	g3 := b.Op("Gemm", []string{c, b.Initializer("w3", onnxio.NewTensor([]int64{128, 8}, rnd(128*8)))})
	y := b.Op("Add", []string{b.Op("Add", []string{g1, g2}), g3})
	b.Graph().Node[len(b.Graph().Node)-1].Output[0] = "y"
	_ = y
	b.Output("y", onnxio.TypeFloat, []int64{-1, 8}, "batch")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m, map[string]*train.Tensor{"x": train.NewTensor([]int{3, 2, 8, 8}, rnd(3*128))}
}

// TestFakeQuantReshapedInputs: Gemm and MatMul whose input comes from Reshape (dynamic
// and constant shape) or Flatten, with int4 (and int8) weights per channel: the
// trainable model compiles, trains (the loss falls), runs in onnxruntime as in the
// engine, and Finalize's QDQ model computes what the trained engine graph does.
func TestFakeQuantReshapedInputs(t *testing.T) {
	for _, opset := range []int64{11, 13} {
		for _, dt := range []onnxio.DataType{onnxio.TypeInt4, onnxio.TypeInt8} {
			t.Run(fmt.Sprintf("opset %d %s", opset, dt), func(t *testing.T) {
				m, in := reshapedModel(t, opset)
				fq, info, err := FakeQuantWeights(m, WeightOptions{Type: dt})
				if err != nil {
					t.Fatal(err)
				}
				if len(info.Weights) != 3 {
					t.Fatalf("%d fake-quantized weights, want 3: %+v", len(info.Weights), info.Weights)
				}
				if e := relErr(t, forward(t, fq, in)["y"], runORT(t, fq, in)["y"]); e > 1e-5 {
					t.Fatalf("trainable model: engine vs onnxruntime relative error %.3g", e)
				}
				g, err := train.Compile(fq, train.CompileOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(g.Params()) != 4 {
					t.Fatalf("params %v, want w1 b1 w2 w3", g.Params())
				}
				opt, _ := train.NewOptimizer(g.Params(), train.OptimizerConfig{Name: "adam", LR: 1e-2})
				target := train.NewTensor([]int{3, 8}, nil)
				var first, last float64
				for step := range 5 {
					tape, err := g.Forward(in, true)
					if err != nil {
						t.Fatal(err)
					}
					l, grad := train.MSE(tape.Output("y"), target)
					if step == 0 {
						first = l
					}
					last = l
					opt.ZeroGrad()
					if err := tape.Backward(map[string]*train.Tensor{"y": grad}); err != nil {
						t.Fatal(err)
					}
					opt.Step()
				}
				if !(last < first) {
					t.Errorf("loss %g → %g: did not fall", first, last)
				}
				trained, err := g.Export()
				if err != nil {
					t.Fatal(err)
				}
				fin, res, err := Finalize(trained, FinalizeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Weights != 3 {
					t.Errorf("finalized %d weights, want 3", res.Weights)
				}
				tape, _ := g.Forward(in, false)
				if e := relErr(t, runORT(t, fin, in)["y"], tape.Output("y")); e > 1e-5 {
					t.Errorf("finalized model in onnxruntime vs the trained engine graph: relative error %.3g", e)
				}
			})
		}
	}
}

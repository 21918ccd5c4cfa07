package qat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/train"
)

// smallModel builds x [2,3,8,8] → Conv(+bias) → Relu → Flatten → Gemm(transB=1, +bias)
// → Relu → Gemm(transB=0) → MatMul [10,6] → MatMul [6] → y [2]: every weight kind
// FakeQuantWeights handles, including a 1-D MatMul weight (per tensor only).
func smallModel(t *testing.T, seed uint64) (*onnxio.Model, map[string]*train.Tensor) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	rnd := func(scale float64, shape ...int64) *onnxio.Tensor {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
		}
		return onnxio.NewTensor(shape, v)
	}
	b := onnxio.NewBuilder(13)
	b.Input("x", onnxio.TypeFloat, []int64{2, 3, 8, 8})
	w1 := b.Initializer("conv.w", rnd(0.3, 4, 3, 3, 3))
	b1 := b.Initializer("conv.b", rnd(0.1, 4))
	h := b.Op("Conv", []string{"x", w1, b1}, onnxio.AttrInts("pads", 1, 1, 1, 1))
	h = b.Op("Relu", []string{h})
	h = b.Op("Flatten", []string{h})
	w2 := b.Initializer("fc1.w", rnd(0.06, 16, 256))
	b2 := b.Initializer("fc1.b", rnd(0.1, 16))
	h = b.Op("Gemm", []string{h, w2, b2}, onnxio.AttrInt("transB", 1))
	h = b.Op("Relu", []string{h})
	w3 := b.Initializer("fc2.w", rnd(0.25, 16, 10))
	h = b.Op("Gemm", []string{h, w3})
	w4 := b.Initializer("mm.w", rnd(0.3, 10, 6))
	h = b.Op("MatMul", []string{h, w4})
	w5 := b.Initializer("vec.w", rnd(0.4, 6))
	b.Op("MatMul", []string{h, w5})
	nodes := b.Graph().GetNode()
	nodes[len(nodes)-1].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, []int64{2})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*3*8*8)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return m, map[string]*train.Tensor{"x": train.NewTensor([]int{2, 3, 8, 8}, x)}
}

// TestFakeQuantWeights inserts weight fake quantization into a float model for int4,
// uint4, int8 and uint8, per channel and per tensor, and checks that the trainable model
// runs in onnxruntime as in the engine, and that Finalize's QDQ model (integer weight
// initializers of the type, no QuantizeLinear left) computes the same outputs.
func TestFakeQuantWeights(t *testing.T) {
	for _, dt := range []onnxio.DataType{onnxio.TypeInt4, onnxio.TypeUint4, onnxio.TypeInt8, onnxio.TypeUint8} {
		for _, perTensor := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pertensor=%v", dt, perTensor), func(t *testing.T) {
				m, in := smallModel(t, 1)
				opts := WeightOptions{Type: dt, PerTensor: perTensor, Asymmetric: dt == onnxio.TypeUint4 || dt == onnxio.TypeUint8}
				fq, info, err := FakeQuantWeights(m, opts)
				if err != nil {
					t.Fatal(err)
				}
				if m.Opset("") != 13 || countOps(m)["QuantizeLinear"] != 0 {
					t.Fatalf("the input model changed")
				}
				if len(info.Weights) != 5 {
					t.Fatalf("%d fake-quantized weights, want 5: %+v", len(info.Weights), info.Weights)
				}
				perChannel := 0
				for _, w := range info.Weights {
					if w.Type != dt {
						t.Errorf("weight %s is %s, want %s", w.Name, w.Type, dt)
					}
					if w.Axis >= 0 {
						perChannel++
					}
				}
				if want := map[bool]int{false: 4, true: 0}[perTensor]; perChannel != want {
					t.Errorf("%d per-channel weights, want %d", perChannel, want)
				}
				if (dt == onnxio.TypeInt4 || dt == onnxio.TypeUint4) && fq.Opset("") != 21 {
					t.Errorf("opset %d, want 21", fq.Opset(""))
				}
				ref := forward(t, m, in)["y"]
				eng := forward(t, fq, in)["y"]
				ortOut := runORT(t, fq, in)["y"]
				if e := relErr(t, eng, ortOut); e > 1e-5 {
					t.Errorf("trainable model: engine vs onnxruntime relative error %.3g", e)
				}
				qerr := relErr(t, eng, ref)
				if qerr == 0 || qerr > 0.5 {
					t.Errorf("fake quantization changes the output by %.3g relative to float", qerr)
				}
				fin, res, err := Finalize(fq, FinalizeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Weights != 5 || res.Biases != 0 {
					t.Errorf("finalized %d weights and %d biases, want 5 and 0 (activations are float)", res.Weights, res.Biases)
				}
				if n := countOps(fin)["QuantizeLinear"]; n != 0 {
					t.Errorf("%d QuantizeLinear nodes left", n)
				}
				if n := initTypes(fin)[dt]; n < 5 {
					t.Errorf("%d %s initializers, want at least 5", n, dt)
				}
				fo := runORT(t, fin, in)["y"]
				if e := relErr(t, fo, eng); e > 1e-5 {
					t.Errorf("finalized model in onnxruntime vs the trainable model in the engine: relative error %.3g", e)
				}
				// With every optimization onnxruntime fuses the weights' DequantizeLinear
				// into MatMulNBits kernels: close, not exact.
				if e := relErr(t, runORTWith(t, fin, in, "all")["y"], eng); e > 0.02 {
					t.Errorf("finalized model in onnxruntime (all optimizations) vs the engine: relative error %.3g", e)
				}
			})
		}
	}
}

// TestTrainLearnedScales trains a fake-quantized int4 model for a few steps with learned
// weight scales, then checks that the scales moved, that Finalize keeps them, and that
// the finalized model in onnxruntime computes what the trained engine graph does; with
// RecomputeScales the weights get new scales from their range.
func TestTrainLearnedScales(t *testing.T) {
	m, in := smallModel(t, 2)
	fq, info, err := FakeQuantWeights(m, WeightOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := train.Compile(fq, train.CompileOptions{LearnScales: info.LearnScales(true, false)})
	if err != nil {
		t.Fatal(err)
	}
	scales := info.WeightScales()
	if len(scales) != 5 {
		t.Fatalf("weight scales %v", scales)
	}
	before := map[string][]float32{}
	for _, s := range scales {
		p := g.Param(s)
		if p == nil {
			t.Fatalf("scale %s is not trainable", s)
		}
		before[s] = append([]float32(nil), p.Value.Data...)
	}
	opt, err := train.NewOptimizer(g.Params(), train.OptimizerConfig{Name: "adam", LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	target := train.NewTensor([]int{2}, []float32{1, -1})
	var first, last float64
	for step := range 30 {
		tape, err := g.Forward(in, true)
		if err != nil {
			t.Fatal(err)
		}
		loss, grad := train.MSE(tape.Output("y"), target)
		if step == 0 {
			first = loss
		}
		last = loss
		opt.ZeroGrad()
		if err := tape.Backward(map[string]*train.Tensor{"y": grad}); err != nil {
			t.Fatal(err)
		}
		opt.Step()
	}
	if !(last < first) {
		t.Errorf("loss %g -> %g did not fall", first, last)
	}
	for _, s := range scales {
		moved := false
		for i, v := range g.Param(s).Value.Data {
			moved = moved || v != before[s][i]
		}
		if !moved {
			t.Errorf("scale %s did not change", s)
		}
	}
	tape, err := g.Forward(in, false)
	if err != nil {
		t.Fatal(err)
	}
	eng := tape.Output("y")
	trained, err := g.Export()
	if err != nil {
		t.Fatal(err)
	}
	fin, _, err := Finalize(trained, FinalizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(t, runORT(t, fin, in)["y"], eng); e > 1e-5 {
		t.Errorf("finalized model in onnxruntime vs the trained engine graph: relative error %.3g", e)
	}
	rec, _, err := Finalize(trained, FinalizeOptions{RecomputeScales: true})
	if err != nil {
		t.Fatal(err)
	}
	ro := runORT(t, rec, in)["y"]
	if e := relErr(t, ro, eng); e == 0 || e > 0.5 {
		t.Errorf("recomputed scales: relative error %.3g vs the trained graph, want small but non-zero", e)
	}
	// A scale driven negative is refused.
	p := g.Param(scales[0])
	p.Value.Data[0] = -p.Value.Data[0]
	bad, err := g.Export()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Finalize(bad, FinalizeOptions{}); err == nil {
		t.Errorf("Finalize accepted a negative scale")
	}
}

// TestTrainableErrors covers models Trainable and Finalize refuse or leave alone.
func TestTrainableErrors(t *testing.T) {
	if _, _, err := Trainable(&onnxio.Model{Proto: nil}); err == nil {
		t.Error("Trainable accepted a model without a graph")
	}
	m, _ := smallModel(t, 3)
	tm, info, err := Trainable(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Weights) != 0 || len(info.Biases) != 0 || countOps(tm)["QuantizeLinear"] != 0 {
		t.Errorf("a float model gained fake quantization: %+v", info)
	}
	if _, _, err := FakeQuantWeights(m, WeightOptions{Type: onnxio.TypeInt16}); err == nil {
		t.Error("FakeQuantWeights accepted int16")
	}
	nan := m.Clone()
	for i, tp := range nan.Graph().GetInitializer() {
		if tp.GetName() == "mm.w" {
			v, _ := onnxio.TensorFloat32s(tp)
			v[0] = float32(math.NaN())
			nt, _ := onnxio.EncodeTensor("mm.w", onnxio.NewTensor(tp.GetDims(), v))
			nan.Graph().Initializer[i] = nt
		}
	}
	if _, _, err := FakeQuantWeights(nan, WeightOptions{}); err == nil {
		t.Error("FakeQuantWeights accepted a NaN weight")
	}
}

package qat

import (
	"math"
	"slices"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/train"
)

// runORT runs m in onnxruntime with basic graph optimizations and returns its outputs
// as float32 train tensors. Basic keeps every QuantizeLinear and DequantizeLinear as
// ONNX defines it; the extended level fuses an integer weight's DequantizeLinear with
// its MatMul or Gemm into com.microsoft.MatMulNBits, whose arithmetic differs (about
// 0.2-0.7% relative on these models; runORTWith(..., "all") measures it).
func runORT(t testing.TB, m *onnxio.Model, inputs map[string]*train.Tensor) map[string]*train.Tensor {
	t.Helper()
	return runORTWith(t, m, inputs, "basic")
}

// runORTWith is runORT at an optimization level ("none", "basic", "extended", "all").
func runORTWith(t testing.TB, m *onnxio.Model, inputs map[string]*train.Tensor, level string) map[string]*train.Tensor {
	t.Helper()
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Threads: 1, Optimization: level})
	if err != nil {
		t.Fatalf("onnxruntime session: %v", err)
	}
	defer s.Close()
	in := map[string]*onnxio.Tensor{}
	for k, v := range inputs {
		in[k] = v.ONNX()
	}
	res, err := s.Run(in)
	if err != nil {
		t.Fatalf("onnxruntime run: %v", err)
	}
	out := map[string]*train.Tensor{}
	for k, v := range res {
		tt, err := train.FromONNX(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = tt
	}
	return out
}

// forward runs m in the engine (inference mode) and returns its outputs.
func forward(t testing.TB, m *onnxio.Model, inputs map[string]*train.Tensor) map[string]*train.Tensor {
	t.Helper()
	g, err := train.Compile(m, train.CompileOptions{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	tape, err := g.Forward(inputs, false)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	out := map[string]*train.Tensor{}
	for _, name := range g.Outputs() {
		out[name] = tape.Output(name)
	}
	return out
}

// relErr is max|a − b| / max(max|b|, 1e-6).
func relErr(t testing.TB, a, b *train.Tensor) float64 {
	t.Helper()
	if !slices.Equal(a.Shape, b.Shape) {
		t.Fatalf("shapes %v and %v differ", a.Shape, b.Shape)
	}
	var d, s float64
	for i := range a.Data {
		d = math.Max(d, math.Abs(float64(a.Data[i])-float64(b.Data[i])))
		s = math.Max(s, math.Abs(float64(b.Data[i])))
	}
	return d / math.Max(s, 1e-6)
}

// countOps counts the nodes of each op type.
func countOps(m *onnxio.Model) map[string]int {
	out := map[string]int{}
	for _, n := range m.Graph().GetNode() {
		out[n.GetOpType()]++
	}
	return out
}

// initTypes counts the initializers of each element type.
func initTypes(m *onnxio.Model) map[onnxio.DataType]int {
	out := map[onnxio.DataType]int{}
	for _, t := range m.Graph().GetInitializer() {
		out[onnxio.DataType(t.GetDataType())]++
	}
	return out
}

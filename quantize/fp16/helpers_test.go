package fp16

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// initORT loads onnxruntime or fails the test (`make test` installs it).
func initORT(t testing.TB) {
	t.Helper()
	if err := ort.Init(""); err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
}

// runModel runs m once on onnxruntime's CPU provider.
func runModel(m *onnxio.Model, feeds map[string]*onnxio.Tensor, opts ort.Options) (map[string]*onnxio.Tensor, error) {
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(data, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(feeds)
}

// sqnr is 10*log10(sum(ref^2) / sum((ref-got)^2)) in dB (+Inf when equal, NaN for
// non-finite values).
func sqnr(ref, got []float32) float64 {
	if len(ref) != len(got) {
		return math.NaN()
	}
	var s, e float64
	for i := range ref {
		r, g := float64(ref[i]), float64(got[i])
		if math.IsNaN(r) || math.IsInf(r, 0) {
			if math.IsNaN(r) && math.IsNaN(g) || r == g {
				continue
			}
			return math.NaN()
		}
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.NaN()
		}
		s += r * r
		e += (r - g) * (r - g)
	}
	if e == 0 {
		return math.Inf(1)
	}
	if s == 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(s/e)
}

// compareOutputs compares every output of got with ref: float outputs by SQNR (the
// worst is returned), others exactly.
func compareOutputs(ref, got map[string]*onnxio.Tensor) (worst float64, err error) {
	worst = math.Inf(1)
	for name, r := range ref {
		g, ok := got[name]
		if !ok {
			return 0, fmt.Errorf("output %q missing", name)
		}
		if !reflect.DeepEqual(r.Shape, g.Shape) {
			return 0, fmt.Errorf("output %q: shape %v, want %v", name, g.Shape, r.Shape)
		}
		if r.Type.IsFloat() {
			rf, err1 := r.Float32s()
			gf, err2 := g.Float32s()
			if err := errors.Join(err1, err2); err != nil {
				return 0, err
			}
			s := sqnr(rf, gf)
			if math.IsNaN(s) {
				return 0, fmt.Errorf("output %q: non-finite values where the float32 model has finite ones", name)
			}
			worst = min(worst, s)
			continue
		}
		if r.Type != g.Type || !reflect.DeepEqual(r.Data, g.Data) {
			return 0, fmt.Errorf("output %q (%s): values differ from the float32 model", name, r.Type)
		}
	}
	return worst, nil
}

// fp16Exact rounds v to a value exactly representable in both float16 and bfloat16
// (bfloat16 rounding, magnitudes below 2^-14 set to zero), so that feeding it through a
// Cast to either type is exact.
func fp16Exact(v float32) float32 {
	v = onnxio.BFloat16FromFloat32(v).Float32()
	if math.Abs(float64(v)) < 1.0/16384 {
		return 0
	}
	return float16.Fromfloat32(v).Float32()
}

func normalData(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = fp16Exact(float32(rng.NormFloat64()))
	}
	return d
}

func uniformData(rng *rand.Rand, n int, lo, hi float64) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = fp16Exact(float32(lo + (hi-lo)*rng.Float64()))
	}
	return d
}

func numel(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// valueType returns the element type a converted graph gives name, looking at graph
// inputs, initializers, Constant and Cast nodes (the only places a test needs).
func valueType(g *onnxpb.GraphProto, name string) onnxio.DataType {
	for _, vi := range g.GetInput() {
		if vi.GetName() == name {
			return elemType(vi)
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return onnxio.DataType(t.GetDataType())
		}
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != name {
				continue
			}
			switch n.GetOpType() {
			case "Cast":
				return onnxio.DataType(attrInt(n, "to", 0))
			case "Constant":
				if t, ok := onnxio.ConstantNodeTensor(n); ok {
					return onnxio.DataType(t.GetDataType())
				}
			}
		}
	}
	return onnxio.TypeUndefined
}

func countOps(g *onnxpb.GraphProto, op string) int {
	k := 0
	for _, n := range g.GetNode() {
		if n.GetOpType() == op {
			k++
		}
	}
	return k
}

func findNode(g *onnxpb.GraphProto, op string) *onnxpb.NodeProto {
	for _, n := range g.GetNode() {
		if n.GetOpType() == op {
			return n
		}
	}
	return nil
}

func mustCheck(t testing.TB, m *onnxio.Model) {
	t.Helper()
	if err := onnxio.Check(m); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

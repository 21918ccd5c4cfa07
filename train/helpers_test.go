package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// genKind says how test data is drawn.
type genKind int

const (
	normal   genKind = iota // N(0, 1)
	positive                // U[0.5, 2)
	awayZero                // N(0, 1) with |x| >= 0.1, for kinks at 0
	distinct                // a shuffled grid 0.05 apart, for max pooling (no ties)
	small                   // N(0, 0.1²)
	// shuffled grids 0.3 apart around 0, offset by 0.07, 0.22 and 0.145: no value within
	// 0.07 of a kink at a multiple of 0.5 (hard activations, Clip bounds), and values of
	// different grids at least 0.075 apart (Max, Min)
	spreadA
	spreadB
	spreadC
)

func genData(r *rand.Rand, kind genKind, n int) []float32 {
	d := make([]float32, n)
	switch kind {
	case spreadA, spreadB, spreadC:
		off := map[genKind]float32{spreadA: 0.07, spreadB: 0.22, spreadC: 0.145}[kind]
		for i := range d {
			d[i] = float32(i-n/2)*0.3 + off
		}
		r.Shuffle(n, func(i, j int) { d[i], d[j] = d[j], d[i] })
		return d
	case distinct:
		for i := range d {
			d[i] = float32(i-n/2) * 0.05
		}
		r.Shuffle(n, func(i, j int) { d[i], d[j] = d[j], d[i] })
		return d
	}
	for i := range d {
		switch kind {
		case positive:
			d[i] = float32(0.5 + 1.5*r.Float64())
		case awayZero:
			v := r.NormFloat64()
			if math.Abs(v) < 0.1 {
				v = math.Copysign(0.1+math.Abs(v), v)
			}
			d[i] = float32(v)
		case small:
			d[i] = float32(0.1 * r.NormFloat64())
		default:
			d[i] = float32(r.NormFloat64())
		}
	}
	return d
}

func i64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// gb builds a test graph and its inputs.
type gb struct {
	b      *onnxio.Builder
	r      *rand.Rand
	inputs map[string]*Tensor
}

func newGB(opset int64, seed uint64) *gb {
	return &gb{b: onnxio.NewBuilder(opset), r: rand.New(rand.NewPCG(seed, 7)), inputs: map[string]*Tensor{}}
}

// in declares a float graph input with random data.
func (g *gb) in(name string, kind genKind, shape ...int) string {
	g.b.Input(name, onnxio.TypeFloat, i64s(shape))
	g.inputs[name] = NewTensor(shape, genData(g.r, kind, numel(shape)))
	return name
}

// inInts declares an int64 graph input with the given data.
func (g *gb) inInts(name string, shape []int, data ...int64) string {
	g.b.Input(name, onnxio.TypeInt64, i64s(shape))
	g.inputs[name] = NewInt64Tensor(shape, data)
	return name
}

// param adds a float initializer (a trainable parameter) with random data.
func (g *gb) param(name string, kind genKind, shape ...int) string {
	return g.b.Initializer(name, onnxio.NewTensor(i64s(shape), genData(g.r, kind, numel(shape))))
}

// ints adds an int64 initializer.
func (g *gb) ints(name string, v ...int64) string {
	return g.b.Initializer(name, onnxio.NewTensor([]int64{int64(len(v))}, v))
}

func (g *gb) out(name string) { g.b.Output(name, onnxio.TypeFloat, nil) }

func (g *gb) outInts(name string) { g.b.Output(name, onnxio.TypeInt64, nil) }

func (g *gb) model(t testing.TB) *onnxio.Model {
	t.Helper()
	m, err := g.b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runORT runs m in onnxruntime.
func runORT(t testing.TB, m *onnxio.Model, inputs map[string]*Tensor) map[string]*Tensor {
	t.Helper()
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Threads: 1})
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
	out := map[string]*Tensor{}
	for k, v := range res {
		tt, err := FromONNX(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = tt
	}
	return out
}

// relErr is max|a − b| / max(max|b|, 1e-6): the error relative to the reference's scale.
func relErr(a, b []float32) float64 {
	var d, s float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = math.Max(s, math.Abs(float64(b[i])))
	}
	return d / math.Max(s, 1e-6)
}

// compareORT runs m in the engine (inference mode) and in onnxruntime and returns the
// worst relative error over the outputs.
func compareORT(t testing.TB, m *onnxio.Model, inputs map[string]*Tensor) float64 {
	t.Helper()
	g, err := Compile(m, CompileOptions{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	tape, err := g.Forward(inputs, false)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	ref := runORT(t, m, inputs)
	worst := 0.0
	for _, name := range g.Outputs() {
		got, want := tape.Output(name), ref[name]
		if want == nil {
			t.Fatalf("onnxruntime gave no %q", name)
		}
		if !slices.Equal(got.Shape, want.Shape) {
			t.Fatalf("output %q: shape %v, onnxruntime %v", name, got.Shape, want.Shape)
		}
		if got.DType != want.DType {
			t.Fatalf("output %q: %s, onnxruntime %s", name, got.DType, want.DType)
		}
		if got.DType == Int64 {
			if !slices.Equal(got.Ints, want.Ints) {
				t.Fatalf("output %q: %v, onnxruntime %v", name, got.Ints, want.Ints)
			}
			continue
		}
		worst = math.Max(worst, relErr(got.Data, want.Data))
	}
	return worst
}

// gradResult is the outcome of a finite-difference check.
type gradResult struct {
	worst   float64 // the largest |fd − analytic| / max(|fd|, |analytic|, floor)
	where   string
	checked int
}

// gradCheck compares Backward's gradients for every float input and parameter with
// central finite differences of L = Σ R·Y (R random, one per float output; the sum in
// float64). At most perTensor elements of each tensor are checked.
func gradCheck(t testing.TB, m *onnxio.Model, inputs map[string]*Tensor, training bool, eps float64, perTensor int) gradResult {
	t.Helper()
	return gradCheckWith(t, m, CompileOptions{InputGrads: true, Seed: 1, Trainable: trainAll}, inputs, training, eps, perTensor)
}

// gradCheckWith is gradCheck with the given compile options.
func gradCheckWith(t testing.TB, m *onnxio.Model, opts CompileOptions, inputs map[string]*Tensor, training bool, eps float64, perTensor int) gradResult {
	t.Helper()
	g, err := Compile(m, opts)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	tape, err := g.Forward(inputs, training)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	r := rand.New(rand.NewPCG(99, 1))
	seeds := map[string]*Tensor{}
	for _, name := range g.Outputs() {
		y := tape.Output(name)
		if y.DType != Float32 {
			continue
		}
		seeds[name] = NewTensor(y.Shape, genData(r, normal, len(y.Data)))
	}
	if err := tape.Backward(seeds); err != nil {
		t.Fatalf("backward: %v", err)
	}
	loss := func() float64 {
		tp, err := g.Forward(inputs, training)
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		var s float64
		for name, sd := range seeds {
			for i, v := range tp.Output(name).Data {
				s += float64(v) * float64(sd.Data[i])
			}
		}
		tp.Release()
		return s
	}
	type target struct {
		name string
		x    []float32
		grad []float32
	}
	var targets []target
	for name, x := range inputs {
		if x.DType != Float32 {
			continue
		}
		gr := tape.Grad(name)
		var gd []float32
		if gr != nil {
			gd = slices.Clone(gr.Data)
		} else {
			gd = make([]float32, len(x.Data))
		}
		targets = append(targets, target{name, x.Data, gd})
	}
	for _, p := range g.Params() {
		targets = append(targets, target{p.Name, p.Value.Data, slices.Clone(p.Grad.Data)})
	}
	slices.SortFunc(targets, func(a, b target) int { return strings.Compare(a.name, b.name) })
	res := gradResult{}
	for _, tg := range targets {
		idx := make([]int, len(tg.x))
		for i := range idx {
			idx[i] = i
		}
		if len(idx) > perTensor {
			r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			idx = idx[:perTensor]
		}
		for _, i := range idx {
			orig := tg.x[i]
			tg.x[i] = orig + float32(eps)
			lp := loss()
			tg.x[i] = orig - float32(eps)
			lm := loss()
			tg.x[i] = orig
			// the step actually taken in float32
			h := float64(orig+float32(eps)) - float64(orig-float32(eps))
			fd := (lp - lm) / h
			an := float64(tg.grad[i])
			e := math.Abs(fd-an) / math.Max(math.Max(math.Abs(fd), math.Abs(an)), 0.1)
			res.checked++
			if e > res.worst {
				res.worst = e
				res.where = tg.name
			}
		}
	}
	return res
}

// onnxioScalar is a float32 scalar onnxio tensor.
func onnxioScalar(v float32) *onnxio.Tensor { return onnxio.NewTensor([]int64{}, []float32{v}) }

// trainAll makes every float initializer read by a differentiable input trainable, so
// that gradient checks cover the constants of a test graph too.
func trainAll(string) bool { return true }

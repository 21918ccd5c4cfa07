package quantize

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// The tests in this file cover every rule of rules.go on a small graph built in Go:
// calibrate (calibrate.Collect, minmax) on the very data the graphs then run on, quantize,
// and compare onnxruntime's outputs of the float graph and of the QDQ graph (unoptimized:
// the QDQ semantics; and fully optimized: onnxruntime's int8 kernels) within a bound
// derived from the scales written in the QDQ graph. Ops that only move data must give
// exactly the float op applied to the quantized-dequantized input.

// ruleGraph builds one test graph and its data.
type ruleGraph struct {
	t      *testing.T
	b      *onnxio.Builder
	rng    *rand.Rand
	shapes map[string][]int64 // float inputs
	spread map[string]float64 // standard deviation of each input's data
	consts map[string]*onnxio.Tensor
	outs   []string
	opts   Options
}

func newRuleGraph(t *testing.T, opset int64) *ruleGraph {
	t.Helper()
	return &ruleGraph{t: t, b: onnxio.NewBuilder(opset), rng: rand.New(rand.NewPCG(11, uint64(len(t.Name())))),
		shapes: map[string][]int64{}, spread: map[string]float64{}, consts: map[string]*onnxio.Tensor{}, opts: DefaultOptions()}
}

// input adds a float input of N(0, std²) data.
func (g *ruleGraph) input(name string, std float64, shape ...int64) string {
	g.shapes[name], g.spread[name] = shape, std
	return g.b.Input(name, onnxio.TypeFloat, shape)
}

// weight adds a float initializer of N(mean, std²) values.
func (g *ruleGraph) weight(name string, mean, std float64, shape ...int64) string {
	n, _ := onnxio.NumElements(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + std*g.rng.NormFloat64())
	}
	return g.constant(name, onnxio.NewTensor(shape, v))
}

func (g *ruleGraph) constant(name string, t *onnxio.Tensor) string {
	g.consts[name] = t
	return g.b.Initializer(name, t)
}

func (g *ruleGraph) ints(name string, v ...int64) string {
	return g.constant(name, onnxio.NewTensor([]int64{int64(len(v))}, v))
}

// output marks values as graph outputs (types and shapes left to onnxruntime).
func (g *ruleGraph) output(names ...string) {
	for _, n := range names {
		g.b.Graph().Output = append(g.b.Graph().Output, &onnxpb.ValueInfoProto{Name: &n})
		g.outs = append(g.outs, n)
	}
}

// op renames the single output of the node just added to name.
func (g *ruleGraph) op(name, opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	g.b.Op(opType, inputs, attrs...)
	n := g.b.Graph().Node[len(g.b.Graph().Node)-1]
	n.Output[0] = name
	n.Name = &name
	return name
}

// ruleRun is a quantized test graph with the outputs of both graphs on each feed.
type ruleRun struct {
	g       *ruleGraph
	fm, qm  *onnxio.Model
	res     *Result
	feeds   []map[string]*onnxio.Tensor
	ix      *onnxio.Index
	float   []map[string]*onnxio.Tensor // float graph, optimized
	qdqNone []map[string]*onnxio.Tensor // QDQ graph, unoptimized
	qdqAll  []map[string]*onnxio.Tensor // QDQ graph, optimized (int8 kernels)
}

// run calibrates, quantizes (mode static, or dynamic) and runs both graphs.
func (g *ruleGraph) run(dynamic bool) *ruleRun {
	t := g.t
	t.Helper()
	fm, err := g.b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if err := onnxio.Check(fm); err != nil {
		t.Fatal(err)
	}
	r := &ruleRun{g: g, fm: fm}
	for range 3 {
		feed := map[string]*onnxio.Tensor{}
		for name, shape := range g.shapes {
			n, _ := onnxio.NumElements(shape)
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(g.spread[name] * g.rng.NormFloat64())
			}
			feed[name] = onnxio.NewTensor(shape, v)
		}
		r.feeds = append(r.feeds, feed)
	}
	r.qm = fm.Clone()
	if dynamic {
		r.res, err = Dynamic(r.qm, g.opts)
	} else {
		r.res, err = Static(r.qm, minmaxTable(t, fm, r.feeds), g.opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.ix = onnxio.NewIndex(r.qm.Graph())
	fs := session(t, fm, "all")
	qn := session(t, r.qm, "none")
	qa := session(t, r.qm, "all")
	for _, feed := range r.feeds {
		for _, s := range []struct {
			s   *ort.Session
			dst *[]map[string]*onnxio.Tensor
		}{{fs, &r.float}, {qn, &r.qdqNone}, {qa, &r.qdqAll}} {
			out, err := s.s.Run(feed)
			if err != nil {
				t.Fatal(err)
			}
			*s.dst = append(*s.dst, out)
		}
	}
	return r
}

// init returns the initializer name, decoded.
func (r *ruleRun) init(name string) *onnxio.Tensor {
	r.g.t.Helper()
	tp, ok := r.ix.Initializers[name]
	if !ok {
		r.g.t.Fatalf("no initializer %q", name)
	}
	t, err := onnxio.DecodeTensor(tp)
	if err != nil {
		r.g.t.Fatal(err)
	}
	return t
}

// quantized reports whether tensor name got quantization parameters.
func (r *ruleRun) quantized(name string) bool {
	_, ok := r.ix.Initializers[name+"_scale"]
	return ok
}

// scale returns the scales of tensor name (activation, weight or "<out>_bias").
func (r *ruleRun) scale(name string) []float32 {
	return r.init(name + "_scale").Data.([]float32)
}

func (r *ruleRun) s(name string) float64 { return float64(r.scale(name)[0]) }

// zeroPoint returns the zero points of name and their element type.
func (r *ruleRun) zeroPoint(name string) ([]int32, onnxio.DataType) {
	t := r.init(name + "_zero_point")
	var out []int32
	switch d := t.Data.(type) {
	case []int8:
		out = convertInts32(d)
	case []uint8:
		out = convertInts32(d)
	case []int16:
		out = convertInts32(d)
	case []uint16:
		out = convertInts32(d)
	case []int32:
		out = d
	}
	return out, t.Type
}

func convertInts32[T int8 | uint8 | int16 | uint16](v []T) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// ops counts the op types of the QDQ graph.
func (r *ruleRun) ops() map[string]int { return onnxio.Summarize(r.qm).Ops }

// fakeQuant is DequantizeLinear(QuantizeLinear(x)) as onnxruntime computes it.
func fakeQuant(x []float32, scale float32, zp int32, q QRange) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(Quantize(v, scale, zp, q)-zp) * scale
	}
	return out
}

// maxAbs is the largest |x| of float input name over all feeds.
func (r *ruleRun) maxAbs(name string) float64 {
	m := 0.0
	for _, f := range r.feeds {
		for _, v := range f[name].Data.([]float32) {
			m = max(m, math.Abs(float64(v)))
		}
	}
	return m
}

// within checks |qdq - float| <= bound on every element of output out, in the
// unoptimized and the optimized QDQ graph, and logs how much of the bound was used.
func (r *ruleRun) within(out string, bound float64) {
	t := r.g.t
	t.Helper()
	if !(bound > 0) || math.IsInf(bound, 0) {
		t.Fatalf("%s: bad bound %g", out, bound)
	}
	worst := 0.0
	for i := range r.feeds {
		ref := r.float[i][out].Data.([]float32)
		for _, q := range []struct {
			what string
			out  map[string]*onnxio.Tensor
		}{{"unoptimized", r.qdqNone[i]}, {"optimized", r.qdqAll[i]}} {
			got := q.out[out].Data.([]float32)
			for k := range ref {
				d := math.Abs(float64(got[k]) - float64(ref[k]))
				// float32 rounding of either computation: a relative 1e-6 plus a tiny absolute term
				if d > bound+1e-6*math.Abs(float64(ref[k]))+1e-7 {
					t.Fatalf("%s (%s, feed %d, element %d): |%g - %g| = %g > bound %g", out, q.what, i, k, got[k], ref[k], d, bound)
				}
				worst = max(worst, d)
			}
		}
	}
	t.Logf("%s: max error %.3g, bound %.3g (%.0f%%)", out, worst, bound, 100*worst/bound)
}

// exact checks that output out of the QDQ graph (both optimization levels) equals the
// float graph's output on the fake-quantized inputs: what an op that only moves data
// must give. Inputs without parameters are fed as they are.
func (r *ruleRun) exact(outs ...string) {
	t := r.g.t
	t.Helper()
	fs := session(t, r.fm, "all")
	for i, feed := range r.feeds {
		fq := map[string]*onnxio.Tensor{}
		for name, x := range feed {
			fq[name] = x
			if r.quantized(name) {
				zp, typ := r.zeroPoint(name)
				qr, _ := IntRange(typ, false, false)
				fq[name] = onnxio.NewTensor(x.Shape, fakeQuant(x.Data.([]float32), r.scale(name)[0], zp[0], qr))
			}
		}
		want, err := fs.Run(fq)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range outs {
			for _, got := range []map[string]*onnxio.Tensor{r.qdqNone[i], r.qdqAll[i]} {
				if g, w := fmt.Sprint(got[out].Data), fmt.Sprint(want[out].Data); g != w {
					t.Fatalf("%s (feed %d): QDQ graph gives\n%.300s\nthe float op on the quantized input gives\n%.300s", out, i, g, w)
				}
			}
		}
	}
}

// weightAxis checks how weight w was stored: an integer initializer of type typ behind
// one DequantizeLinear with per-channel axis (-1: per tensor) and one scale per channel.
func (r *ruleRun) weightStored(w string, typ onnxio.DataType, axis int) {
	t := r.g.t
	t.Helper()
	q := r.init(w + "_quantized")
	if q.Type != typ {
		t.Errorf("weight %s stored as %s, want %s", w, q.Type, typ)
	}
	dq := r.ix.Consumers[w+"_quantized"]
	if len(dq) != 1 || dq[0].GetOpType() != "DequantizeLinear" {
		t.Fatalf("weight %s: consumers %v, want one DequantizeLinear", w, dq)
	}
	a := onnxio.Attr(dq[0], "axis")
	scales := r.scale(w)
	switch {
	case axis < 0 && (a != nil || len(scales) != 1):
		t.Errorf("weight %s: per-tensor expected, got axis %v and %d scales", w, a, len(scales))
	case axis >= 0 && (a == nil || a.GetI() != int64(axis)):
		t.Errorf("weight %s: per-channel axis %v, want %d", w, a, axis)
	case axis >= 0 && int64(len(scales)) != q.Shape[axis]:
		t.Errorf("weight %s: %d scales for %d channels on axis %d", w, len(scales), q.Shape[axis], axis)
	}
	if _, still := r.ix.Initializers[w]; still {
		t.Errorf("weight %s is still stored in float", w)
	}
}

// biasInt32 checks that the bias of the node producing out is int32 with scale = input
// scale x weight scale (per channel) and zero point 0.
func (r *ruleRun) biasInt32(out, in, w string) {
	t := r.g.t
	t.Helper()
	b := r.init(out + "_bias_quantized")
	if b.Type != onnxio.TypeInt32 {
		t.Fatalf("bias of %s is %s, want int32", out, b.Type)
	}
	xs, ws, bs := r.scale(in)[0], r.scale(w), r.scale(out+"_bias")
	if len(bs) != len(ws) {
		t.Fatalf("bias of %s: %d scales, weight %d", out, len(bs), len(ws))
	}
	for c := range ws {
		if bs[c] != xs*ws[c] {
			t.Errorf("bias of %s channel %d: scale %g, want %g x %g = %g", out, c, bs[c], xs, ws[c], xs*ws[c])
		}
	}
	zp, typ := r.zeroPoint(out + "_bias")
	if typ != onnxio.TypeInt32 || slices.ContainsFunc(zp, func(z int32) bool { return z != 0 }) {
		t.Errorf("bias of %s: zero points %v (%s), want int32 0", out, zp, typ)
	}
}

// linearBound bounds |ŷ - y| for y = Σ_k w_ck x_k + b_c with x̂ = x + e_x (|e_x| <= sx/2,
// |x| <= xmax), ŵ = w + e_w (|e_w| <= sw_c/2) and b̂ = b + e_b (|e_b| <= sx·sw_c/2 when
// the bias is int32):
//
//	|ŷ - y| <= Σ_k (|w_ck| + sw_c/2)·sx/2 + xmax·sw_c/2  (+ sx·sw_c/2)
//
// maximized over the output channels c (axis of w), plus 1.5 output steps when the
// output is quantized (half a step of rounding, one more for the int8 kernel's own
// requantization). sx is 0 for a float (unquantized) activation.
func (r *ruleRun) linearBound(w *onnxio.Tensor, axis int, sx float64, sw []float32, xmax float64, intBias bool, out string) float64 {
	data := w.Data.([]float32)
	ch := int(w.Shape[axis])
	inner := 1
	for _, d := range w.Shape[axis+1:] {
		inner *= int(d)
	}
	sumAbs := make([]float64, ch)
	count := make([]float64, ch)
	for i, v := range data {
		c := (i / inner) % ch
		sumAbs[c] += math.Abs(float64(v))
		count[c]++
	}
	worst := 0.0
	for c := range ch {
		s := float64(sw[0])
		if len(sw) > 1 {
			s = float64(sw[c])
		}
		b := (sumAbs[c]+count[c]*s/2)*sx/2 + xmax*count[c]*s/2
		if intBias {
			b += sx * s / 2
		}
		worst = max(worst, b)
	}
	if r.quantized(out) {
		worst += 1.5 * r.s(out)
	}
	return worst
}

// outStep is the output term of the non-linear rules: half a step of rounding plus one
// step for onnxruntime's int8 kernels.
func (r *ruleRun) outStep(out string) float64 {
	if !r.quantized(out) {
		return 0
	}
	return 1.5 * r.s(out)
}

func TestRuleConv(t *testing.T) {
	for _, tc := range []struct {
		name       string
		act        onnxio.DataType
		perChannel bool
		group      int64
	}{
		{"uint8 per-channel", onnxio.TypeUint8, true, 1},
		{"int8 per-channel", onnxio.TypeInt8, true, 1},
		{"uint8 per-tensor", onnxio.TypeUint8, false, 1},
		{"depthwise", onnxio.TypeUint8, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRuleGraph(t, 13)
			g.opts.ActivationType, g.opts.PerChannel = tc.act, tc.perChannel
			x := g.input("x", 1, 2, 4, 8, 8)
			cout := int64(6)
			if tc.group == 4 {
				cout = 8
			}
			w := g.weight("w", 0, 0.3, cout, 4/tc.group, 3, 3)
			// channel 1 gets weights 10x larger: per-channel scales must differ
			wt := g.consts[w]
			k := int(wt.Shape[1] * 9)
			for i := k; i < 2*k; i++ {
				wt.Data.([]float32)[i] *= 10
			}
			g.b.Graph().Initializer = slices.DeleteFunc(g.b.Graph().Initializer, func(p *onnxpb.TensorProto) bool { return p.GetName() == w })
			g.constant(w, wt)
			bias := g.weight("b", 0, 0.5, wt.Shape[0])
			y := g.op("y", "Conv", []string{x, w, bias}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1), onnxio.AttrInt("group", tc.group))
			g.output(y)
			r := g.run(false)
			axis := 0
			if !tc.perChannel {
				axis = -1
			}
			r.weightStored(w, onnxio.TypeInt8, axis)
			r.biasInt32(y, x, w)
			if !r.quantized(x) || !r.quantized(y) {
				t.Errorf("input and output of Conv need Q/DQ")
			}
			if _, typ := r.zeroPoint(x); typ != tc.act {
				t.Errorf("activation zero point %s, want %s", typ, tc.act)
			}
			if r.res.Quantized["Conv"] != 1 {
				t.Errorf("result %+v", r.res)
			}
			r.within(y, r.linearBound(wt, 0, r.s(x), r.scale(w), r.maxAbs(x), true, y))
			requireFused(t, r)
		})
	}
}

// requireFused checks that onnxruntime's optimized QDQ graph runs every quantized
// compute node as an int8 kernel.
func requireFused(t *testing.T, r *ruleRun) {
	t.Helper()
	if f := FusionReport(r.res, r.qm, optimized(t, r.qm)); f.Ratio != 1 || len(f.Float) > 0 {
		t.Errorf("fusion %+v", f)
	}
}

func TestRuleConvTranspose(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 1, 4, 5, 5)
	w := g.weight("w", 0, 0.3, 4, 3, 3, 3) // [Cin, Cout, kh, kw]: channels on axis 1
	bias := g.weight("b", 0, 0.5, 3)
	y := g.op("y", "ConvTranspose", []string{x, w, bias}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("strides", 2, 2))
	g.output(y)
	r := g.run(false)
	r.weightStored(w, onnxio.TypeInt8, 1)
	r.biasInt32(y, x, w)
	r.within(y, r.linearBound(g.consts[w], 1, r.s(x), r.scale(w), r.maxAbs(x), true, y))
}

func TestRuleGemm(t *testing.T) {
	for _, transB := range []int64{0, 1} {
		t.Run(fmt.Sprintf("transB=%d", transB), func(t *testing.T) {
			g := newRuleGraph(t, 13)
			x := g.input("x", 1, 4, 16)
			shape := []int64{16, 10}
			axis := 1
			if transB == 1 {
				shape, axis = []int64{10, 16}, 0
			}
			w := g.weight("w", 0, 0.3, shape...)
			bias := g.weight("b", 0, 0.5, 10)
			y := g.op("y", "Gemm", []string{x, w, bias}, onnxio.AttrInt("transB", transB))
			z := g.op("z", "Relu", []string{y}) // y is not a graph output: quantized
			h := g.op("h", "Gemm", []string{z, g.weight("w2", 0, 0.3, 10, 5), g.weight("b2", 0, 0.5, 5)})
			g.output(h)
			r := g.run(false)
			r.weightStored(w, onnxio.TypeInt8, axis)
			r.biasInt32(z, x, w) // the Relu folded: the Gemm writes z
			if r.quantized(h) {
				t.Errorf("a Gemm writing a graph output keeps it float")
			}
			if r.ops()["Relu"] != 0 || r.res.ActivationsFolded != 1 {
				t.Errorf("Relu after Gemm not folded: %v", r.ops())
			}
			if r.scale(z)[0] == 0 {
				t.Fatal("no scale")
			}
			// h: the error of z (its own bound) propagates through w2, plus w2's own.
			ez := r.linearBound(g.consts[w], axis, r.s(x), r.scale(w), r.maxAbs(x), true, z)
			lo, hi := rangeOf(r, z)
			zmax := max(math.Abs(lo), math.Abs(hi))
			// with x̂ error ez instead of sx/2: the same formula with sx = 2·ez
			r.within(h, r.linearBound(g.consts["w2"], 1, 2*ez, r.scale("w2"), zmax+ez, true, h))
			requireFused(t, r)
		})
	}
}

// rangeOf is the calibrated range of a tensor, recovered from its scale and zero point.
func rangeOf(r *ruleRun, name string) (float64, float64) {
	zp, typ := r.zeroPoint(name)
	qr, _ := IntRange(typ, false, false)
	s := r.s(name)
	return float64(qr.Min-zp[0]) * s, float64(qr.Max-zp[0]) * s
}

func TestRuleMatMul(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 2, 3, 16)
	w := g.weight("w", 0, 0.3, 16, 8)
	y := g.op("y", "MatMul", []string{x, w})
	z := g.op("z", "Sigmoid", []string{y})
	g.output(z)
	r := g.run(false)
	r.weightStored(w, onnxio.TypeInt8, 1)
	if !r.quantized(y) {
		t.Errorf("MatMul output read by a quantized op needs Q/DQ")
	}
	ey := r.linearBound(g.consts[w], 1, r.s(x), r.scale(w), r.maxAbs(x), false, y)
	// Sigmoid is 1/4-Lipschitz.
	r.within(z, ey/4+r.outStep(z))
	requireFused(t, r)
}

// TestRuleMatMulTwoActivations: a MatMul of two activations quantizes both inputs.
func TestRuleMatMulTwoActivations(t *testing.T) {
	g := newRuleGraph(t, 13)
	a := g.input("a", 1, 2, 4, 8)
	b := g.input("b", 1, 2, 8, 4)
	y := g.op("y", "MatMul", []string{a, b})
	g.output(y)
	r := g.run(false)
	if !r.quantized(a) || !r.quantized(b) {
		t.Fatalf("both inputs need Q/DQ")
	}
	// Σ_k |â b̂ - a b| <= K·(amax·sb/2 + bmax·sa/2 + sa·sb/4)
	sa, sb := r.s(a), r.s(b)
	r.within(y, 8*(r.maxAbs(a)*sb/2+r.maxAbs(b)*sa/2+sa*sb/4))
}

// TestRuleMove covers every op that only moves data: its input and output share one
// set of parameters, and the QDQ graph gives exactly the float op on the quantized input.
func TestRuleMove(t *testing.T) {
	type mk func(g *ruleGraph, x string) []string
	for _, tc := range []struct {
		op    string
		build mk
	}{
		{"Reshape", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "Reshape", []string{x, g.ints("shape", 2, -1)})}
		}},
		{"Transpose", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "Transpose", []string{x}, onnxio.AttrInts("perm", 0, 2, 3, 1))}
		}},
		{"Flatten", func(g *ruleGraph, x string) []string { return []string{g.op("y", "Flatten", []string{x})} }},
		{"Squeeze", func(g *ruleGraph, x string) []string {
			u := g.op("u", "Unsqueeze", []string{x, g.ints("axes", 1)})
			return []string{u, g.op("y", "Squeeze", []string{u, g.ints("axes2", 1)})}
		}},
		{"Slice", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "Slice", []string{x, g.ints("starts", 1, 2), g.ints("ends", 3, 6), g.ints("axes", 1, 3)})}
		}},
		{"Split", func(g *ruleGraph, x string) []string {
			outs := g.b.Node("Split", []string{x, g.ints("split", 1, 3)}, 2, onnxio.AttrInt("axis", 1))
			return outs
		}},
		{"Gather", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "Gather", []string{x, g.ints("idx", 3, 0, 0)}, onnxio.AttrInt("axis", 1))}
		}},
		{"MaxPool", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "MaxPool", []string{x}, onnxio.AttrInts("kernel_shape", 2, 2), onnxio.AttrInts("strides", 2, 2))}
		}},
		{"GlobalMaxPool", func(g *ruleGraph, x string) []string { return []string{g.op("y", "GlobalMaxPool", []string{x})} }},
		{"Resize", func(g *ruleGraph, x string) []string {
			scales := g.constant("scales", onnxio.NewTensor([]int64{4}, []float32{1, 1, 2, 2}))
			return []string{g.op("y", "Resize", []string{x, "", scales}, onnxio.AttrString("mode", "nearest"))}
		}},
		{"Pad", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "Pad", []string{x, g.ints("pads", 0, 0, 1, 2, 0, 0, 1, 2)})}
		}},
		{"Identity", func(g *ruleGraph, x string) []string { return []string{g.op("y", "Identity", []string{x})} }},
		{"DepthToSpace", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "DepthToSpace", []string{x}, onnxio.AttrInt("blocksize", 2))}
		}},
		{"SpaceToDepth", func(g *ruleGraph, x string) []string {
			return []string{g.op("y", "SpaceToDepth", []string{x}, onnxio.AttrInt("blocksize", 2))}
		}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			g := newRuleGraph(t, 13)
			x := g.input("x", 1, 2, 4, 6, 6)
			// x is quantized by its other reader, an Add (a rule of its own).
			g.output(g.op("a", "Add", []string{x, g.weight("c", 0, 1, 1)}))
			outs := tc.build(g, x)
			g.output(outs...)
			r := g.run(false)
			if r.res.Quantized[tc.op] == 0 {
				t.Fatalf("%s not quantized: %+v", tc.op, r.res)
			}
			for _, o := range outs {
				if !r.quantized(o) {
					t.Errorf("output %s has no Q/DQ", o)
					continue
				}
				if r.scale(o)[0] != r.scale(x)[0] {
					t.Errorf("output %s scale %g, input %g: a move op shares its input's parameters", o, r.scale(o)[0], r.scale(x)[0])
				}
				zo, _ := r.zeroPoint(o)
				zx, _ := r.zeroPoint(x)
				if zo[0] != zx[0] {
					t.Errorf("output %s zero point %d, input %d", o, zo[0], zx[0])
				}
				r.within(o, r.s(x)/2)
			}
			r.exact(outs...)
		})
	}
}

// TestRuleMoveNotQuantized: a move op whose input is not quantized, and a Pad with a
// non-zero constant, stay in float.
func TestRuleMoveNotQuantized(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 2, 4)
	y := g.op("y", "Transpose", []string{x})
	c := g.op("c", "Add", []string{y, g.weight("k", 0, 1, 1)})
	p := g.op("p", "Pad", []string{c, g.ints("pads", 0, 1, 0, 1), g.constant("v", onnxio.NewTensor([]int64{}, []float32{1.5}))})
	g.output(p)
	r := g.run(false)
	if r.res.Quantized["Transpose"] != 0 || r.quantized(x) {
		t.Errorf("Transpose of a float input quantized: %+v", r.res)
	}
	if r.res.Quantized["Pad"] != 0 || !slices.ContainsFunc(r.res.Skipped, func(s string) bool { return strings.Contains(s, "non-zero") }) {
		t.Errorf("Pad with 1.5: %+v", r.res)
	}
	r.within(p, r.s(y)/2+r.s("k")/2+r.outStep(c))
}

// TestRuleResizeLinear: a Resize that interpolates stays within the requantization of
// its output (half a step) on top of its input's error.
func TestRuleResizeLinear(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 1, 2, 4, 4)
	g.output(g.op("a", "Add", []string{x, g.weight("c", 0, 1, 1)}))
	scales := g.constant("scales", onnxio.NewTensor([]int64{4}, []float32{1, 1, 2, 2}))
	y := g.op("y", "Resize", []string{x, "", scales}, onnxio.AttrString("mode", "linear"))
	g.output(y)
	r := g.run(false)
	r.within(y, r.s(x)/2+r.s(y)/2+r.s(y))
}

func TestRuleAddMul(t *testing.T) {
	for _, op := range []string{"Add", "Mul"} {
		for _, act := range []onnxio.DataType{onnxio.TypeUint8, onnxio.TypeInt8} {
			t.Run(op+"/"+act.String(), func(t *testing.T) {
				g := newRuleGraph(t, 13)
				g.opts.ActivationType = act
				a := g.input("a", 1, 2, 3, 4)
				b := g.input("b", 2, 2, 3, 4)
				y := g.op("y", op, []string{a, b})
				c := g.weight("c", 0.5, 1, 4) // a constant operand, broadcast
				z := g.op("z", op, []string{y, c})
				g.output(z)
				r := g.run(false)
				for _, n := range []string{a, b, y, c, z} {
					if !r.quantized(n) {
						t.Errorf("%s has no Q/DQ", n)
					}
				}
				if _, typ := r.zeroPoint(y); typ != act {
					t.Errorf("zero point type %s, want %s", typ, act)
				}
				sa, sb, sy, sc := r.s(a), r.s(b), r.s(y), r.s(c)
				ylo, yhi := rangeOf(r, y)
				ymax := max(math.Abs(ylo), math.Abs(yhi))
				cmax := r.maxAbsConst(c)
				var ey, ez float64
				if op == "Add" {
					ey = sa/2 + sb/2 + 1.5*sy
					ez = ey + sc/2 + r.outStep(z)
				} else {
					ey = r.maxAbs(a)*sb/2 + r.maxAbs(b)*sa/2 + sa*sb/4 + 1.5*sy
					ez = ymax*sc/2 + cmax*ey + ey*sc/2 + r.outStep(z)
				}
				r.within(z, ez)
				requireKernel(t, r, "com.microsoft.QLinear"+op)
			})
		}
	}
}

func (r *ruleRun) maxAbsConst(name string) float64 {
	m := 0.0
	for _, v := range r.g.consts[name].Data.([]float32) {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// requireKernel checks that onnxruntime runs the group as kernel (Summarize's op name).
func requireKernel(t *testing.T, r *ruleRun, kernel string) {
	t.Helper()
	if n := onnxio.Summarize(optimized(t, r.qm)).Ops[kernel]; n == 0 {
		t.Errorf("onnxruntime's optimized graph has no %s", kernel)
	}
}

func TestRuleConcat(t *testing.T) {
	g := newRuleGraph(t, 13)
	a := g.input("a", 1, 2, 3, 4)
	b := g.input("b", 4, 2, 5, 4)
	y := g.op("y", "Concat", []string{a, b}, onnxio.AttrInt("axis", 1))
	g.output(y)
	r := g.run(false)
	if !r.quantized(a) || !r.quantized(b) || !r.quantized(y) {
		t.Fatal("Concat's inputs and output need their own Q/DQ")
	}
	if r.s(a) == r.s(b) {
		t.Errorf("inputs of different ranges share a scale")
	}
	r.within(y, max(r.s(a), r.s(b))/2+r.outStep(y))
	requireKernel(t, r, "com.microsoft.QLinearConcat")
}

func TestRulePools(t *testing.T) {
	for _, tc := range []struct {
		op     string
		attrs  []*onnxpb.AttributeProto
		kernel string
	}{
		{"AveragePool", []*onnxpb.AttributeProto{onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1)}, "com.microsoft.QLinearAveragePool"},
		{"GlobalAveragePool", nil, "com.microsoft.QLinearGlobalAveragePool"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			g := newRuleGraph(t, 13)
			x := g.input("x", 1, 2, 3, 6, 6)
			y := g.op("y", tc.op, []string{x}, tc.attrs...)
			g.output(y)
			r := g.run(false)
			if !r.quantized(x) || !r.quantized(y) {
				t.Fatal("pool input and output need Q/DQ")
			}
			// a mean of values each off by at most sx/2
			r.within(y, r.s(x)/2+r.outStep(y))
			requireKernel(t, r, tc.kernel)
		})
	}
}

func TestRuleSoftmax(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 3, 2, 10)
	y := g.op("y", "Softmax", []string{x}, onnxio.AttrInt("axis", -1))
	z := g.op("z", "Identity", []string{y}) // y inside the graph: quantized
	g.output(z)
	r := g.run(false)
	zp, _ := r.zeroPoint(y)
	if r.scale(y)[0] != float32(1.0/255) || zp[0] != 0 {
		t.Errorf("Softmax output scale %g zp %d, want the fixed [0, 1]: 1/255, 0", r.scale(y)[0], zp[0])
	}
	// softmax is 1/2-Lipschitz in the max norm (its Jacobian diag(p) - ppᵀ has rows of
	// absolute sum 2p_i(1-p_i) <= 1/2)
	r.within(z, r.s(x)/4+r.outStep(y))
}

// A Sigmoid or Softmax that writes a graph output keeps it float: its input is
// quantized, the scores are not rounded to 1/255.
func TestRuleScoreOutputsStayFloat(t *testing.T) {
	for _, op := range []string{"Sigmoid", "Softmax"} {
		t.Run(op, func(t *testing.T) {
			g := newRuleGraph(t, 13)
			x := g.input("x", 2, 2, 16)
			y := g.op("y", op, []string{x})
			g.output(y)
			r := g.run(false)
			if !r.quantized(x) || r.quantized(y) {
				t.Fatalf("%s: input quantized %v, output quantized %v; want the input only", op, r.quantized(x), r.quantized(y))
			}
			// Sigmoid is 1/4-Lipschitz, Softmax 1/2 in the max norm: within half an
			// input step, with no output rounding
			r.within(y, r.s(x)/2)
		})
	}
}

func TestRuleSigmoidLeakyRelu(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 2, 2, 16)
	s := g.op("s", "Sigmoid", []string{x})
	si := g.op("si", "Identity", []string{s}) // s inside the graph: quantized
	l := g.op("l", "LeakyRelu", []string{x}, onnxio.AttrFloat("alpha", 0.1))
	g.output(si, l)
	r := g.run(false)
	r.within(si, r.s(x)/8+r.outStep(s))
	r.within(l, r.s(x)/2+r.outStep(l))
	requireKernel(t, r, "com.microsoft.QLinearSigmoid")
	requireKernel(t, r, "com.microsoft.QLinearLeakyRelu")
}

// normBound bounds the error of (x - mean)/std·γ + β over groups of n values when each
// x is off by at most e: the centring is a projection (no larger in the 2-norm), and
// u/|u| moves by at most |Δu|/|u|, so |Δz_i| <= |Δz|₂ <= e·√n·√n/(√n·σ) = e√n/σ; twice
// that covers the second-order terms. σ is the smallest group standard deviation.
func normBound(x []float32, n int, e, gamma float64) float64 {
	minStd := math.Inf(1)
	for off := 0; off < len(x); off += n {
		var s, s2 float64
		for _, v := range x[off : off+n] {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		m := s / float64(n)
		minStd = min(minStd, math.Sqrt(s2/float64(n)-m*m))
	}
	return 2 * gamma * e * math.Sqrt(float64(n)) / minStd
}

func TestRuleNormalization(t *testing.T) {
	t.Run("LayerNormalization", func(t *testing.T) {
		g := newRuleGraph(t, 17)
		x := g.input("x", 2, 2, 3, 16)
		gm := g.weight("gamma", 1, 0.2, 16)
		y := g.op("y", "LayerNormalization", []string{x, gm, g.weight("beta", 0, 0.2, 16)}, onnxio.AttrInt("axis", -1))
		g.output(y)
		r := g.run(false)
		if !r.quantized(x) || !r.quantized(y) {
			t.Fatal("LayerNormalization input and output need Q/DQ")
		}
		worst := 0.0
		for _, f := range r.feeds {
			worst = max(worst, normBound(f[x].Data.([]float32), 16, r.s(x)/2, r.maxAbsConst(gm)))
		}
		r.within(y, worst+r.outStep(y))
	})
	t.Run("InstanceNormalization", func(t *testing.T) {
		g := newRuleGraph(t, 13)
		x := g.input("x", 2, 2, 3, 4, 4)
		gm := g.weight("gamma", 1, 0.2, 3)
		y := g.op("y", "InstanceNormalization", []string{x, gm, g.weight("beta", 0, 0.2, 3)})
		g.output(y)
		r := g.run(false)
		worst := 0.0
		for _, f := range r.feeds {
			worst = max(worst, normBound(f[x].Data.([]float32), 16, r.s(x)/2, r.maxAbsConst(gm)))
		}
		r.within(y, worst+r.outStep(y))
	})
}

func TestRuleArgMaxWhere(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 2, 8)
	v := g.input("v", 3, 2, 8)
	ci := g.input("ci", 1, 2, 8)
	am := g.op("am", "ArgMax", []string{x}, onnxio.AttrInt("axis", 1))
	cond := g.op("cond", "Greater", []string{ci, g.weight("zero", 0, 0, 1)})
	w := g.op("w", "Where", []string{cond, x, v})
	g.output(am, w)
	r := g.run(false)
	if r.res.Quantized["ArgMax"] != 1 || r.res.Quantized["Where"] != 1 || r.quantized(am) || r.quantized(cond) || r.quantized(ci) {
		t.Errorf("ArgMax quantizes its input only, Where its value inputs: %+v", r.res)
	}
	r.exact(am)
	r.within(w, max(r.s(x), r.s(v))/2+r.outStep(w))
}

// TestRuleReluClipFolding: Relu and Clip(0, 6) after a quantized Conv fold into its
// output range; a Clip whose lower bound is not 0, and any activation when activations
// are symmetric, stay.
func TestRuleReluClipFolding(t *testing.T) {
	for _, tc := range []struct {
		name      string
		act       string
		lo, hi    float32
		symmetric bool
		folded    bool
	}{
		{"Relu", "Relu", 0, 0, false, true},
		{"Clip 0..1", "Clip", 0, 1, false, true},
		{"Clip -1..1", "Clip", -1, 1, false, false},
		{"Relu symmetric int8", "Relu", 0, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRuleGraph(t, 13)
			if tc.symmetric {
				g.opts.ActivationType, g.opts.ActivationSymmetric = onnxio.TypeInt8, true
			}
			x := g.input("x", 1, 1, 3, 6, 6)
			w := g.weight("w", 0, 0.3, 4, 3, 3, 3)
			c := g.op("c", "Conv", []string{x, w, g.weight("b", 0, 0.2, 4)}, onnxio.AttrInts("kernel_shape", 3, 3))
			in := []string{c}
			if tc.act == "Clip" {
				in = append(in, g.constant("lo", onnxio.NewTensor([]int64{}, []float32{tc.lo})), g.constant("hi", onnxio.NewTensor([]int64{}, []float32{tc.hi})))
			}
			y := g.op("y", tc.act, in)
			z := g.op("z", "MaxPool", []string{y}, onnxio.AttrInts("kernel_shape", 2, 2))
			g.output(z)
			r := g.run(false)
			if got := r.ops()[tc.act] == 0; got != tc.folded {
				t.Fatalf("%s folded %v, want %v (%+v)", tc.act, got, tc.folded, r.res)
			}
			var e float64
			if tc.folded {
				if r.quantized(c) {
					t.Errorf("the Conv's own output should be gone, written as %s", y)
				}
				lo, hi := rangeOf(r, y)
				if lo != 0 || (tc.act == "Clip" && math.Abs(hi-float64(tc.hi)) > r.s(y)) {
					t.Errorf("folded range [%g, %g]", lo, hi)
				}
				e = r.linearBound(g.consts[w], 0, r.s(x), r.scale(w), r.maxAbs(x), true, y)
			} else {
				e = r.linearBound(g.consts[w], 0, r.s(x), r.scale(w), r.maxAbs(x), true, c)
				if r.quantized(y) {
					e += r.outStep(y)
				}
			}
			r.within(z, e)
			requireFused(t, r)
		})
	}
}

// TestRuleTensorRT: symmetric int8 everywhere, weights float behind a Q/DQ pair, float
// bias, outputs of compute ops not quantized, and one pair per consumer.
func TestRuleTensorRT(t *testing.T) {
	g := newRuleGraph(t, 13)
	g.opts.Profile = ProfileTensorRT
	x := g.input("x", 1, 1, 3, 6, 6)
	w1 := g.weight("w1", 0, 0.3, 4, 3, 3, 3)
	w2 := g.weight("w2", 0, 0.3, 4, 3, 1, 1)
	a := g.op("a", "Conv", []string{x, w1, g.weight("b1", 0, 0.2, 4)}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1))
	b := g.op("b", "Conv", []string{x, w2, g.weight("b2", 0, 0.2, 4)}, onnxio.AttrInts("kernel_shape", 1, 1))
	y := g.op("y", "Add", []string{a, b})
	g.output(y)
	r := g.run(false)
	ops := r.ops()
	// x read by two convs: two pairs; a and b (Add's inputs): one pair each; weights: a pair each
	if ops["QuantizeLinear"] != 6 || ops["DequantizeLinear"] != 6 {
		t.Errorf("Q/DQ counts %v, want 6 and 6", ops)
	}
	for _, w := range []string{w1, w2} {
		if _, ok := r.ix.Initializers[w]; !ok {
			t.Errorf("weight %s should stay float behind a Q/DQ pair", w)
		}
		zp, typ := r.zeroPoint(w)
		if typ != onnxio.TypeInt8 || slices.ContainsFunc(zp, func(z int32) bool { return z != 0 }) {
			t.Errorf("weight %s zero points %v %s", w, zp, typ)
		}
	}
	for _, n := range []string{x, a, b} {
		zp, typ := r.zeroPoint(n)
		if typ != onnxio.TypeInt8 || zp[0] != 0 {
			t.Errorf("%s: zero point %d %s, want symmetric int8", n, zp[0], typ)
		}
	}
	for name := range r.ix.Initializers {
		if strings.Contains(name, "_bias") {
			t.Errorf("tensorrt keeps float biases, found %s", name)
		}
	}
	if r.quantized(y) {
		t.Errorf("Add's output is not quantized for TensorRT")
	}
	ea := r.linearBound(g.consts[w1], 0, r.s(x), r.scale(w1), r.maxAbs(x), false, y)
	eb := r.linearBound(g.consts[w2], 0, r.s(x), r.scale(w2), r.maxAbs(x), false, y)
	r.within(y, ea+eb+r.s(a)/2+r.s(b)/2)
}

// TestRuleDynamic: MatMul and Gemm become DynamicQuantizeLinear + MatMulInteger with the
// activation's scale computed per run from its range (uint8, asymmetric).
func TestRuleDynamic(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 4, 16)
	w := g.weight("w", 0, 0.3, 16, 8)
	y := g.op("y", "MatMul", []string{x, w})
	w2 := g.weight("w2", 0, 0.3, 6, 8)
	z := g.op("z", "Gemm", []string{y, w2, g.weight("b2", 0, 0.5, 6)}, onnxio.AttrInt("transB", 1))
	g.output(y, z)
	r := g.run(true)
	ops := r.ops()
	if ops["MatMul"] != 0 || ops["Gemm"] != 0 || ops["DynamicQuantizeLinear"] != 2 || ops["MatMulInteger"] != 2 {
		t.Errorf("ops %v", ops)
	}
	// per feed: the dynamic scale of x is (max(x, 0) - min(x, 0))/255
	dyn := func(name string, outs []map[string]*onnxio.Tensor, i int) float64 {
		var v []float32
		if outs == nil {
			v = r.feeds[i][name].Data.([]float32)
		} else {
			v = outs[i][name].Data.([]float32)
		}
		lo, hi := minMax(v)
		return (float64(max(hi, 0)) - float64(min(lo, 0))) / 255
	}
	ey, ez := 0.0, 0.0
	for i := range r.feeds {
		sx := dyn(x, nil, i)
		ey = max(ey, r.linearBound(g.consts[w], 1, sx, r.scale(w), r.maxAbs(x), false, "none"))
	}
	for i := range r.feeds {
		sy := dyn(y, r.float, i) * 1.01 // y̌ of the QDQ graph: its range within ey of y's
		ymax := 0.0
		for _, v := range r.float[i][y].Data.([]float32) {
			ymax = max(ymax, math.Abs(float64(v)))
		}
		// z reads y with error ey, quantized again with step sy
		ez = max(ez, r.linearBound(g.consts[w2], 0, 2*ey+sy, r.scale(w2), ymax+ey, false, "none"))
	}
	r.within(y, ey)
	r.within(z, ez)
}

// TestRuleInt16Override: a tensor overridden to int16 gets int16 parameters (and a step
// 256 times finer), the rest stays uint8.
func TestRuleInt16Override(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 2, 8)
	y := g.op("y", "Sigmoid", []string{x})
	z := g.op("z", "Softmax", []string{y})
	zz := g.op("zz", "Identity", []string{z}) // z inside the graph: quantized
	g.output(y, zz)
	g.opts.Overrides = map[string]Override{x: {Type: "int16"}, y: {Type: "uint16"}}
	r := g.run(false)
	_, tx := r.zeroPoint(x)
	_, ty := r.zeroPoint(y)
	_, tz := r.zeroPoint(z)
	if tx != onnxio.TypeInt16 || ty != onnxio.TypeUint16 || tz != onnxio.TypeUint8 {
		t.Errorf("types %s %s %s, want int16 uint16 uint8", tx, ty, tz)
	}
	// opset 13: 16-bit Q/DQ come from onnxruntime's com.microsoft domain
	for _, n := range r.qm.Graph().GetNode() {
		if strings.HasSuffix(n.GetOpType(), "QuantizeLinear") && strings.Contains(n.GetInput()[0], "z") == (n.GetDomain() == "com.microsoft") {
			t.Errorf("%s %s in domain %q", n.GetOpType(), n.GetName(), n.GetDomain())
		}
	}
	lo, hi := rangeOf(r, x)
	if want := (hi - lo) / 65535; math.Abs(r.s(x)-want) > 1e-6*want {
		t.Errorf("int16 scale %g, want %g", r.s(x), want)
	}
	r.within(y, r.s(x)/8+r.outStep(y))
	r.within(zz, (r.s(x)/8+r.outStep(y))/2+r.outStep(z))
}

// TestRuleOverrideRange: an override's min/max replace the calibrated range.
func TestRuleOverrideRange(t *testing.T) {
	g := newRuleGraph(t, 13)
	x := g.input("x", 1, 2, 8)
	y := g.op("y", "Sigmoid", []string{x})
	g.output(y)
	lo, hi := float32(-8), float32(8)
	g.opts.Overrides = map[string]Override{x: {Min: &lo, Max: &hi}}
	r := g.run(false)
	if r.s(x) != float64(float32(16.0/255)) {
		t.Errorf("override range: scale %g, want 16/255", r.s(x))
	}
	r.within(y, r.s(x)/8+r.outStep(y))
}

// TestRuleUint8SymmetricWeightsDeadChannel: uint8 symmetric per-channel weights with an
// all-zero channel: that channel gets scale 1 and zero point 0 (onnxruntime's
// compute_scale_zp), the others the middle of the range (127; 64 with 7-bit weights), and
// onnxruntime still runs the int8 kernel right.
func TestRuleUint8SymmetricWeightsDeadChannel(t *testing.T) {
	g := newRuleGraph(t, 13)
	g.opts.WeightType = onnxio.TypeUint8
	x := g.input("x", 1, 1, 3, 6, 6)
	w := g.weight("w", 0, 0.3, 4, 3, 3, 3)
	wt := g.consts[w]
	for i := 27; i < 54; i++ {
		wt.Data.([]float32)[i] = 0
	}
	g.b.Graph().Initializer = slices.DeleteFunc(g.b.Graph().Initializer, func(p *onnxpb.TensorProto) bool { return p.GetName() == w })
	g.constant(w, wt)
	y := g.op("y", "Conv", []string{x, w, g.weight("b", 0, 0.2, 4)}, onnxio.AttrInts("kernel_shape", 3, 3))
	g.output(y)
	r := g.run(false)
	zp, typ := r.zeroPoint(w)
	qr, _ := IntRange(onnxio.TypeUint8, true, g.opts.ReduceRange)
	mid := int32(math.Round(float64(qr.Min+qr.Max) / 2)) // 127, or 64 with 7-bit weights
	if typ != onnxio.TypeUint8 || !slices.Equal(zp, []int32{mid, 0, mid, mid}) || r.scale(w)[1] != 1 {
		t.Errorf("zero points %v (%s), scales %v: want %d but 0 (scale 1) for the dead channel", zp, typ, r.scale(w), mid)
	}
	r.weightStored(w, onnxio.TypeUint8, 0)
	r.within(y, r.linearBound(wt, 0, r.s(x), r.scale(w), r.maxAbs(x), true, y))
	requireFused(t, r)
}

// TestRulesCovered fails when rules.go gains an op type no test above exercises.
func TestRulesCovered(t *testing.T) {
	tested := []string{"Conv", "ConvTranspose", "Gemm", "MatMul", "Reshape", "Transpose", "Flatten", "Squeeze",
		"Unsqueeze", "Slice", "Split", "Gather", "MaxPool", "GlobalMaxPool", "Resize", "Pad", "Identity",
		"DepthToSpace", "SpaceToDepth", "Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool", "Softmax",
		"Sigmoid", "LeakyRelu", "LayerNormalization", "InstanceNormalization", "ArgMax", "Where", "Relu", "Clip"}
	for _, op := range SupportedOps() {
		if !slices.Contains(tested, op) {
			t.Errorf("rule %s has no test in rules_test.go", op)
		}
	}
}

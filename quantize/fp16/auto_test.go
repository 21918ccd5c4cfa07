package fp16

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// overflowModel is an 11-node float32 MLP where scale_up multiplies activations by 1e5
// and scale_down divides them by 2e5. In float16 both constants are beyond 65504 and
// clamp to it (Report.Clamped), so the pair stops halving its input; on hardware with
// float16 arithmetic the products (up to a few 1e5) would also overflow. onnxruntime's
// CPU provider has no float16 Mul or Div kernel: it computes both in float32 behind
// Casts and drops the Cast pair between them, so here the clamped constants are what
// fails. Either way only the two nodes together fix it: with one of them float32 the
// other still uses its clamped constant.
func overflowModel(t *testing.T) (*graphBuilder, *onnxio.Model) {
	gb := newGraph(17)
	x := gb.input("x", 8, 16)
	w := func(name string, shape ...int64) string {
		d := normalData(gb.rng, numel(shape))
		for i := range d {
			d[i] /= 4
		}
		return gb.init(name, shape, d)
	}
	up := gb.init("k_up", []int64{}, []float32{1e5})
	down := gb.init("k_down", []int64{}, []float32{2e5})
	h := gb.node("mm1", "MatMul", []string{x, w("w1", 16, 16)})
	h = gb.node("add1", "Add", []string{h, w("b1", 16)})
	h = gb.node("relu", "Relu", []string{h})
	h = gb.node("scale_up", "Mul", []string{h, up})
	h = gb.node("scale_down", "Div", []string{h, down})
	h = gb.node("mm2", "MatMul", []string{h, w("w2", 16, 8)})
	h = gb.node("add2", "Add", []string{h, w("b2", 8)})
	h = gb.node("tanh", "Tanh", []string{h})
	h = gb.node("half", "Mul", []string{h, gb.init("c", []int64{}, []float32{0.5})})
	h = gb.node("add3", "Add", []string{h, w("b3", 8)})
	gb.output(gb.node("softmax", "Softmax", []string{h}))
	return gb, gb.model(t)
}

// sqnrEval returns an eval computing the SQNR in dB of a candidate's outputs against
// the float32 model's.
func sqnrEval(t *testing.T, orig *onnxio.Model, feeds map[string]*onnxio.Tensor) func(*onnxio.Model) (float64, error) {
	initORT(t)
	ref, err := runModel(orig, feeds, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *onnxio.Model) (float64, error) {
		got, err := runModel(c, feeds, ort.Options{})
		if err != nil {
			return 0, err
		}
		s, err := compareOutputs(ref, got)
		if err != nil {
			return math.NaN(), nil // non-finite outputs fail the bound
		}
		return s, nil
	}
}

func TestAutoMixed(t *testing.T) {
	gb, orig := overflowModel(t)
	eval := sqnrEval(t, orig, gb.feeds)
	opts := Options{KeepIOTypes: true}

	// Plain conversion fails the bound.
	all := orig.Clone()
	if _, err := Convert(all, opts); err != nil {
		t.Fatal(err)
	}
	if v, err := eval(all); err != nil || v >= 40 {
		t.Fatalf("all-float16 scores %v (%v); the test needs it to fail", v, err)
	}

	m := orig.Clone()
	rep, err := AutoMixed(m, opts, eval, 40)
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, m)
	kept := keptNames(rep)
	slices.Sort(kept)
	if !slices.Equal(kept, []string{"scale_down", "scale_up"}) {
		t.Errorf("kept %v in float32, want scale_down and scale_up", kept)
	}
	for _, k := range rep.Kept {
		if k.Reason != ReasonAutoMixed {
			t.Errorf("%s kept for %q", k.Name, k.Reason)
		}
	}
	if rep.NodesConverted != 9 {
		t.Errorf("%d nodes converted, want 9", rep.NodesConverted)
	}
	if rep.Evals != len(rep.Search) || rep.Evals > 16 {
		t.Errorf("%d evals (%d steps): more than the bisection bound", rep.Evals, len(rep.Search))
	}
	v, err := eval(m)
	if err != nil || v < 40 || v != rep.Metric {
		t.Errorf("returned model scores %v (%v), report says %v", v, err, rep.Metric)
	}
	t.Logf("%s; %d evals, SQNR %.1f dB; steps %+v", rep, rep.Evals, rep.Metric, rep.Search)

	// The scale constants stay float32 (their readers are float32).
	for _, k := range []string{"k_up", "k_down"} {
		if dt := onnxio.DataType(initializer(m.Graph(), k).GetDataType()); dt != onnxio.TypeFloat {
			t.Errorf("%s is %s", k, dt)
		}
	}
	if rep.Clamped != 0 {
		t.Errorf("%d values clamped in the result", rep.Clamped)
	}
}

func TestAutoMixedEdges(t *testing.T) {
	gb, orig := overflowModel(t)
	eval := sqnrEval(t, orig, gb.feeds)

	// A bound the all-float16 model meets: one eval, nothing kept.
	m := orig.Clone()
	rep, err := AutoMixed(m, Options{KeepIOTypes: true, BlockNodes: []string{"scale_up", "scale_down"}}, eval, 40)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Evals != 1 || len(rep.Kept) != 2 || rep.Kept[0].Reason != ReasonBlockedNode {
		t.Errorf("evals %d kept %v", rep.Evals, rep.Kept)
	}

	// A bound nothing meets.
	m = orig.Clone()
	_, err = AutoMixed(m, Options{KeepIOTypes: true}, func(*onnxio.Model) (float64, error) { return 0, nil }, 1)
	if err == nil || !strings.Contains(err.Error(), "even with all") {
		t.Errorf("unreachable bound: %v", err)
	}
	if countOps(m.Graph(), "Cast") != 0 || initializer(m.Graph(), "k_up").GetDataType() != int32(onnxio.TypeFloat) {
		t.Error("the model changed on error")
	}

	// eval errors stop the search.
	boom := errors.New("boom")
	if _, err := AutoMixed(orig.Clone(), Options{}, func(*onnxio.Model) (float64, error) { return 0, boom }, 1); !errors.Is(err, boom) {
		t.Errorf("eval error: %v", err)
	}
}

package verify_test

import (
	"math"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/report"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// Introduced ranks by the SQNR a layer loses against its measured inputs: a layer below an
// exact (+Inf) or unmeasured input first, an exact output last, and no NaN reaches the
// comparison.
func TestIntroducedRanking(t *testing.T) {
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 4})
	a := b.Op("Relu", []string{x})
	bb := b.Op("Sigmoid", []string{a})
	c := b.Op("Tanh", []string{bb})
	d := b.Op("Abs", []string{c})
	b.Output(d, onnxio.TypeFloat, []int64{-1, 4})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	ix := onnxio.NewIndex(m.Graph())
	inf := report.Float(math.Inf(1))
	order := func(layers []v.Layer) []string {
		var names []string
		for _, l := range v.Introduced(ix, layers) {
			names = append(names, l.Tensor)
		}
		return names
	}
	// x exact; a makes all the error (30 dB); b and c lose a little more.
	got := order([]v.Layer{{Tensor: x, SQNRdB: inf}, {Tensor: a, SQNRdB: 30}, {Tensor: bb, SQNRdB: 28}, {Tensor: c, SQNRdB: 27}})
	if got[0] != a || got[len(got)-1] != x {
		t.Errorf("exact input: order %v; want %s first, %s (exact) last", got, a, x)
	}
	// x unmeasured (float before the first quantized layer): a still first.
	got = order([]v.Layer{{Tensor: a, SQNRdB: 30}, {Tensor: bb, SQNRdB: 29}, {Tensor: c, SQNRdB: 20}})
	if got[0] != a || got[1] != c {
		t.Errorf("unmeasured input: order %v; want %s, %s, %s", got, a, c, bb)
	}
	// A chain of exact values with one lossy layer: it comes first, the exact ones after.
	got = order([]v.Layer{{Tensor: x, SQNRdB: inf}, {Tensor: a, SQNRdB: inf}, {Tensor: bb, SQNRdB: inf}, {Tensor: c, SQNRdB: 50}, {Tensor: d, SQNRdB: 40}})
	if got[0] != c || got[1] != d {
		t.Errorf("exact chain: order %v; want %s then %s first", got, c, d)
	}
}

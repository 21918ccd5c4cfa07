package quantize

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// A weight whose values are all too small for an int8 scale (1e-40: subnormal) would
// quantize to zeros; static and dynamic quantization leave its node in float and say so,
// and the model computes what the float model computes.
func TestTinyWeightsStayFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	w := floats(rng, 8*16, -1e-40, 1e-40)
	b := onnxio.NewBuilder(13)
	x := b.Input("input", onnxio.TypeFloat, []int64{4, 16})
	wn := b.Initializer("W", onnxio.NewTensor([]int64{16, 8}, w))
	y := b.Op("MatMul", []string{x, wn})
	b.Output(b.Op("Relu", []string{y}), onnxio.TypeFloat, []int64{4, 8})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	feeds := randomFeeds(rand.New(rand.NewPCG(1, 2)), 2, []int64{4, 16})
	for _, mode := range []string{"static", "dynamic"} {
		t.Run(mode, func(t *testing.T) {
			c := m.Clone()
			var res *Result
			if mode == "static" {
				res, err = Static(c, minmaxTable(t, m, feeds), DefaultOptions())
			} else {
				res, err = Dynamic(c, DefaultOptions())
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "too small") {
				t.Errorf("skipped %q; want the MatMul, its weight too small", res.Skipped)
			}
			for _, n := range c.Graph().GetNode() {
				if n.GetOpType() == "DequantizeLinear" && n.GetInput()[0] == "W" || strings.Contains(strings.Join(n.GetInput(), ","), "W_quantized") {
					t.Errorf("the tiny weight was quantized: node %s", onnxio.NodeLabel(n))
				}
			}
			ref, cand := session(t, m, "none"), session(t, c, "none")
			for _, f := range feeds {
				a, _ := ref.Run(f)
				b, _ := cand.Run(f)
				for name, v := range a {
					if db := sqnr(v.Data.([]float32), b[name].Data.([]float32)); db < 30 {
						t.Errorf("output %s: %.1f dB from the float model", name, db)
					}
				}
			}
		})
	}
}

package collect_test

import (
	"context"
	"testing"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/calibrate/collect"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// A squeeze-and-excitation gate (GlobalAveragePool -> HardSigmoid -> Mul, as in
// MobileNetV3 and PaddleOCR's text-direction classifier) has one value per channel and
// sample: every method gives it HardSigmoid's bound [0, 1] (rule bounded), and the
// unbounded tensors beside it keep their method's range. Clip with constant bounds gets
// them; one with a computed bound is not bounded.
func TestBoundedOutputsKeepTheirExtremes(t *testing.T) {
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 16, 8, 8})
	pool := b.Op("GlobalAveragePool", []string{x})
	gate := b.Op("HardSigmoid", []string{pool}, onnxio.AttrFloat("alpha", 0.2), onnxio.AttrFloat("beta", 0.5))
	y := b.Op("Mul", []string{x, gate})
	lo := b.Initializer("lo", onnxio.NewTensor([]int64{}, []float32{0}))
	hi := b.Initializer("hi", onnxio.NewTensor([]int64{}, []float32{6}))
	relu6 := b.Op("Clip", []string{y, lo, hi})
	open := b.Op("Clip", []string{y, lo, b.Op("Abs", []string{hi})})
	b.Output(relu6, onnxio.TypeFloat, nil)
	b.Output(open, onnxio.TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	bounded := collect.BoundedOutputs(m)
	_, isOpen := bounded[open]
	_, isY := bounded[y]
	_, isPool := bounded[pool]
	if bounded[gate] != [2]float32{0, 1} || bounded[relu6] != [2]float32{0, 6} || isOpen || isY || isPool {
		t.Fatalf("bounded = %v (gate %s, relu6 %s)", bounded, gate, relu6)
	}
	for _, method := range []calibrate.Method{calibrate.Entropy, calibrate.Percentile, calibrate.MSE} {
		ds, err := dataset.Open(&dataset.Spec{Format: "random", Samples: 16, Batch: 4, Seed: 7}, dataset.InputsOf(m))
		if err != nil {
			t.Fatal(err)
		}
		st, err := collect.Run(context.Background(), m, ds, collect.Options{Method: method})
		ds.Close()
		if err != nil {
			t.Fatal(err)
		}
		g := st.Table.Tensors[gate]
		if g == nil || g.Rule != "bounded" || g.Min != 0 || g.Max != 1 || g.ObservedMax >= 1 {
			t.Errorf("%s: gate range %+v, want HardSigmoid's [0, 1]", method, g)
		}
		if r := st.Table.Tensors[relu6]; r == nil || r.Rule != "bounded" || r.Min != 0 || r.Max != 6 {
			t.Errorf("%s: ReLU6 range %+v, want [0, 6]", method, r)
		}
		if yr := st.Table.Tensors[y]; yr == nil || yr.Rule != "" {
			t.Errorf("%s: the Mul's range %+v has a rule", method, yr)
		}
	}
}

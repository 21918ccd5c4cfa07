package verify

import (
	"context"
	"testing"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// When the reference does not open on a provider (measureOn passes nil), the candidate
// is timed alone at every batch size: no reference rows, no error.
func TestMeasureWithoutReference(t *testing.T) {
	if err := ort.Init(""); err != nil {
		t.Fatal(err)
	}
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 4})
	b.Op("Relu", []string{x})
	g := b.Graph()
	g.Node[0].Output[0] = "y"
	b.Output("y", onnxio.TypeFloat, []int64{-1, 4})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ds, err := dataset.Open(&dataset.Spec{Format: "random", Samples: 4, Batch: 4, Seed: 1}, dataset.InputsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	pr := &ProviderReport{Provider: ort.CPU}
	feed := NewFeeder("candidate", s.Inputs())
	if err := measure(context.Background(), pr, nil, s, nil, feed, ds, LatencyOptions{Warmup: 1, Runs: 3, Batch: []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if len(pr.Latency) != 2 || pr.Latency[0].Model != "candidate" || pr.Latency[1].Model != "candidate" || pr.Latency[1].Batch != 2 {
		t.Errorf("latency rows: %+v; want the candidate at batch 1 and 2", pr.Latency)
	}
}

package verify

import (
	"context"
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// FiniteOutputs runs m in onnxruntime on the first n samples of ds (whole batches: at
// least n) and checks that every float output is finite: the proof that a rewritten
// model runs. The error names the output and the samples.
func FiniteOutputs(ctx context.Context, m *onnxio.Model, ds *dataset.Dataset, n int, o ort.Options) error {
	data, err := m.Bytes()
	if err != nil {
		return err
	}
	s, err := ort.NewSession(data, o)
	if err != nil {
		return err
	}
	defer s.Close()
	feed := NewFeeder("model", s.Inputs())
	done := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := feed.Feed(b.Inputs)
		if err != nil {
			return err
		}
		out, err := s.Run(in)
		if err != nil {
			return fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		for name, t := range out {
			vals, err := t.Float32s()
			if err != nil {
				continue // not a float output
			}
			for _, v := range vals {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("output %q is not finite on samples %d..%d", name, b.Index, b.Index+b.N-1)
				}
			}
		}
		if done += b.N; done >= n {
			break
		}
	}
	return nil
}

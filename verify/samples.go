package verify

import (
	"context"
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
)

// SampleCheck runs cand in onnxruntime on the first n samples of ds (whole batches: at
// least n), checks that every float output is finite (the proof that a rewritten model
// runs; the error names the output and the samples) and, when ref is not nil, compares
// each float output with ref's on the same samples. It returns the SQNR of each compared
// output (+Inf when equal).
func SampleCheck(ctx context.Context, ref, cand *onnxio.Model, ds *dataset.Dataset, n int, o ort.Options) (map[string]report.Float, error) {
	cs, err := sessionOf(cand, o)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	var rs *ort.Session
	if ref != nil {
		if rs, err = sessionOf(ref, o); err != nil {
			return nil, fmt.Errorf("the reference: %w", err)
		}
		defer rs.Close()
	}
	cfeed := NewFeeder("model", cs.Inputs())
	var rfeed *Feeder
	if rs != nil {
		rfeed = NewFeeder("reference", rs.Inputs())
	}
	acc := map[string]*Accumulator{}
	done := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, err := runFed(cs, cfeed, b)
		if err != nil {
			return nil, err
		}
		if err := finiteOutputs(out, b); err != nil {
			return nil, err
		}
		if rs != nil {
			want, err := runFed(rs, rfeed, b)
			if err != nil {
				return nil, fmt.Errorf("the reference: %w", err)
			}
			accumulate(acc, want, out, b.N)
		}
		if done += b.N; done >= n {
			break
		}
	}
	sqnr := map[string]report.Float{}
	for name, a := range acc {
		sqnr[name] = a.Metrics().SQNRdB
	}
	return sqnr, nil
}

func sessionOf(m *onnxio.Model, o ort.Options) (*ort.Session, error) {
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	return ort.NewSession(data, o)
}

// runFed runs s on batch b through feed.
func runFed(s *ort.Session, feed *Feeder, b *dataset.Batch) (map[string]*onnxio.Tensor, error) {
	in, err := feed.Feed(b.Inputs)
	if err != nil {
		return nil, err
	}
	out, err := s.Run(in)
	if err != nil {
		return nil, fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
	}
	return out, nil
}

// finiteOutputs checks that every float output of a batch is finite.
func finiteOutputs(out map[string]*onnxio.Tensor, b *dataset.Batch) error {
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
	return nil
}

// accumulate folds the float outputs both sides have, of equal size, into acc.
func accumulate(acc map[string]*Accumulator, want, got map[string]*onnxio.Tensor, n int) {
	for name, wt := range want {
		gt := got[name]
		if gt == nil {
			continue
		}
		wv, err1 := wt.Float32s()
		gv, err2 := gt.Float32s()
		if err1 != nil || err2 != nil || len(wv) != len(gv) {
			continue
		}
		if acc[name] == nil {
			acc[name] = NewAccumulator(name, 0)
		}
		acc[name].Add(wv, gv, n, nil)
	}
}

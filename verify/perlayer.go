package verify

import (
	"context"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
)

// Layer is the error of one quantized activation: the candidate's dequantized tensor
// against the reference's tensor of the same value, as onnxruntime's qdq_loss_debug
// computes it.
type Layer struct {
	// Tensor is the value's name in the reference graph; Producer the node making it.
	Tensor   string       `json:"tensor"`
	Producer string       `json:"producer,omitempty"`
	Op       string       `json:"op,omitempty"`
	Depth    int          `json:"depth"` // position of the producer in the reference graph
	SQNRdB   report.Float `json:"sqnr_db"`
	// Min and Max are the smallest and largest value seen in either model.
	Min report.Float `json:"min"`
	Max report.Float `json:"max"`
	// Samples is how many samples the figures are over (PerLayerValues may bound them).
	Samples int `json:"samples"`
}

// Histogram is the distribution of one activation's values in the reference and in the
// candidate (dequantized), over the same bins: Lo + i·Width, i = 0..len-1.
type Histogram struct {
	Tensor    string       `json:"tensor"`
	SQNRdB    report.Float `json:"sqnr_db"`
	Lo        float64      `json:"lo"`
	Width     float64      `json:"width"`
	Reference []int64      `json:"reference"`
	Candidate []int64      `json:"candidate"`
}

// matches pairs each candidate DequantizeLinear output fed by a QuantizeLinear with the
// reference value it stands for (the DQ output's own name when the reference has it,
// else the Q input's name).
func matches(ref, cand *onnxio.Model) map[string]string {
	refVals := onnxio.Values(ref.Graph())
	cg := cand.Graph()
	ix := onnxio.NewIndex(cg)
	out := map[string]string{} // reference name -> candidate name
	for _, n := range cg.GetNode() {
		if n.GetOpType() != "DequantizeLinear" || len(n.GetInput()) == 0 {
			continue
		}
		q := ix.Producer[n.GetInput()[0]]
		if q == nil || q.GetOpType() != "QuantizeLinear" {
			continue // a weight's DequantizeLinear
		}
		dq := n.GetOutput()[0]
		switch {
		case refVals[dq]:
			out[dq] = dq
		case refVals[q.GetInput()[0]]:
			if _, taken := out[q.GetInput()[0]]; !taken {
				out[q.GetInput()[0]] = dq
			}
		}
	}
	return out
}

// withOutputs returns a copy of m that also outputs the named values.
func withOutputs(m *onnxio.Model, names []string) *onnxio.Model {
	c := m.Clone()
	g := c.Graph()
	have := map[string]bool{}
	for _, vi := range g.GetOutput() {
		have[vi.GetName()] = true
	}
	for _, n := range names {
		if !have[n] {
			have[n] = true
			g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(n)})
		}
	}
	return c
}

// PerLayer computes the SQNR of every quantized activation of cand against ref over at
// most limit samples of ds, in the reference graph's order. It returns nil when cand has
// no Q/DQ activations.
func PerLayer(ctx context.Context, ref, cand *onnxio.Model, ds *dataset.Dataset, limit int, o ort.Options) ([]Layer, error) {
	pairs := matches(ref, cand)
	if len(pairs) == 0 {
		return nil, nil
	}
	rs, cs, err := layerSessions(ref, cand, pairs, o)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	defer cs.Close()
	rf, cf := NewFeeder("reference", rs.Inputs()), NewFeeder("candidate", cs.Inputs())
	lo, hi := map[string]float64{}, map[string]float64{}
	acc := map[string]*Accumulator{}
	seen := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return nil, err
		}
		if seen >= limit || ctx.Err() != nil {
			break
		}
		seen += b.N
		ro, co, err := runBoth(rs, cs, rf, cf, b)
		if err != nil {
			return nil, err
		}
		if seen == b.N {
			limit = min(limit, budgetSamples(ro, b.N))
		}
		for r, c := range pairs {
			rt, ct := ro[r], co[c]
			if rt == nil || ct == nil {
				continue
			}
			rv, e1 := rt.Float32s()
			cv, e2 := ct.Float32s()
			if e1 != nil || e2 != nil || len(rv) != len(cv) {
				continue
			}
			if acc[r] == nil {
				acc[r] = NewAccumulator(r, 0)
				lo[r], hi[r] = math.Inf(1), math.Inf(-1)
			}
			acc[r].Add(rv, cv, b.N, nil)
			for _, vs := range [][]float32{rv, cv} {
				for _, x := range vs {
					if f := float64(x); !math.IsNaN(f) && !math.IsInf(f, 0) {
						lo[r], hi[r] = math.Min(lo[r], f), math.Max(hi[r], f)
					}
				}
			}
		}
	}
	ix := onnxio.NewIndex(ref.Graph())
	pos := map[*onnxpb.NodeProto]int{}
	for i, n := range ref.Graph().GetNode() {
		pos[n] = i
	}
	var layers []Layer
	for r, a := range acc {
		l := Layer{Tensor: r, SQNRdB: a.Metrics().SQNRdB, Depth: -1, Min: report.Float(lo[r]), Max: report.Float(hi[r]), Samples: a.samples}
		if p := ix.Producer[r]; p != nil {
			l.Producer, l.Op, l.Depth = p.GetName(), p.GetOpType(), pos[p]
		}
		layers = append(layers, l)
	}
	sort.Slice(layers, func(i, j int) bool {
		if layers[i].Depth != layers[j].Depth {
			return layers[i].Depth < layers[j].Depth
		}
		return layers[i].Tensor < layers[j].Tensor
	})
	return layers, nil
}

// PerLayerValues bounds the activation values the per-layer analysis reads per model:
// a model with large activations (a detector at full resolution holds tens of millions of
// values per sample) is analysed on fewer samples, at least one batch.
const PerLayerValues = 1 << 26

// budgetSamples is how many samples fit in PerLayerValues given one batch of n samples
// with outputs out.
func budgetSamples(out map[string]*onnxio.Tensor, n int) int {
	var values int64
	for _, t := range out {
		values += int64(t.Len())
	}
	perSample := max(1, values/int64(max(1, n)))
	return int(max(int64(n), PerLayerValues/perSample))
}

// layerSessions opens CPU sessions of ref and cand that also output the paired tensors
// (reference name -> candidate name).
func layerSessions(ref, cand *onnxio.Model, pairs map[string]string, o ort.Options) (*ort.Session, *ort.Session, error) {
	var refNames, candNames []string
	for r, c := range pairs {
		refNames = append(refNames, r)
		candNames = append(candNames, c)
	}
	rb, err := withOutputs(ref, refNames).Bytes()
	if err != nil {
		return nil, nil, err
	}
	cb, err := withOutputs(cand, candNames).Bytes()
	if err != nil {
		return nil, nil, err
	}
	o.Provider = ort.CPU
	rs, err := ort.NewSession(rb, o)
	if err != nil {
		return nil, nil, fmt.Errorf("per-layer reference: %w", err)
	}
	cs, err := ort.NewSession(cb, o)
	if err != nil {
		rs.Close()
		return nil, nil, fmt.Errorf("per-layer candidate: %w", err)
	}
	return rs, cs, nil
}

// Histograms bins the values of the given layers (from PerLayer, which found their
// ranges) in the reference and in the candidate, over at most limit samples of ds, with
// the given number of bins per layer.
func Histograms(ctx context.Context, ref, cand *onnxio.Model, ds *dataset.Dataset, layers []Layer, limit, bins int, o ort.Options) ([]Histogram, error) {
	all := matches(ref, cand)
	pairs := map[string]string{}
	var hs []Histogram
	for _, l := range layers {
		c, ok := all[l.Tensor]
		lo, hi := float64(l.Min), float64(l.Max)
		if !ok || !(hi >= lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			continue
		}
		pairs[l.Tensor] = c
		w := (hi - lo) / float64(bins)
		if w == 0 {
			w = 1
		}
		hs = append(hs, Histogram{Tensor: l.Tensor, SQNRdB: l.SQNRdB, Lo: lo, Width: w,
			Reference: make([]int64, bins), Candidate: make([]int64, bins)})
	}
	if len(hs) == 0 {
		return nil, nil
	}
	rs, cs, err := layerSessions(ref, cand, pairs, o)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	defer cs.Close()
	rf, cf := NewFeeder("reference", rs.Inputs()), NewFeeder("candidate", cs.Inputs())
	seen := 0
	for b, err := range ds.Batches() {
		if err != nil {
			return nil, err
		}
		if seen >= limit || ctx.Err() != nil {
			break
		}
		seen += b.N
		ro, co, err := runBoth(rs, cs, rf, cf, b)
		if err != nil {
			return nil, err
		}
		for i := range hs {
			h := &hs[i]
			for _, side := range []struct {
				t      *onnxio.Tensor
				counts []int64
			}{{ro[h.Tensor], h.Reference}, {co[pairs[h.Tensor]], h.Candidate}} {
				if side.t == nil {
					continue
				}
				vs, err := side.t.Float32s()
				if err != nil {
					continue
				}
				for _, x := range vs {
					f := float64(x)
					if math.IsNaN(f) || math.IsInf(f, 0) {
						continue
					}
					k := int((f - h.Lo) / h.Width)
					side.counts[min(max(k, 0), bins-1)]++
				}
			}
		}
	}
	return hs, ctx.Err()
}

// runBoth runs a batch through the reference and candidate sessions, each fed its own
// input types.
func runBoth(rs, cs *ort.Session, rf, cf *Feeder, b *dataset.Batch) (ro, co map[string]*onnxio.Tensor, err error) {
	in, err := rf.Feed(b.Inputs)
	if err != nil {
		return nil, nil, err
	}
	if ro, err = rs.Run(in); err != nil {
		return nil, nil, err
	}
	if in, err = cf.Feed(b.Inputs); err != nil {
		return nil, nil, err
	}
	if co, err = cs.Run(in); err != nil {
		return nil, nil, err
	}
	return ro, co, nil
}

// Worst returns the n layers with the lowest SQNR, worst first.
func Worst(layers []Layer, n int) []Layer {
	s := append([]Layer(nil), layers...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].SQNRdB < s[j].SQNRdB })
	if len(s) > n {
		s = s[:n]
	}
	return s
}

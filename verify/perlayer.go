package verify

import (
	"context"
	"fmt"
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
	var refNames, candNames []string
	for r, c := range pairs {
		refNames = append(refNames, r)
		candNames = append(candNames, c)
	}
	rb, err := withOutputs(ref, refNames).Bytes()
	if err != nil {
		return nil, err
	}
	cb, err := withOutputs(cand, candNames).Bytes()
	if err != nil {
		return nil, err
	}
	o.Provider = ort.CPU
	rs, err := ort.NewSession(rb, o)
	if err != nil {
		return nil, fmt.Errorf("per-layer reference: %w", err)
	}
	defer rs.Close()
	cs, err := ort.NewSession(cb, o)
	if err != nil {
		return nil, fmt.Errorf("per-layer candidate: %w", err)
	}
	defer cs.Close()
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
		ro, err := rs.Run(b.Inputs)
		if err != nil {
			return nil, err
		}
		co, err := cs.Run(b.Inputs)
		if err != nil {
			return nil, err
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
			}
			acc[r].Add(rv, cv, b.N, nil)
		}
	}
	ix := onnxio.NewIndex(ref.Graph())
	pos := map[*onnxpb.NodeProto]int{}
	for i, n := range ref.Graph().GetNode() {
		pos[n] = i
	}
	var layers []Layer
	for r, a := range acc {
		l := Layer{Tensor: r, SQNRdB: a.Metrics().SQNRdB, Depth: -1}
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

// Worst returns the n layers with the lowest SQNR, worst first.
func Worst(layers []Layer, n int) []Layer {
	s := append([]Layer(nil), layers...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].SQNRdB < s[j].SQNRdB })
	if len(s) > n {
		s = s[:n]
	}
	return s
}

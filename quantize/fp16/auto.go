package fp16

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// SearchStep is one evaluation AutoMixed made.
type SearchStep struct {
	// Converting is how many candidate nodes the tried model converted and Blocked how
	// many it kept in float32.
	Converting int `json:"converting"`
	Blocked    int `json:"blocked"`
	// Segment is the size of the node range under test (0 for the all-float16 and
	// all-float32 checks).
	Segment int     `json:"segment"`
	Metric  float64 `json:"metric"`
	Passed  bool    `json:"passed"`
}

// AutoMixed converts m in place like Convert, keeping in float32 the fewest main-graph
// nodes it can find that make eval(candidate) >= min. eval receives a converted copy
// of m and returns a metric where higher is better (for example the SQNR in dB of the
// candidate's outputs against the float32 model's on a few samples); it must be
// deterministic. A NaN metric fails the bound.
//
// The search is onnxconverter-common's auto_convert_mixed_precision, a bisection over
// the candidate nodes (main-graph nodes that touch float values and that opts does not
// already block, in topological order):
//
//  1. Convert everything (opts' block lists only). If eval passes, stop: nothing more
//     stays float32.
//  2. Check that keeping every candidate in float32 passes; if not, no choice of nodes
//     can meet min and AutoMixed returns an error.
//  3. Otherwise split the candidates into two halves, both pending. Repeatedly take the
//     largest pending range (the earliest among equals) and evaluate the model that
//     converts it together with every range already accepted, keeping all other
//     pending ranges and all rejected nodes in float32. If it passes, the range is
//     accepted (converted for good); if it fails, a single node is rejected (it stays
//     float32) and a longer range is split into halves, both pending.
//  4. When nothing is pending, the rejected nodes are the ones kept in float32.
//
// Each accepted or rejected decision only moves nodes between "kept" and "converted"
// in a configuration that was evaluated (the last passing one), so the final model is
// one eval already passed. The rejected set is 1-minimal in context (each rejected node,
// converted on top of the ranges accepted before it, failed) but not guaranteed to be the
// smallest possible set: the search is greedy in graph order. With k nodes that must
// stay float32 among n candidates it needs about 2 + 2k*log2(n/k) evals.
//
// Unnamed main-graph nodes get names (the kept ones are reported by name). On error m
// is unchanged apart from those names.
func AutoMixed(m *onnxio.Model, opts Options, eval func(candidate *onnxio.Model) (float64, error), min float64) (*Report, error) {
	if eval == nil {
		return nil, errors.New("fp16: AutoMixed needs an eval function")
	}
	if m == nil || m.Proto == nil || m.Proto.Graph == nil {
		return nil, errors.New("fp16: the model has no graph")
	}
	nameNodes(m.Graph())
	if err := onnxio.TopoSort(m.Graph()); err != nil {
		return nil, fmt.Errorf("fp16: %w", err)
	}

	var steps []SearchStep
	try := func(blocked map[string]bool, segment, converting int) (bool, float64, *onnxio.Model, *Report, []string, error) {
		cand := m.Clone()
		rep, converted, err := convert(cand, opts, blocked)
		if err != nil {
			return false, 0, nil, nil, nil, err
		}
		v, err := eval(cand)
		if err != nil {
			return false, 0, nil, nil, nil, fmt.Errorf("fp16: eval: %w", err)
		}
		ok := v >= min
		steps = append(steps, SearchStep{Converting: converting, Blocked: len(blocked), Segment: segment, Metric: v, Passed: ok})
		return ok, v, cand, rep, converted, nil
	}
	finish := func(cand *onnxio.Model, rep *Report, metric float64) *Report {
		proto.Reset(m.Proto)
		proto.Merge(m.Proto, cand.Proto)
		rep.Evals = len(steps)
		rep.Metric = metric
		rep.Search = steps
		return rep
	}

	// 1. Everything converted.
	ok, v, cand, rep, nodes, err := try(nil, 0, -1)
	if err != nil {
		return nil, err
	}
	steps[0].Converting = len(nodes)
	if ok {
		return finish(cand, rep, v), nil
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("fp16: the converted model scores %.4g < %g and no node is left to keep in float32", v, min)
	}

	// 2. Every candidate kept in float32.
	all := map[string]bool{}
	for _, n := range nodes {
		all[n] = true
	}
	ok, v, cand, rep, _, err = try(all, 0, 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("fp16: even with all %d candidate nodes kept in float32 the model scores %.4g < %g: the float16 graph inputs/outputs or the block lists' conversions already miss the bound; keep the inputs and outputs float32 (KeepIOTypes, keep_io_types: true) or lower the bound", len(nodes), v, min)
	}
	best, bestRep, bestV := cand, rep, v

	// 3. Bisection.
	type segment struct{ lo, hi int }
	const (
		pending = iota
		accepted
		rejected
	)
	state := make([]int, len(nodes))
	segs := []segment{{0, len(nodes) / 2}, {len(nodes) / 2, len(nodes)}}
	if len(nodes) == 1 {
		segs = []segment{{0, 1}}
	}
	for len(segs) > 0 {
		k := 0 // the largest pending range, the earliest in graph order among equals
		for i, s := range segs {
			if l, lk := s.hi-s.lo, segs[k].hi-segs[k].lo; l > lk || l == lk && s.lo < segs[k].lo {
				k = i
			}
		}
		s := segs[k]
		segs = append(segs[:k], segs[k+1:]...)
		blocked := map[string]bool{}
		converting := 0
		for i, n := range nodes {
			switch {
			case i >= s.lo && i < s.hi, state[i] == accepted:
				converting++
			default:
				blocked[n] = true
			}
		}
		ok, v, cand, rep, _, err := try(blocked, s.hi-s.lo, converting)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			for i := s.lo; i < s.hi; i++ {
				state[i] = accepted
			}
			best, bestRep, bestV = cand, rep, v
		case s.hi-s.lo == 1:
			state[s.lo] = rejected
		default:
			mid := (s.lo + s.hi) / 2
			segs = append(segs, segment{s.lo, mid}, segment{mid, s.hi})
		}
	}
	return finish(best, bestRep, bestV), nil
}

// nameNodes gives every unnamed node of g a unique name.
func nameNodes(g *onnxpb.GraphProto) {
	var namer *onnxio.Namer
	for _, n := range g.GetNode() {
		if n.GetName() != "" {
			continue
		}
		if namer == nil {
			namer = onnxio.NewNamer(g)
		}
		n.Name = proto.String(namer.Name(n.GetOpType()))
	}
}

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
	s := &mixedSearch{m: m, opts: opts, eval: eval, min: min}

	// 1. Everything converted.
	all, err := s.try(nil, 0, -1)
	if err != nil {
		return nil, err
	}
	nodes := all.converted
	s.steps[0].Converting = len(nodes)
	if all.ok {
		return s.finish(all), nil
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("fp16: the converted model scores %.4g < %g and no node is left to keep in float32", all.metric, min)
	}

	// 2. Every candidate kept in float32.
	keepAll := map[string]bool{}
	for _, n := range nodes {
		keepAll[n] = true
	}
	none, err := s.try(keepAll, 0, 0)
	if err != nil {
		return nil, err
	}
	if !none.ok {
		return nil, fmt.Errorf("fp16: even with all %d candidate nodes kept in float32 the model scores %.4g < %g: the float16 graph inputs/outputs or the block lists' conversions already miss the bound; keep the inputs and outputs float32 (KeepIOTypes, keep_io_types: true) or lower the bound", len(nodes), none.metric, min)
	}

	// 3. Bisection.
	best, err := s.bisect(nodes, none)
	if err != nil {
		return nil, err
	}
	return s.finish(best), nil
}

// mixedSearch is the state of one AutoMixed call: its arguments and the evaluations
// made so far.
type mixedSearch struct {
	m     *onnxio.Model
	opts  Options
	eval  func(candidate *onnxio.Model) (float64, error)
	min   float64
	steps []SearchStep
}

// trial is one evaluated candidate: whether it met the bound, its metric, the converted
// model and report, and the names of the main-graph nodes it converted.
type trial struct {
	ok        bool
	metric    float64
	model     *onnxio.Model
	rep       *Report
	converted []string
}

// try converts a copy of the model keeping the nodes named in blocked in float32,
// evaluates it and records the step (segLen and converting describe it).
func (s *mixedSearch) try(blocked map[string]bool, segLen, converting int) (trial, error) {
	cand := s.m.Clone()
	rep, converted, err := convert(cand, s.opts, blocked)
	if err != nil {
		return trial{}, err
	}
	v, err := s.eval(cand)
	if err != nil {
		return trial{}, fmt.Errorf("fp16: eval: %w", err)
	}
	ok := v >= s.min
	s.steps = append(s.steps, SearchStep{Converting: converting, Blocked: len(blocked), Segment: segLen, Metric: v, Passed: ok})
	return trial{ok, v, cand, rep, converted}, nil
}

// finish copies t's model into the caller's and returns its report with the search
// record.
func (s *mixedSearch) finish(t trial) *Report {
	proto.Reset(s.m.Proto)
	proto.Merge(s.m.Proto, t.model.Proto)
	t.rep.Evals = len(s.steps)
	t.rep.Metric = t.metric
	t.rep.Search = s.steps
	return t.rep
}

// segment is the range [lo, hi) of the candidate nodes.
type segment struct{ lo, hi int }

// bisectState is where a candidate node stands in the bisection.
type bisectState int

const (
	statePending bisectState = iota
	stateAccepted
	stateRejected
)

// bisect runs step 3 of AutoMixed's search over the candidate nodes, starting from
// best, the passing model that keeps them all in float32, and returns the last passing
// trial.
func (s *mixedSearch) bisect(nodes []string, best trial) (trial, error) {
	state := make([]bisectState, len(nodes))
	segs := []segment{{0, len(nodes) / 2}, {len(nodes) / 2, len(nodes)}}
	if len(nodes) == 1 {
		segs = []segment{{0, 1}}
	}
	for len(segs) > 0 {
		k := largestSegment(segs)
		seg := segs[k]
		segs = append(segs[:k], segs[k+1:]...)
		blocked, converting := blockedOutside(nodes, seg, state)
		t, err := s.try(blocked, seg.hi-seg.lo, converting)
		if err != nil {
			return trial{}, err
		}
		switch {
		case t.ok:
			for i := seg.lo; i < seg.hi; i++ {
				state[i] = stateAccepted
			}
			best = t
		case seg.hi-seg.lo == 1:
			state[seg.lo] = stateRejected
		default:
			mid := (seg.lo + seg.hi) / 2
			segs = append(segs, segment{seg.lo, mid}, segment{mid, seg.hi})
		}
	}
	return best, nil
}

// largestSegment returns the index of the largest segment, the earliest in graph order
// among equals.
func largestSegment(segs []segment) int {
	k := 0
	for i, s := range segs {
		if l, lk := s.hi-s.lo, segs[k].hi-segs[k].lo; l > lk || l == lk && s.lo < segs[k].lo {
			k = i
		}
	}
	return k
}

// blockedOutside returns the names of the nodes to keep in float32 when testing seg:
// all but those in seg and those already accepted, and how many nodes convert.
func blockedOutside(nodes []string, seg segment, state []bisectState) (map[string]bool, int) {
	blocked := map[string]bool{}
	converting := 0
	for i, n := range nodes {
		switch {
		case i >= seg.lo && i < seg.hi, state[i] == stateAccepted:
			converting++
		default:
			blocked[n] = true
		}
	}
	return blocked, converting
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

package fp16

import (
	"slices"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Before a graph is converted, its values get their original element types (inferOrig)
// and its nodes their decision (decide): convert, or stay float32 and why.

// inferOrig records in sc.orig the original element type of every value sc's graph
// defines. It changes nothing; subgraphs are walked in throwaway scopes to type the
// outputs of If, Loop and Scan.
func (c *converter) inferOrig(sc *scope) {
	for _, n := range sc.g.GetNode() {
		origIn := make([]onnxio.DataType, len(n.GetInput()))
		for i, in := range n.GetInput() {
			if in != "" {
				origIn[i] = sc.origType(in)
			}
		}
		var sub map[string][]onnxio.DataType
		if isControlFlow(n) {
			sub = map[string][]onnxio.DataType{}
			for _, sg := range subgraphsOf(n) {
				tmp := newScopeOf(sc, sg.g)
				for j, vi := range sg.g.GetInput() {
					t := elemType(vi)
					if k := bodyInputIndex(n, j); t == onnxio.TypeUndefined && k >= 0 && k < len(origIn) {
						t = origIn[k]
					}
					tmp.orig[vi.GetName()] = t
				}
				for _, t := range sg.g.GetInitializer() {
					tmp.orig[t.GetName()] = onnxio.DataType(t.GetDataType())
				}
				for _, sp := range sg.g.GetSparseInitializer() {
					tmp.orig[sp.GetValues().GetName()] = onnxio.DataType(sp.GetValues().GetDataType())
				}
				c.inferOrig(tmp)
				var outs []onnxio.DataType
				for _, vi := range sg.g.GetOutput() {
					t := tmp.origType(vi.GetName())
					if t == onnxio.TypeUndefined {
						t = elemType(vi)
					}
					outs = append(outs, t)
				}
				sub[sg.attr] = outs
			}
		}
		out, known := outputTypes(n, origIn, sub)
		for k, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			t := out[k]
			if !known || t == onnxio.TypeUndefined {
				t = sc.declared[o]
			}
			sc.orig[o] = t
		}
	}
}

// origTypes returns the original types of n's inputs and outputs (after inferOrig).
func (sc *scope) origTypes(n *onnxpb.NodeProto) (in, out []onnxio.DataType) {
	in = make([]onnxio.DataType, len(n.GetInput()))
	for i, v := range n.GetInput() {
		if v != "" {
			in[i] = sc.origType(v)
		}
	}
	out = make([]onnxio.DataType, len(n.GetOutput()))
	for k, v := range n.GetOutput() {
		if v != "" {
			out[k] = sc.origType(v)
		}
	}
	return in, out
}

// involved reports whether a node reads or writes float32 values.
func involved(in, out []onnxio.DataType) bool {
	return slices.Contains(in, float32T) || slices.Contains(out, float32T)
}

// hasRule reports whether outputTypes knows n's op.
func hasRule(n *onnxpb.NodeProto) bool {
	_, known := outputTypes(n, make([]onnxio.DataType, len(n.GetInput())), map[string][]onnxio.DataType{})
	return known
}

// dataMovement lists ops that only move, select or copy elements: converting one whose
// float neighbours all stay float32 adds a Cast pair and a rounding and saves nothing.
var dataMovement = map[string]bool{
	"Compress": true, "Concat": true, "DepthToSpace": true, "Dropout": true, "Expand": true,
	"Flatten": true, "Gather": true, "GatherElements": true, "GatherND": true, "Identity": true,
	"Pad": true, "Reshape": true, "ReverseSequence": true, "Slice": true, "SpaceToDepth": true,
	"Split": true, "Squeeze": true, "Tile": true, "Transpose": true, "Unsqueeze": true,
}

// decide returns, for every node of sc's graph that stays float32, the reason.
// blockedBy is set inside the subgraph of a blocked node; outReq gives the type the
// graph's float32 outputs must have.
func (c *converter) decide(sc *scope, blockedBy string, outReq func(j int) onnxio.DataType) map[*onnxpb.NodeProto]string {
	reasons := map[*onnxpb.NodeProto]string{}
	nodes := sc.g.GetNode()
	for _, n := range nodes {
		in, out := sc.origTypes(n)
		inv := involved(in, out)
		unknownIn := false
		for i, v := range n.GetInput() {
			if v != "" && in[i] == onnxio.TypeUndefined {
				unknownIn = true
			}
		}
		known := hasRule(n)
		r := ""
		switch {
		case blockedBy != "":
			r = ReasonInsideBlocked
		case n.GetName() != "" && c.blockNodes[n.GetName()]:
			r = ReasonBlockedNode
		case n.GetName() != "" && c.autoNodes[n.GetName()]:
			r = ReasonAutoMixed
		case c.blockOps[n.GetOpType()]:
			r = ReasonBlockedOp
		case !known && (inv || !allKnown(out)):
			r = ReasonUnknownOp
			c.unknownOps[qualifiedOp(n)] = true
		case inv && unknownIn:
			r = ReasonUnknownType
		}
		if r != "" {
			reasons[n] = r
		}
	}
	if blockedBy != "" || c.opts.ConvertIsolated {
		return reasons
	}

	// Data-movement nodes whose float32 neighbourhood stays float32: start from all of
	// them and drop, until nothing changes, those next to a value in the target type.
	cand := map[*onnxpb.NodeProto]bool{}
	for _, n := range nodes {
		if in, out := sc.origTypes(n); reasons[n] == "" && isDefaultDomain(n) && dataMovement[n.GetOpType()] && involved(in, out) {
			cand[n] = true
		}
	}
	if len(cand) == 0 {
		return reasons
	}
	producer := map[string]*onnxpb.NodeProto{}
	type use struct {
		n *onnxpb.NodeProto
		i int // -1: captured by a subgraph
	}
	uses := map[string][]use{}
	for _, n := range nodes {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
		direct := map[string]bool{}
		for i, in := range n.GetInput() {
			if in != "" {
				uses[in] = append(uses[in], use{n, i})
				direct[in] = true
			}
		}
		for _, in := range onnxio.NodeInputs(n) {
			if !direct[in] {
				uses[in] = append(uses[in], use{n, -1})
			}
		}
	}
	outIndex := map[string]int{}
	for j, vi := range sc.g.GetOutput() {
		outIndex[vi.GetName()] = j
	}
	float32Side := func(n *onnxpb.NodeProto) bool { return reasons[n] != "" || cand[n] }
	inputOK := func(v string) bool {
		if sc.source(v) != nil {
			return true // a constant binds at any type
		}
		if p := producer[v]; p != nil {
			return float32Side(p)
		}
		return sc.newType(v) == float32T
	}
	outputOK := func(v string) bool {
		for _, u := range uses[v] {
			if float32Side(u.n) || u.i >= 0 && (isAlwaysFloat(u.n, u.i) || isAgnostic(u.n, u.i)) {
				continue
			}
			return false
		}
		if j, ok := outIndex[v]; ok && outReq(j) != float32T {
			return false
		}
		return true
	}
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if !cand[n] {
				continue
			}
			in, out := sc.origTypes(n)
			ok := true
			for i, v := range n.GetInput() {
				if v != "" && in[i] == float32T && !inputOK(v) {
					ok = false
				}
			}
			for k, v := range n.GetOutput() {
				if v != "" && out[k] == float32T && !outputOK(v) {
					ok = false
				}
			}
			if !ok {
				delete(cand, n)
				changed = true
			}
		}
	}
	for n := range cand {
		reasons[n] = ReasonIsolated
	}
	return reasons
}

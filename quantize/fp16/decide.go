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
	for _, n := range sc.g.GetNode() {
		if r := c.keepReason(sc, n, blockedBy); r != "" {
			reasons[n] = r
		}
	}
	if blockedBy != "" || c.opts.ConvertIsolated {
		return reasons
	}
	for n := range isolated(sc, reasons, outReq) {
		reasons[n] = ReasonIsolated
	}
	return reasons
}

// keepReason returns why node n of sc's graph stays float32 on its own account (inside
// a blocked node, blocked by name or op type, kept by AutoMixed, an op or input type
// the inference does not know), or "" when nothing keeps it. An unknown op touching
// float values is recorded in c.unknownOps.
func (c *converter) keepReason(sc *scope, n *onnxpb.NodeProto, blockedBy string) string {
	in, out := sc.origTypes(n)
	inv := involved(in, out)
	unknownIn := false
	for i, v := range n.GetInput() {
		if v != "" && in[i] == onnxio.TypeUndefined {
			unknownIn = true
		}
	}
	known := hasRule(n)
	switch {
	case blockedBy != "":
		return ReasonInsideBlocked
	case n.GetName() != "" && c.blockNodes[n.GetName()]:
		return ReasonBlockedNode
	case n.GetName() != "" && c.autoNodes[n.GetName()]:
		return ReasonAutoMixed
	case c.blockOps[n.GetOpType()]:
		return ReasonBlockedOp
	case !known && (inv || !allKnown(out)):
		c.unknownOps[qualifiedOp(n)] = true
		return ReasonUnknownOp
	case inv && unknownIn:
		return ReasonUnknownType
	}
	return ""
}

// valueUse is one read of a value: input i of node n, or (i == -1) a capture by one of
// n's subgraphs.
type valueUse struct {
	n *onnxpb.NodeProto
	i int
}

// dataflow indexes a graph's values: the node that produces each, the reads of each,
// and the position of each graph output.
type dataflow struct {
	producer map[string]*onnxpb.NodeProto
	uses     map[string][]valueUse
	outIndex map[string]int
}

// newDataflow indexes g's nodes and outputs.
func newDataflow(g *onnxpb.GraphProto) *dataflow {
	df := &dataflow{producer: map[string]*onnxpb.NodeProto{}, uses: map[string][]valueUse{}, outIndex: map[string]int{}}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			df.producer[o] = n
		}
		direct := map[string]bool{}
		for i, in := range n.GetInput() {
			if in != "" {
				df.uses[in] = append(df.uses[in], valueUse{n, i})
				direct[in] = true
			}
		}
		for _, in := range onnxio.NodeInputs(n) {
			if !direct[in] {
				df.uses[in] = append(df.uses[in], valueUse{n, -1})
			}
		}
	}
	for j, vi := range g.GetOutput() {
		df.outIndex[vi.GetName()] = j
	}
	return df
}

// isolation decides which data-movement nodes of a graph have a float32 neighbourhood:
// cand holds the nodes still considered, reasons the nodes kept for other reasons.
type isolation struct {
	sc      *scope
	df      *dataflow
	reasons map[*onnxpb.NodeProto]string
	cand    map[*onnxpb.NodeProto]bool
	outReq  func(j int) onnxio.DataType
}

// isolated returns the data-movement nodes of sc's graph, not already in reasons, whose
// every float32 value is produced or read on the float32 side: it starts from all of
// them and drops, until nothing changes, those next to a value in the target type.
func isolated(sc *scope, reasons map[*onnxpb.NodeProto]string, outReq func(j int) onnxio.DataType) map[*onnxpb.NodeProto]bool {
	nodes := sc.g.GetNode()
	cand := map[*onnxpb.NodeProto]bool{}
	for _, n := range nodes {
		if in, out := sc.origTypes(n); reasons[n] == "" && isDefaultDomain(n) && dataMovement[n.GetOpType()] && involved(in, out) {
			cand[n] = true
		}
	}
	if len(cand) == 0 {
		return cand
	}
	iso := &isolation{sc: sc, df: newDataflow(sc.g), reasons: reasons, cand: cand, outReq: outReq}
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if cand[n] && !iso.float32Neighbourhood(n) {
				delete(cand, n)
				changed = true
			}
		}
	}
	return cand
}

// float32Side reports whether n stays float32 (kept, or still a candidate).
func (iso *isolation) float32Side(n *onnxpb.NodeProto) bool {
	return iso.reasons[n] != "" || iso.cand[n]
}

// inputOK reports whether float32 value v can be read in float32 without a Cast: a
// constant, a value produced on the float32 side, or a float32 outer value.
func (iso *isolation) inputOK(v string) bool {
	if iso.sc.source(v) != nil {
		return true // a constant binds at any type
	}
	if p := iso.df.producer[v]; p != nil {
		return iso.float32Side(p)
	}
	return iso.sc.newType(v) == float32T
}

// outputOK reports whether float32 value v can be written in float32 without a Cast:
// every reader is on the float32 side or takes either type, and a graph output of that
// name must be float32.
func (iso *isolation) outputOK(v string) bool {
	for _, u := range iso.df.uses[v] {
		if iso.float32Side(u.n) || u.i >= 0 && (isAlwaysFloat(u.n, u.i) || isAgnostic(u.n, u.i)) {
			continue
		}
		return false
	}
	if j, ok := iso.df.outIndex[v]; ok && iso.outReq(j) != float32T {
		return false
	}
	return true
}

// float32Neighbourhood reports whether every float32 input and output of n passes
// inputOK and outputOK.
func (iso *isolation) float32Neighbourhood(n *onnxpb.NodeProto) bool {
	in, out := iso.sc.origTypes(n)
	for i, v := range n.GetInput() {
		if v != "" && in[i] == float32T && !iso.inputOK(v) {
			return false
		}
	}
	for k, v := range n.GetOutput() {
		if v != "" && out[k] == float32T && !iso.outputOK(v) {
			return false
		}
	}
	return true
}

package quantize

import (
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// copyOps hold exactly their data input's values, rearranged at most: their output's
// range under every calibration method is the input's (the same values in each batch).
var copyOps = map[string]bool{
	"Identity": true, "Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true,
	"Transpose": true, "DepthToSpace": true, "SpaceToDepth": true,
}

// CalibrationTensors says which values of m's main graph a calibration must measure.
//
// aliases maps the output of every copy op (Identity, Reshape, Flatten, Squeeze,
// Unsqueeze, Transpose, DepthToSpace, SpaceToDepth) whose data input is an activation to
// the measured value it copies (through chains of copy ops): its values are that value's,
// so its range is too, and the table can record it without exposing it.
//
// expose lists, in graph order (graph inputs first), the activations to measure: with
// all, every activation that is not an alias; otherwise only those whose range Static
// can read, under any options (profiles cpu and tensorrt, symmetric or not, op_types,
// exclude_nodes, overrides, and auto_exclude quantizing again with more nodes in float):
// the quantized inputs and the outputs of every node of a type Static handles (rules),
// an alias replaced by its source. The values no such node reads or writes (the inputs
// and outputs of unsupported ops only, e.g. a decomposed LayerNorm's Sub, Pow and Sqrt)
// are left out.
func CalibrationTensors(m *onnxio.Model, all bool) (expose []string, aliases map[string]string) {
	g := m.Graph()
	ix := onnxio.NewIndex(g)
	candidates := ix.Activations()
	isCand := map[string]bool{}
	for _, n := range candidates {
		isCand[n] = true
	}
	standard := func(d string) bool { return d == "" || d == "ai.onnx" }
	aliases = map[string]string{}
	for _, n := range g.GetNode() { // topological order: a source's own alias is known
		if !standard(n.GetDomain()) || !copyOps[n.GetOpType()] || len(n.GetInput()) == 0 || len(n.GetOutput()) == 0 {
			continue
		}
		in, out := n.GetInput()[0], n.GetOutput()[0]
		if !isCand[in] || !isCand[out] || in == out {
			continue
		}
		if src, ok := aliases[in]; ok {
			in = src
		}
		aliases[out] = in
	}
	root := func(n string) string {
		if src, ok := aliases[n]; ok {
			return src
		}
		return n
	}
	need := map[string]bool{}
	mark := func(n string) {
		if n != "" && isCand[n] {
			need[root(n)] = true
		}
	}
	if all {
		for _, n := range candidates {
			mark(n)
		}
	} else {
		for _, n := range g.GetNode() {
			if !standard(n.GetDomain()) {
				continue
			}
			ru, ok := rules[n.GetOpType()]
			if !ok {
				continue
			}
			ins, outs := n.GetInput(), n.GetOutput()
			switch ru.kind {
			case kindCompute:
				for i, in := range ins {
					if i != ru.bias {
						mark(in)
					}
				}
			case kindMove, kindRemovable:
				if len(ins) > 0 {
					mark(ins[0])
				}
			case kindOwn:
				if ru.inputs == nil {
					for _, in := range ins {
						mark(in)
					}
				}
				for _, i := range ru.inputs {
					if i < len(ins) {
						mark(ins[i])
					}
				}
			}
			for i, out := range outs {
				switch {
				case ru.kind == kindMove && !(n.GetOpType() == "MaxPool" && i > 0):
					mark(out) // Static checks these have a range
				case i == 0 && ru.fixedOutput == nil:
					mark(out)
				}
			}
		}
	}
	for _, n := range candidates {
		if need[n] {
			expose = append(expose, n)
		}
	}
	return expose, aliases
}

// CalibrationTensorsFor is CalibrationTensors for one set of quantize options: expose
// lists only the activations whose range Static reads with o. It leaves out the output
// of a quantized node that a Relu or Clip alone reads and Static folds (a Conv or Add
// before a Relu, with asymmetric activations on the cpu profile): the fold quantizes
// with the activation's range, so the producer's own is never used; leaving those out of
// the calibration keeps onnxruntime's Conv+Relu and Conv+Add+Relu fusions while it
// computes the ranges. It also leaves out a data-movement op's output that something
// reads (it shares its input's parameters). ResNet-18: 49 -> 31 values exposed. The
// table also serves a quantization with more nodes excluded, as auto_exclude makes them
// (a node, with a Relu the node it folds into): every range those read is read with o. A table that holds expose
// quantizes with o exactly as one of every activation does; with other options (a Relu
// excluded, symmetric activations) such a producer keeps a float output.
//
// The set is found by planning Static on a copy of m with every range present and
// recording the ranges the plan reads.
func CalibrationTensorsFor(m *onnxio.Model, o Options) (expose []string, aliases map[string]string, err error) {
	all, aliases := CalibrationTensors(m, true)
	c := planCopy(m)
	rec := recorder{}
	q, err := newQuantizer(c, rec, o)
	if err != nil {
		return nil, nil, err
	}
	if err := q.plan(); err != nil {
		return nil, nil, err
	}
	for _, n := range q.removeNodes {
		delete(rec, n.GetInput()[0]) // folded: its range was read, then replaced
	}
	need := map[string]bool{}
	for n := range rec {
		if src, ok := aliases[n]; ok {
			n = src
		}
		need[n] = true
	}
	for _, n := range all {
		if need[n] {
			expose = append(expose, n)
		}
	}
	for alias, src := range aliases {
		if !need[src] {
			delete(aliases, alias)
		}
	}
	return expose, aliases, nil
}

// planCopy is a copy of m to plan on and throw away: the main graph's node list and
// nodes are its own (planning sorts the list and rewires a folded producer's output);
// the initializers, inputs, outputs and opsets are m's, shared, since planning only
// reads them (a deep copy of a large model would double its memory for nothing).
func planCopy(m *onnxio.Model) *onnxio.Model {
	g := m.Graph()
	ng := &onnxpb.GraphProto{Name: g.Name, Initializer: g.Initializer, SparseInitializer: g.SparseInitializer,
		Input: g.Input, Output: g.Output, ValueInfo: g.ValueInfo}
	for _, n := range g.GetNode() {
		ng.Node = append(ng.Node, proto.Clone(n).(*onnxpb.NodeProto))
	}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: m.Proto.IrVersion, OpsetImport: m.Proto.OpsetImport, Graph: ng}}
}

// recorder is a Ranges that has a range, [0, 1], for every name, and records the names
// asked for.
type recorder map[string]bool

func (r recorder) Range(name string) (float32, float32, bool) {
	r[name] = true
	return 0, 1, true
}

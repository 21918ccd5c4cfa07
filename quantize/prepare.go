package quantize

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// PrepareOptions selects the clean-up steps of Prepare.
type PrepareOptions struct {
	// FoldBatchNorm folds BatchNormalization into a preceding Conv, ConvTranspose or Gemm.
	FoldBatchNorm bool
	// FoldConstants evaluates nodes whose inputs are all constants (with onnxruntime,
	// through Eval) and replaces them by initializers; Identity nodes on constants are
	// bypassed.
	FoldConstants bool
	// ConstantsToInitializers turns tensor-valued Constant nodes into initializers.
	ConstantsToInitializers bool
	// MinOpset raises the default-domain opset to at least this version, rewriting the
	// ops whose signature changed (0: leave it).
	MinOpset int64
	// Eval computes the outputs of a self-contained model that has no inputs; FoldConstants
	// needs it (the pipeline passes an onnxruntime session).
	Eval func(m *onnxio.Model) (map[string]*onnxio.Tensor, error)
}

// PrepareReport says what Prepare did.
type PrepareReport struct {
	ConstantsToInitializers int      `json:"constants_to_initializers"`
	BatchNormsFolded        int      `json:"batchnorms_folded"`
	ConstantsFolded         int      `json:"constants_folded"`
	IdentitiesRemoved       int      `json:"identities_removed"`
	OpsetFrom               int64    `json:"opset_from"`
	OpsetTo                 int64    `json:"opset_to"`
	NodesRemoved            int      `json:"dead_nodes_removed"`
	NodesNamed              int      `json:"nodes_named,omitempty"`
	Notes                   []string `json:"notes,omitempty"`
}

// Prepare cleans m up in place for calibration and quantization, and names the main
// graph's unnamed nodes. The graph stays valid after each step (onnxio.Check holds).
func Prepare(m *onnxio.Model, opts PrepareOptions) (*PrepareReport, error) {
	g := m.Graph()
	rep := &PrepareReport{OpsetFrom: m.Opset(""), OpsetTo: m.Opset("")}
	if err := onnxio.TopoSort(g); err != nil {
		return nil, err
	}
	if opts.MinOpset > 0 && m.Opset("") < opts.MinOpset {
		if err := UpgradeOpset(m, opts.MinOpset); err != nil {
			return nil, err
		}
		rep.OpsetTo = m.Opset("")
	}
	if opts.ConstantsToInitializers {
		rep.ConstantsToInitializers = constantsToInitializers(g)
	}
	if opts.FoldConstants {
		rep.IdentitiesRemoved = bypassConstantIdentities(g)
		n, err := foldConstants(m, opts.Eval)
		if err != nil {
			return nil, err
		}
		rep.ConstantsFolded = n
	}
	if opts.FoldBatchNorm {
		n, notes, err := foldBatchNorms(g)
		if err != nil {
			return nil, err
		}
		rep.BatchNormsFolded, rep.Notes = n, append(rep.Notes, notes...)
	}
	rep.NodesRemoved = onnxio.RemoveDeadNodes(g)
	onnxio.RemoveUnusedInitializers(g)
	rep.NodesNamed = nameNodes(g)
	return rep, onnxio.Check(m)
}

// nameNodes gives every unnamed node of the main graph a name of its own (its op type,
// made unique), so that every node can be listed in exclude_nodes, named in a report,
// and put back to float by auto_exclude. It returns how many it named.
func nameNodes(g *onnxpb.GraphProto) int {
	var nm *onnxio.Namer
	named := 0
	for _, n := range g.GetNode() {
		if n.GetName() != "" {
			continue
		}
		if nm == nil {
			nm = onnxio.NewNamer(g)
		}
		n.Name = proto.String(nm.Name(n.GetOpType()))
		named++
	}
	return named
}

// constantsToInitializers replaces tensor-valued Constant nodes of the main graph by
// initializers of the same name.
func constantsToInitializers(g *onnxpb.GraphProto) int {
	remove := map[*onnxpb.NodeProto]bool{}
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Constant" || n.GetDomain() != "" || len(n.GetOutput()) != 1 {
			continue
		}
		t, ok := onnxio.ConstantNodeTensor(n)
		if !ok {
			continue
		}
		t = proto.Clone(t).(*onnxpb.TensorProto)
		t.Name = proto.String(n.GetOutput()[0])
		g.Initializer = append(g.Initializer, t)
		remove[n] = true
	}
	onnxio.RemoveNodes(g, remove)
	return len(remove)
}

// bypassConstantIdentities makes the readers of Identity(constant) read the constant
// itself (PyTorch writes shared weights that way), unless the Identity's output is a
// graph output.
func bypassConstantIdentities(g *onnxpb.GraphProto) int {
	ix := onnxio.NewIndex(g)
	count := 0
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Identity" || n.GetDomain() != "" || len(n.GetInput()) != 1 {
			continue
		}
		in, out := n.GetInput()[0], n.GetOutput()[0]
		if _, ok := ix.Initializers[in]; !ok || ix.IsGraphOutput(out) {
			continue
		}
		if _, isInput := ix.Inputs[in]; isInput {
			continue
		}
		onnxio.ReplaceUses(g, out, in)
		count++
	}
	return count
}

// nonDeterministic ops are never folded.
var nonDeterministic = map[string]bool{"RandomNormal": true, "RandomNormalLike": true, "RandomUniform": true,
	"RandomUniformLike": true, "Multinomial": true, "Bernoulli": true, "Dropout": true}

// foldConstants evaluates the nodes whose inputs are all constants. A result much bigger
// than its inputs (Expand, Tile, ConstantOfShape of a large shape) is left as a node: it
// would bloat the file.
func foldConstants(m *onnxio.Model, eval func(*onnxio.Model) (map[string]*onnxio.Tensor, error)) (int, error) {
	g := m.Graph()
	ix := onnxio.NewIndex(g)
	fold := foldableNodes(g, ix)
	if len(fold) == 0 {
		return 0, nil
	}
	if eval == nil {
		return 0, fmt.Errorf("constant folding needs an evaluator (onnxruntime)")
	}
	sub, outs := foldModel(m, ix, fold)
	if len(outs) == 0 {
		return 0, nil
	}
	vals, err := eval(sub)
	if err != nil {
		return 0, fmt.Errorf("constant folding: %w", err)
	}
	var inBytes int64
	for _, t := range sub.Graph().Initializer {
		inBytes += int64(len(t.GetRawData()))
	}
	count := 0
	for _, o := range outs {
		v, ok := vals[o]
		if !ok {
			return 0, fmt.Errorf("constant folding: no value for %q", o)
		}
		tp, err := onnxio.EncodeTensor(o, v)
		if err != nil {
			return 0, err
		}
		if int64(len(tp.GetRawData())) > 2*inBytes+(1<<16) {
			continue // would bloat the file: keep computing it at run time
		}
		g.Initializer = append(g.Initializer, tp)
		detachOutput(fold, o)
		count++
	}
	onnxio.RemoveDeadNodes(g)
	return count, nil
}

// foldableNodes returns, in graph order, the deterministic default-domain nodes of g
// without subgraphs whose inputs are all constants: initializers that are not graph
// inputs, or outputs of nodes returned before.
func foldableNodes(g *onnxpb.GraphProto, ix *onnxio.Index) []*onnxpb.NodeProto {
	constant := map[string]bool{}
	for name := range ix.Initializers {
		if _, isInput := ix.Inputs[name]; !isInput {
			constant[name] = true
		}
	}
	var fold []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if n.GetDomain() != "" || nonDeterministic[n.GetOpType()] || len(onnxio.Subgraphs(n)) > 0 || len(n.GetInput()) == 0 {
			continue
		}
		all := true
		for _, in := range n.GetInput() {
			if in != "" && !constant[in] {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		fold = append(fold, n)
		for _, o := range n.GetOutput() {
			constant[o] = true
		}
	}
	return fold
}

// foldModel returns a model made of the nodes in fold, their constant inputs as
// initializers, and as outputs every value they compute that the rest of m's graph (or
// its outputs) reads; and the names of those outputs.
func foldModel(m *onnxio.Model, ix *onnxio.Index, fold []*onnxpb.NodeProto) (*onnxio.Model, []string) {
	folded := map[*onnxpb.NodeProto]bool{}
	for _, n := range fold {
		folded[n] = true
	}
	needed := map[string]bool{}
	for _, n := range m.Graph().GetNode() {
		if folded[n] {
			continue
		}
		for _, in := range onnxio.NodeInputs(n) {
			needed[in] = true
		}
	}
	for _, vi := range m.Graph().GetOutput() {
		needed[vi.GetName()] = true
	}
	sub := &onnxpb.GraphProto{Name: proto.String("fold")}
	used := map[string]bool{}
	for _, n := range fold {
		sub.Node = append(sub.Node, n)
		for _, in := range n.GetInput() {
			if t, ok := ix.Initializers[in]; ok && !used[in] {
				used[in] = true
				sub.Initializer = append(sub.Initializer, t)
			}
		}
	}
	var outs []string
	for _, n := range fold {
		for _, o := range n.GetOutput() {
			if o != "" && needed[o] {
				outs = append(outs, o)
				sub.Output = append(sub.Output, &onnxpb.ValueInfoProto{Name: proto.String(o)})
			}
		}
	}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: m.Proto.IrVersion, OpsetImport: m.Proto.OpsetImport, Graph: sub}}, outs
}

// detachOutput clears output o of the node in fold that produces it, which is then dead
// unless it has other, unfolded outputs.
func detachOutput(fold []*onnxpb.NodeProto, o string) {
	for _, n := range fold {
		for i, out := range n.Output {
			if out == o {
				n.Output[i] = ""
			}
		}
	}
}

// DataType is the element type of a tensor.
func DataType(t *onnxpb.TensorProto) onnxio.DataType { return onnxio.DataType(t.GetDataType()) }

// replaceInitializer puts t in g, replacing an initializer of the same name.
func replaceInitializer(g *onnxpb.GraphProto, t *onnxpb.TensorProto) {
	for i, old := range g.Initializer {
		if old.GetName() == t.GetName() {
			g.Initializer[i] = t
			return
		}
	}
	g.Initializer = append(g.Initializer, t)
}

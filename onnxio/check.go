package onnxio

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// CheckError lists the structural problems Check found, each naming the node or value.
type CheckError struct {
	Problems []string
}

func (e *CheckError) Error() string {
	const show = 10
	p := e.Problems
	more := ""
	if len(p) > show {
		more = fmt.Sprintf(" (and %d more)", len(p)-show)
		p = p[:show]
	}
	return "invalid model: " + strings.Join(p, "; ") + more
}

// Check verifies the structure of a model, a Go subset of onnx.checker: an IR version and
// an import of the default opset; every node input defined before it is used (graph
// inputs, initializers, outputs of earlier nodes, values of enclosing graphs for
// subgraphs); graph outputs defined; each value produced once, and no node output of a
// subgraph reusing a name of an enclosing graph; unique node names and attribute names;
// an opset import for every domain used; as many inputs and outputs as the node's op
// takes, for the common ops of the default domain and the model's local functions, and
// one value per Constant; tensor data sizes that match their shapes; known element types
// on the main graph's inputs and outputs. It returns a *CheckError, or nil.
func Check(m *Model) error {
	c := &checker{}
	mp := m.Proto
	if mp.GetIrVersion() <= 0 {
		c.add("model: ir_version is missing")
	}
	c.domains = map[string]bool{}
	for _, o := range mp.GetOpsetImport() {
		d := canonicalDomain(o.GetDomain())
		if c.domains[d] {
			c.add(fmt.Sprintf("model: opset domain %q is imported twice", o.GetDomain()))
		}
		c.domains[d] = true
	}
	if !c.domains[""] {
		c.add("model: no opset_import for the default ONNX domain")
	}
	c.functions = map[string]*onnxpb.FunctionProto{}
	for _, f := range mp.GetFunctions() {
		c.functions[f.GetDomain()+":"+f.GetName()] = f
	}
	c.graph(mp.GetGraph(), nil, "graph")
	if len(c.problems) > 0 {
		return &CheckError{Problems: c.problems}
	}
	return nil
}

type checker struct {
	problems  []string
	domains   map[string]bool
	functions map[string]*onnxpb.FunctionProto // local functions by domain:name
}

func (c *checker) add(p string) { c.problems = append(c.problems, p) }

// graphScope is what checker.graph knows of the values of the graph it checks.
type graphScope struct {
	where   string
	outer   map[string]bool // the values of the enclosing graphs
	defined map[string]bool // outer's and the graph's own values defined so far
	own     map[string]bool // the graph's own values defined so far
}

// define records that the graph defines name (what says how, for the message); a name
// the graph defines twice is a problem.
func (c *checker) define(s *graphScope, name, what string) {
	if name == "" {
		return
	}
	if s.own[name] {
		c.add(fmt.Sprintf("%s: value %q is defined twice (%s)", s.where, name, what))
	}
	s.own[name] = true
	s.defined[name] = true
}

// graph checks g, whose nodes may also read the names in outer.
func (c *checker) graph(g *onnxpb.GraphProto, outer map[string]bool, where string) {
	if g == nil {
		c.add(where + ": missing")
		return
	}
	s := &graphScope{where: where, outer: outer, defined: map[string]bool{}, own: map[string]bool{}}
	for k := range outer {
		s.defined[k] = true
	}
	c.graphInputs(g, s)
	// Who produces what, to tell a value produced too late from one never produced.
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if _, seen := producer[o]; o != "" && !seen {
				producer[o] = n
			}
		}
	}
	outOfOrder := false
	nodeNames := map[string]bool{}
	for _, n := range g.GetNode() {
		if c.node(n, s, producer, nodeNames) {
			outOfOrder = true
		}
	}
	if outOfOrder {
		// Out of order, or in a cycle? Sort a copy of the node list to find out.
		if err := TopoSort(&onnxpb.GraphProto{Node: slices.Clone(g.GetNode())}); err != nil {
			c.add(fmt.Sprintf("%s: %v", where, err))
		} else {
			c.add(fmt.Sprintf("%s: nodes are not in topological order (TopoSort can fix that)", where))
		}
	}
	for _, vi := range g.GetOutput() {
		if !s.defined[vi.GetName()] {
			c.add(fmt.Sprintf("%s: output %q is not produced by any node", where, vi.GetName()))
		}
	}
	if outer == nil { // the main graph: its inputs and outputs are what a runtime is fed and gives
		for _, io := range []struct {
			what string
			vis  []*onnxpb.ValueInfoProto
		}{{"input", g.GetInput()}, {"output", g.GetOutput()}} {
			for _, vi := range io.vis {
				c.elemType(vi, fmt.Sprintf("%s: %s %q", where, io.what, vi.GetName()))
			}
		}
	}
}

// elemType reports a tensor value whose element type is missing or unknown.
func (c *checker) elemType(vi *onnxpb.ValueInfoProto, label string) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return
	}
	switch dt := tt.GetElemType(); {
	case dt == 0:
		c.add(label + ": its tensor type has no element type (elem_type 0, undefined)")
	case onnxpb.TensorProto_DataType_name[dt] == "":
		c.add(fmt.Sprintf("%s: unknown element type %d", label, dt))
	}
}

// graphInputs defines g's inputs, initializers and sparse initializers in s, and checks
// that each has a name and each initializer's data fits its shape.
func (c *checker) graphInputs(g *onnxpb.GraphProto, s *graphScope) {
	for _, vi := range g.GetInput() {
		if vi.GetName() == "" {
			c.add(s.where + ": a graph input has no name")
		}
		c.define(s, vi.GetName(), "graph input")
	}
	inputs := map[string]bool{}
	for _, vi := range g.GetInput() {
		inputs[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == "" {
			c.add(s.where + ": an initializer has no name")
		}
		if !inputs[t.GetName()] { // IR < 4 lists initializers among the inputs
			c.define(s, t.GetName(), "initializer")
		}
		c.tensor(t, fmt.Sprintf("%s: initializer %q", s.where, t.GetName()))
	}
	for _, sp := range g.GetSparseInitializer() {
		c.define(s, sp.GetValues().GetName(), "sparse initializer")
	}
}

// node checks node n of the graph of s and defines its outputs: its op_type, its name
// (unique among nodeNames), its domain, that its inputs are defined (producer tells which
// other node makes one defined later), its attributes and their subgraphs, and that no
// output shadows a value of an enclosing graph. It reports whether an input is produced
// by a later node.
func (c *checker) node(n *onnxpb.NodeProto, s *graphScope, producer map[string]*onnxpb.NodeProto, nodeNames map[string]bool) (outOfOrder bool) {
	label := s.where + ": node " + NodeLabel(n)
	if n.GetOpType() == "" {
		c.add(label + ": no op_type")
	}
	if name := n.GetName(); name != "" {
		if nodeNames[name] {
			c.add(fmt.Sprintf("%s: node name %q is used twice", s.where, name))
		}
		nodeNames[name] = true
	}
	if d := canonicalDomain(n.GetDomain()); !c.domains[d] {
		c.add(fmt.Sprintf("%s: domain %q is not in opset_import", label, n.GetDomain()))
	}
	c.checkArity(n, label)
	if f := c.functions[n.GetDomain()+":"+n.GetOpType()]; f != nil {
		// A call passes at most the function's inputs and takes at most its outputs.
		if have := present(n.GetInput()); have > len(f.GetInput()) {
			c.add(fmt.Sprintf("%s: local function %s.%s takes %s, the node passes %d", label, f.GetDomain(), f.GetName(), countText(len(f.GetInput()), len(f.GetInput()), "input"), have))
		}
		if have := present(n.GetOutput()); have > len(f.GetOutput()) {
			c.add(fmt.Sprintf("%s: local function %s.%s has %s, the node takes %d", label, f.GetDomain(), f.GetName(), countText(len(f.GetOutput()), len(f.GetOutput()), "output"), have))
		}
	}
	for _, in := range n.GetInput() {
		if in != "" && !s.defined[in] {
			if p := producer[in]; p != nil {
				outOfOrder = true
				c.add(fmt.Sprintf("%s: input %q is not defined before use (node %s produces it later)", label, in, NodeLabel(p)))
			} else {
				c.add(fmt.Sprintf("%s: input %q is not defined before use", label, in))
			}
		}
	}
	c.attributes(n, label, s.defined)
	for _, o := range n.GetOutput() {
		// As in onnx.checker, a node output may not reuse a name of an enclosing
		// graph (subgraph inputs and initializers may).
		if o != "" && s.outer[o] && !s.own[o] {
			c.add(fmt.Sprintf("%s: output %q shadows a value of an enclosing graph", label, o))
		}
		c.define(s, o, "output of node "+NodeLabel(n))
	}
	return outOfOrder
}

// attributes checks that node n's attribute names are unique, their tensors' data fits
// their shapes, and their subgraphs, which may read the names in defined.
func (c *checker) attributes(n *onnxpb.NodeProto, label string, defined map[string]bool) {
	attrNames := map[string]bool{}
	for _, a := range n.GetAttribute() {
		if attrNames[a.GetName()] {
			c.add(fmt.Sprintf("%s: attribute %q appears twice", label, a.GetName()))
		}
		attrNames[a.GetName()] = true
		aw := fmt.Sprintf("%s attribute %q", label, a.GetName())
		if a.T != nil {
			c.tensor(a.T, aw)
		}
		for _, t := range a.GetTensors() {
			c.tensor(t, aw)
		}
		if a.G != nil {
			c.graph(a.G, defined, aw)
		}
		for _, sg := range a.GetGraphs() {
			c.graph(sg, defined, aw)
		}
	}
}

// tensor checks that a tensor's data matches its type and shape.
func (c *checker) tensor(tp *onnxpb.TensorProto, where string) {
	if err := CheckTensorSize(tp); err != nil {
		c.add(where + ": " + err.Error())
	}
}

// CheckTensorSize verifies, without decoding, that the data of tp has as many elements as
// its shape needs. Externally stored tensors are checked against their recorded length.
func CheckTensorSize(tp *onnxpb.TensorProto) error {
	dt := DataType(tp.GetDataType())
	if dt == TypeUndefined {
		return fmt.Errorf("data_type is missing")
	}
	if _, known := onnxpb.TensorProto_DataType_name[int32(dt)]; !known {
		return fmt.Errorf("unknown data_type %d", int32(dt))
	}
	n, err := NumElements(tp.GetDims())
	if err != nil {
		return err
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		ref, err := ParseExternalRef(tp)
		if err != nil {
			return err
		}
		if ref.Length >= 0 && ref.Length != dt.ByteSize(n) {
			return fmt.Errorf("external data length %d, the shape %v of %s needs %d bytes", ref.Length, tp.GetDims(), dt, dt.ByteSize(n))
		}
		return nil
	}
	if tp.RawData != nil {
		if dt == TypeString {
			return fmt.Errorf("string tensor with raw_data")
		}
		if int64(len(tp.RawData)) != dt.ByteSize(n) {
			return fmt.Errorf("raw_data has %d bytes, the shape %v of %s needs %d", len(tp.RawData), tp.GetDims(), dt, dt.ByteSize(n))
		}
		return nil
	}
	var have, want int64 = 0, n
	switch dt {
	case TypeFloat:
		have = int64(len(tp.GetFloatData()))
	case TypeComplex64:
		have, want = int64(len(tp.GetFloatData())), 2*n
	case TypeDouble:
		have = int64(len(tp.GetDoubleData()))
	case TypeComplex128:
		have, want = int64(len(tp.GetDoubleData())), 2*n
	case TypeInt64:
		have = int64(len(tp.GetInt64Data()))
	case TypeUint32, TypeUint64:
		have = int64(len(tp.GetUint64Data()))
	case TypeString:
		have = int64(len(tp.GetStringData()))
	default:
		have = int64(len(tp.GetInt32Data()))
		if dt.Bits() < 8 {
			want = dt.ByteSize(n)
		}
	}
	if have != want {
		return fmt.Errorf("has %d values, the shape %v of %s needs %d", have, tp.GetDims(), dt, want)
	}
	return nil
}

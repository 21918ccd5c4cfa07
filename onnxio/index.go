package onnxio

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Index answers questions about one graph: who produces and who consumes each value,
// which values are initializers, graph inputs or outputs, and what type a value has. It is
// a snapshot: rebuild it (NewIndex) after editing the graph.
//
// Consumers include nodes whose subgraphs (If/Loop/Scan bodies) read a value of this
// graph by name; such a node counts once, as the consumer that captures the value.
type Index struct {
	Graph        *onnxpb.GraphProto
	Producer     map[string]*onnxpb.NodeProto
	Consumers    map[string][]*onnxpb.NodeProto
	Initializers map[string]*onnxpb.TensorProto
	Inputs       map[string]*onnxpb.ValueInfoProto
	Outputs      map[string]*onnxpb.ValueInfoProto
	ValueInfo    map[string]*onnxpb.ValueInfoProto // value_info, inputs and outputs
}

// NewIndex indexes g.
func NewIndex(g *onnxpb.GraphProto) *Index {
	ix := &Index{
		Graph:        g,
		Producer:     map[string]*onnxpb.NodeProto{},
		Consumers:    map[string][]*onnxpb.NodeProto{},
		Initializers: map[string]*onnxpb.TensorProto{},
		Inputs:       map[string]*onnxpb.ValueInfoProto{},
		Outputs:      map[string]*onnxpb.ValueInfoProto{},
		ValueInfo:    map[string]*onnxpb.ValueInfoProto{},
	}
	for _, t := range g.GetInitializer() {
		ix.Initializers[t.GetName()] = t
	}
	for _, vi := range g.GetValueInfo() {
		ix.ValueInfo[vi.GetName()] = vi
	}
	for _, vi := range g.GetInput() {
		ix.Inputs[vi.GetName()] = vi
		ix.ValueInfo[vi.GetName()] = vi
	}
	for _, vi := range g.GetOutput() {
		ix.Outputs[vi.GetName()] = vi
		ix.ValueInfo[vi.GetName()] = vi
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				ix.Producer[o] = n
			}
		}
		for _, in := range NodeInputs(n) {
			ix.Consumers[in] = append(ix.Consumers[in], n)
		}
	}
	return ix
}

// NodeInputs returns the values a node reads: its non-empty inputs, then the outer-scope
// values its subgraphs capture, each name once.
func NodeInputs(n *onnxpb.NodeProto) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, in := range n.GetInput() {
		add(in)
	}
	for _, g := range Subgraphs(n) {
		for _, c := range Captures(g) {
			add(c)
		}
	}
	return out
}

// Subgraphs returns the graphs held in n's attributes (If branches, Loop and Scan bodies).
func Subgraphs(n *onnxpb.NodeProto) []*onnxpb.GraphProto {
	var gs []*onnxpb.GraphProto
	for _, a := range n.GetAttribute() {
		if a.G != nil {
			gs = append(gs, a.G)
		}
		gs = append(gs, a.GetGraphs()...)
	}
	return gs
}

// Captures returns the names a subgraph reads from enclosing scopes: values used by its
// nodes (at any depth) that it neither defines nor receives as inputs or initializers.
func Captures(g *onnxpb.GraphProto) []string {
	defined := map[string]bool{}
	for _, vi := range g.GetInput() {
		defined[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		defined[t.GetName()] = true
	}
	for _, s := range g.GetSparseInitializer() {
		defined[s.GetValues().GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			defined[o] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range g.GetNode() {
		for _, in := range NodeInputs(n) {
			if !defined[in] && !seen[in] {
				seen[in] = true
				out = append(out, in)
			}
		}
	}
	for _, vi := range g.GetOutput() { // an output may pass an outer value straight through
		if name := vi.GetName(); name != "" && !defined[name] && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// ClipBounds returns the bounds of a Clip node n: its min and max attributes (before
// opset 11) or constant inputs (from 11), -Inf and +Inf where a bound is not given; ok is
// false when a bound is computed or not a single value.
func (ix *Index) ClipBounds(n *onnxpb.NodeProto) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if a := Attr(n, "min"); a != nil {
		lo = a.GetF()
	}
	if a := Attr(n, "max"); a != nil {
		hi = a.GetF()
	}
	for i, dst := range []*float32{&lo, &hi} {
		if len(n.GetInput()) > i+1 && n.GetInput()[i+1] != "" {
			t, isConst := ix.ConstantTensor(n.GetInput()[i+1])
			if !isConst {
				return 0, 0, false
			}
			v, err := TensorFloat32s(t)
			if err != nil || len(v) != 1 {
				return 0, 0, false
			}
			*dst = v[0]
		}
	}
	return lo, hi, true
}

// IsGraphOutput reports whether name is an output of the indexed graph.
func (ix *Index) IsGraphOutput(name string) bool { _, ok := ix.Outputs[name]; return ok }

// IsConstant reports whether name holds a value known before the graph runs: an
// initializer that is not also a graph input (which a caller could override), or the
// output of a Constant node.
func (ix *Index) IsConstant(name string) bool {
	_, ok := ix.ConstantTensor(name)
	return ok
}

// Activations returns the values the graph computes at run time, in graph order: its
// inputs that no initializer backs, then every node output, leaving out the constant
// ones (IsConstant). Calibration measures them.
func (ix *Index) Activations() []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] && !ix.IsConstant(n) {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, vi := range ix.Graph.GetInput() {
		if _, isInit := ix.Initializers[vi.GetName()]; !isInit {
			add(vi.GetName())
		}
	}
	for _, n := range ix.Graph.GetNode() {
		for _, out := range n.GetOutput() {
			add(out)
		}
	}
	return names
}

// ConstantTensor returns the tensor behind a constant value: an initializer that is not
// also a graph input, the value of a Constant node, or either of these reached through a
// chain of Identity nodes (as PyTorch's exporter writes shared weights).
func (ix *Index) ConstantTensor(name string) (*onnxpb.TensorProto, bool) {
	for range 64 { // Identity chains are short; the bound stops a malformed cycle
		if t, ok := ix.Initializers[name]; ok {
			if _, overridable := ix.Inputs[name]; overridable {
				return nil, false
			}
			return t, true
		}
		p := ix.Producer[name]
		if p == nil || p.GetDomain() != "" && p.GetDomain() != "ai.onnx" {
			return nil, false
		}
		switch p.GetOpType() {
		case "Constant":
			return ConstantNodeTensor(p)
		case "Identity":
			if len(p.GetInput()) != 1 {
				return nil, false
			}
			name = p.GetInput()[0]
		default:
			return nil, false
		}
	}
	return nil, false
}

// ConstantNodeTensor returns the tensor a Constant node produces, for its tensor-valued
// forms (value, value_float(s), value_int(s)); sparse and string forms give false, and so
// does a node with no value attribute or more than one (which one would be meant?).
func ConstantNodeTensor(n *onnxpb.NodeProto) (*onnxpb.TensorProto, bool) {
	name := ""
	if len(n.GetOutput()) > 0 {
		name = n.GetOutput()[0]
	}
	values := 0
	for _, a := range n.GetAttribute() {
		if constantValueAttrs[a.GetName()] {
			values++
		}
	}
	if values != 1 { // no value, or two: which one would be meant?
		return nil, false
	}
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "value":
			if a.T != nil {
				return a.T, true
			}
		case "value_float":
			t, _ := EncodeTensor(name, &Tensor{Type: TypeFloat, Shape: []int64{}, Data: []float32{a.GetF()}})
			return t, true
		case "value_floats":
			t, _ := EncodeTensor(name, NewTensor([]int64{int64(len(a.GetFloats()))}, a.GetFloats()))
			return t, true
		case "value_int":
			t, _ := EncodeTensor(name, &Tensor{Type: TypeInt64, Shape: []int64{}, Data: []int64{a.GetI()}})
			return t, true
		case "value_ints":
			t, _ := EncodeTensor(name, NewTensor([]int64{int64(len(a.GetInts()))}, a.GetInts()))
			return t, true
		}
	}
	return nil, false
}

// ElemType returns the element type of a value when the graph records it (graph inputs,
// outputs, value_info, initializers, Constant outputs).
func (ix *Index) ElemType(name string) (DataType, bool) {
	if vi, ok := ix.ValueInfo[name]; ok {
		if tt := vi.GetType().GetTensorType(); tt != nil && tt.GetElemType() != 0 {
			return DataType(tt.GetElemType()), true
		}
	}
	if t, ok := ix.Initializers[name]; ok {
		return DataType(t.GetDataType()), true
	}
	if t, ok := ix.ConstantTensor(name); ok {
		return DataType(t.GetDataType()), true
	}
	return TypeUndefined, false
}

// Shape returns a value's recorded shape: each dimension's size, -1 where it is symbolic
// or unknown, and the symbolic names ("" where there is none). ok is false when the graph
// records no shape.
func (ix *Index) Shape(name string) (dims []int64, names []string, ok bool) {
	if vi, found := ix.ValueInfo[name]; found {
		if d, n, has := ValueShape(vi); has {
			return d, n, true
		}
	}
	if t, found := ix.Initializers[name]; found {
		return append([]int64(nil), t.GetDims()...), make([]string, len(t.GetDims())), true
	}
	return nil, nil, false
}

// ValueShape decodes a ValueInfoProto's tensor shape like Index.Shape.
func ValueShape(vi *onnxpb.ValueInfoProto) (dims []int64, names []string, ok bool) {
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.Shape == nil {
		return nil, nil, false
	}
	for _, d := range tt.GetShape().GetDim() {
		if v, isVal := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); isVal {
			dims = append(dims, v.DimValue)
			names = append(names, "")
		} else {
			dims = append(dims, -1)
			names = append(names, d.GetDimParam())
		}
	}
	return dims, names, true
}

// CycleError reports nodes that depend on each other in a cycle.
type CycleError struct {
	Nodes []string // labels of the nodes in the cycle (at most 10)
}

func (e *CycleError) Error() string {
	return "graph has a cycle through nodes " + strings.Join(e.Nodes, ", ")
}

// TopoSort reorders g's nodes (not those of subgraphs) so that every node comes after the
// producers of its inputs, captures of its subgraphs included. It keeps the original
// order where it already is valid: an already sorted graph is left exactly as it is, and
// otherwise, among the nodes whose inputs are all ready, the one that came first goes
// first. A cycle is a *CycleError naming the nodes on it; a value defined twice (by two
// nodes, or by a node and a graph input or initializer) is an error naming both. The
// graph is then unchanged.
func TopoSort(g *onnxpb.GraphProto) error {
	nodes := g.GetNode()
	// A value defined twice would make its readers depend on the wrong node (and look
	// like a cycle): name the definitions instead.
	defined := map[string]string{}
	for _, vi := range g.GetInput() {
		defined[vi.GetName()] = "a graph input"
	}
	for _, t := range g.GetInitializer() {
		if _, ok := defined[t.GetName()]; !ok {
			defined[t.GetName()] = "an initializer"
		}
	}
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if what, ok := defined[o]; ok {
				return fmt.Errorf("node %s: output %q has the name of %s; every value is defined once", NodeLabel(n), o, what)
			}
			if p, ok := producer[o]; ok {
				return fmt.Errorf("value %q is the output of two nodes, %s and %s; every value is defined once", o, NodeLabel(nodes[p]), NodeLabel(n))
			}
			producer[o] = i
		}
	}
	succ := make([][]int, len(nodes))
	pred := make([][]int, len(nodes))
	indeg := make([]int, len(nodes))
	sorted := true
	for i, n := range nodes {
		for _, in := range NodeInputs(n) {
			p, ok := producer[in]
			if !ok {
				continue
			}
			if p == i {
				return &CycleError{Nodes: []string{NodeLabel(n)}}
			}
			if p > i {
				sorted = false
			}
			succ[p] = append(succ[p], i)
			pred[i] = append(pred[i], p)
			indeg[i]++
		}
	}
	if sorted {
		return nil
	}
	// Kahn's algorithm, taking the ready node of lowest original position first.
	ready := &intHeap{}
	for i := range nodes {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]*onnxpb.NodeProto, 0, len(nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, nodes[i])
		for _, j := range succ[i] {
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(order) < len(nodes) {
		return &CycleError{Nodes: findCycle(nodes, pred, indeg)}
	}
	g.Node = order
	return nil
}

// findCycle returns the labels (at most 10) of the nodes of one cycle among the nodes
// Kahn's algorithm could not place (indeg > 0). Each such node has a predecessor that
// was not placed either, so walking predecessors from any of them must repeat a node.
func findCycle(nodes []*onnxpb.NodeProto, pred [][]int, indeg []int) []string {
	start := slices.IndexFunc(indeg, func(d int) bool { return d > 0 })
	seenAt := map[int]int{}
	var path []int
	i := start
	for {
		if at, ok := seenAt[i]; ok {
			path = path[at:]
			break
		}
		seenAt[i] = len(path)
		path = append(path, i)
		next := -1
		for _, p := range pred[i] {
			if indeg[p] > 0 {
				next = p
				break
			}
		}
		if next < 0 { // cannot happen; be safe
			break
		}
		i = next
	}
	slices.Reverse(path) // producers first
	// Start the listing at the node that came first in the graph.
	first := 0
	for k, n := range path {
		if n < path[first] {
			first = k
		}
	}
	path = append(path[first:], path[:first]...)
	var labels []string
	for _, n := range path {
		if len(labels) == 10 {
			break
		}
		labels = append(labels, NodeLabel(nodes[n]))
	}
	return labels
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Values returns every value name defined in g: inputs, initializers and node outputs.
func Values(g *onnxpb.GraphProto) map[string]bool {
	v := map[string]bool{}
	for _, vi := range g.GetInput() {
		v[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		v[t.GetName()] = true
	}
	for _, s := range g.GetSparseInitializer() {
		v[s.GetValues().GetName()] = true
	}
	delete(v, "")
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				v[o] = true
			}
		}
	}
	return v
}

// Namer makes names that are unique in a model: it knows every value and node name used
// in the main graph and its subgraphs.
type Namer struct{ used map[string]bool }

// NewNamer collects the names used in g and its subgraphs.
func NewNamer(g *onnxpb.GraphProto) *Namer {
	nm := &Namer{used: map[string]bool{}}
	var walk func(g *onnxpb.GraphProto)
	walk = func(g *onnxpb.GraphProto) {
		for k := range Values(g) {
			nm.used[k] = true
		}
		for _, n := range g.GetNode() {
			if n.GetName() != "" {
				nm.used[n.GetName()] = true
			}
			for _, in := range n.GetInput() {
				nm.used[in] = true
			}
			for _, sg := range Subgraphs(n) {
				walk(sg)
			}
		}
		for _, vi := range g.GetOutput() {
			nm.used[vi.GetName()] = true
		}
		// A stale value_info entry would give a new value of that name a wrong type.
		for _, vi := range g.GetValueInfo() {
			nm.used[vi.GetName()] = true
		}
	}
	walk(g)
	return nm
}

// Name returns base if it is unused, else base_1, base_2, ...; the name is then taken.
func (nm *Namer) Name(base string) string {
	name := base
	for i := 1; nm.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	nm.used[name] = true
	return name
}

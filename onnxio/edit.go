package onnxio

import (
	"slices"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// ReplaceUses makes every node of g that reads old read new instead, including nodes of
// subgraphs that capture old from g (unless a subgraph defines its own value named old).
// Graph outputs are not renamed. It returns the number of inputs changed.
func ReplaceUses(g *onnxpb.GraphProto, old, new string) int {
	return replaceUses(g.GetNode(), old, new, nil)
}

func replaceUses(nodes []*onnxpb.NodeProto, old, new string, skip map[*onnxpb.NodeProto]bool) int {
	count := 0
	for _, n := range nodes {
		if skip[n] {
			continue
		}
		for i, in := range n.Input {
			if in == old {
				n.Input[i] = new
				count++
			}
		}
		for _, sg := range Subgraphs(n) {
			if Values(sg)[old] {
				continue // shadowed: the subgraph's own value of that name
			}
			count += replaceUses(sg.GetNode(), old, new, nil)
			// A body output that passes the outer value through: subgraph outputs bind to
			// the parent node's outputs by position, so renaming it is safe.
			for _, vi := range sg.GetOutput() {
				if vi.GetName() == old {
					vi.Name = ptr(new)
				}
			}
		}
	}
	return count
}

func ptr[T any](v T) *T { return &v }

// InsertAfter inserts nodes (which read value and end in the value out) right after
// value's producer, and makes every other reader of value read out instead: nodes and
// subgraph captures. When rewireOutputs is true, a graph output named value is moved to
// the new value as well: the graph output keeps its name, the old producer's output is
// renamed to value+"_pre" (a fresh name) and the inserted nodes read that. This is how
// Q/DQ pairs are put on an edge. A graph output that g does not produce itself (a graph
// input, or an outer value a subgraph passes through) cannot be moved and stays as it is.
func InsertAfter(g *onnxpb.GraphProto, value, out string, rewireOutputs bool, nodes ...*onnxpb.NodeProto) {
	inserted := map[*onnxpb.NodeProto]bool{}
	for _, n := range nodes {
		inserted[n] = true
	}
	isOutput := slices.ContainsFunc(g.GetOutput(), func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == value })
	isInput := slices.ContainsFunc(g.GetInput(), func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == value })
	if rewireOutputs && isOutput && !isInput && hasProducer(g, value) {
		// Rename the producer's output and let the chain produce the output's name, so
		// every reader (and the graph output) sees the chain's result.
		pre := NewNamer(g).Name(value + "_pre")
		renameProducer(g, value, pre)
		for _, n := range nodes {
			for i, in := range n.Input {
				if in == value {
					n.Input[i] = pre
				}
			}
			for i, o := range n.Output {
				if o == out {
					n.Output[i] = value
				}
			}
		}
		insertNodes(g, pre, nodes)
		return
	}
	replaceUses(g.GetNode(), value, out, inserted)
	insertNodes(g, value, nodes)
}

// hasProducer reports whether value is produced in g itself, by a node or as an
// initializer (and not, say, captured from an enclosing graph).
func hasProducer(g *onnxpb.GraphProto, value string) bool {
	for _, n := range g.GetNode() {
		if slices.Contains(n.GetOutput(), value) {
			return true
		}
	}
	return slices.ContainsFunc(g.GetInitializer(), func(t *onnxpb.TensorProto) bool { return t.GetName() == value })
}

// renameProducer renames the output old of its producing node (or the initializer old)
// to new; readers keep the name old. It reports whether a producer was found.
func renameProducer(g *onnxpb.GraphProto, old, new string) bool {
	for _, n := range g.GetNode() {
		for i, o := range n.Output {
			if o == old {
				n.Output[i] = new
				return true
			}
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == old {
			t.Name = ptr(new)
			return true
		}
	}
	return false
}

// insertNodes places nodes just after the producer of value (or first, when value is a
// graph input or initializer).
func insertNodes(g *onnxpb.GraphProto, value string, nodes []*onnxpb.NodeProto) {
	pos := 0
	for i, n := range g.Node {
		if slices.Contains(n.GetOutput(), value) {
			pos = i + 1
			break
		}
	}
	g.Node = slices.Insert(g.Node, pos, nodes...)
}

// RemoveNodes deletes the given nodes from g.
func RemoveNodes(g *onnxpb.GraphProto, remove map[*onnxpb.NodeProto]bool) {
	g.Node = slices.DeleteFunc(g.Node, func(n *onnxpb.NodeProto) bool { return remove[n] })
}

// RemoveDeadNodes deletes nodes none of whose outputs is used by another node (or a
// subgraph capture) or is a graph output, repeating until none is left. It returns the
// number removed.
func RemoveDeadNodes(g *onnxpb.GraphProto) int {
	nodes := g.GetNode()
	// uses counts, for each value, the live nodes that read it and the graph outputs.
	uses := map[string]int{}
	inputs := make([][]string, len(nodes))
	producers := map[string][]int{}
	for i, n := range nodes {
		inputs[i] = NodeInputs(n)
		for _, in := range inputs[i] {
			uses[in]++
		}
		for _, o := range n.GetOutput() {
			if o != "" {
				producers[o] = append(producers[o], i)
			}
		}
	}
	for _, vi := range g.GetOutput() {
		uses[vi.GetName()]++
	}
	dead := make([]bool, len(nodes))
	isDead := func(i int) bool {
		for _, o := range nodes[i].GetOutput() {
			if o != "" && uses[o] > 0 {
				return false
			}
		}
		return true
	}
	var work []int
	for i := range nodes {
		if isDead(i) {
			dead[i] = true
			work = append(work, i)
		}
	}
	removed := map[*onnxpb.NodeProto]bool{}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		removed[nodes[i]] = true
		for _, in := range inputs[i] {
			if uses[in]--; uses[in] > 0 {
				continue
			}
			for _, p := range producers[in] {
				if !dead[p] && isDead(p) {
					dead[p] = true
					work = append(work, p)
				}
			}
		}
	}
	if len(removed) > 0 {
		RemoveNodes(g, removed)
	}
	return len(removed)
}

// RemoveUnusedInitializers deletes initializers that no node reads and that are not graph
// outputs; an unused initializer that is also listed as a graph input (old IR versions)
// loses that input too. It returns the number removed.
func RemoveUnusedInitializers(g *onnxpb.GraphProto) int {
	used := usedValues(g)
	before := len(g.Initializer)
	gone := map[string]bool{}
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool {
		if used[t.GetName()] {
			return false
		}
		gone[t.GetName()] = true
		return true
	})
	g.Input = slices.DeleteFunc(g.Input, func(vi *onnxpb.ValueInfoProto) bool { return gone[vi.GetName()] })
	return before - len(g.Initializer)
}

// usedValues returns the names read by g's nodes (captures included) and its outputs.
func usedValues(g *onnxpb.GraphProto) map[string]bool {
	used := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range NodeInputs(n) {
			used[in] = true
		}
	}
	for _, vi := range g.GetOutput() {
		used[vi.GetName()] = true
	}
	return used
}

package fp16

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// cleanup removes redundant Cast nodes from sc's graph, repeating until none is left:
//
//   - a Cast to the type its input already has (exact);
//   - y = Cast(Cast(x)) where x already has y's type and the first Cast widens
//     (float16 -> float32 -> float16): y is x, exactly;
//   - the same where the first Cast narrows (float32 -> float16 -> float32), only when
//     the Cast in the middle has no other reader and KeepRoundingCasts is off: the
//     readers then get x without the rounding step;
//   - more generally a narrowing float Cast read only by a Cast to a wider float type
//     (int64 -> float16 -> float32) is skipped, the second Cast reading its input.
//
// A main-graph output is never renamed, so a Cast producing one stays.
func (c *converter) cleanup(sc *scope) {
	for c.cleanupOnce(sc) {
	}
}

func castTo(n *onnxpb.NodeProto) (onnxio.DataType, bool) {
	if !isDefaultDomain(n) || n.GetOpType() != "Cast" || len(n.GetInput()) != 1 || len(n.GetOutput()) != 1 {
		return 0, false
	}
	return onnxio.DataType(attrInt(n, "to", 0)), true
}

func isFloatType(t onnxio.DataType) bool {
	return t == onnxio.TypeFloat16 || t == onnxio.TypeBFloat16 || t == onnxio.TypeFloat || t == onnxio.TypeDouble
}

// widens reports whether every value of float type a is exactly representable in b.
func widens(a, b onnxio.DataType) bool {
	switch a {
	case onnxio.TypeFloat16, onnxio.TypeBFloat16:
		return b == onnxio.TypeFloat || b == onnxio.TypeDouble || a == b
	case onnxio.TypeFloat:
		return b == onnxio.TypeFloat || b == onnxio.TypeDouble
	case onnxio.TypeDouble:
		return b == onnxio.TypeDouble
	}
	return false
}

// cleanupOnce removes one redundant Cast (and a Cast that became dead with it) and
// reports whether it did.
func (c *converter) cleanupOnce(sc *scope) bool {
	g := sc.g
	producer := map[string]*onnxpb.NodeProto{}
	readers := map[string]int{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
		for _, in := range onnxio.NodeInputs(n) {
			readers[in]++
		}
	}
	outputs := map[string]bool{}
	for _, vi := range g.GetOutput() {
		outputs[vi.GetName()] = true
	}
	for _, n := range g.GetNode() {
		to, ok := castTo(n)
		if !ok {
			continue
		}
		x, y := n.Input[0], n.Output[0]
		tx := sc.newType(x)
		if tx == onnxio.TypeUndefined {
			continue
		}
		repl := ""
		var alsoRemove *onnxpb.NodeProto
		var p *onnxpb.NodeProto
		if tx == to {
			repl = x
		} else if pp := producer[x]; pp != nil {
			if _, isCast := castTo(pp); isCast {
				p = pp
			}
		}
		if p != nil && isFloatType(tx) && isFloatType(to) {
			w := p.Input[0]
			tw := sc.newType(w)
			onlyReader := readers[x] == 1 && !outputs[x]
			rounding := !c.opts.KeepRoundingCasts && onlyReader
			switch {
			case tw == to && widens(tw, tx):
				repl = w // exact: f16 -> f32 -> f16
				if onlyReader {
					alsoRemove = p
				}
			case tw == to && rounding:
				repl = w // f32 -> f16 -> f32: drops a rounding nobody else sees
				alsoRemove = p
			case tw != onnxio.TypeUndefined && tx != to && widens(tx, to) && rounding:
				// w -> narrow float -> wider float (int64 -> f16 -> f32): read w directly.
				n.Input[0] = w
				c.removeNodes(g, p)
				return true
			}
		}
		if repl == "" {
			continue
		}
		if outputs[y] {
			if sc.main {
				continue // a main graph output keeps its name and its producer
			}
			for _, vi := range g.GetOutput() {
				if vi.GetName() == y {
					vi.Name = proto.String(repl)
				}
			}
		}
		c.removeNodes(g, n)
		onnxio.ReplaceUses(g, y, repl)
		if alsoRemove != nil {
			c.removeNodes(g, alsoRemove)
		}
		return true
	}
	return false
}

func (c *converter) removeNodes(g *onnxpb.GraphProto, nodes ...*onnxpb.NodeProto) {
	g.Node = slices.DeleteFunc(g.Node, func(n *onnxpb.NodeProto) bool { return slices.Contains(nodes, n) })
	c.rep.CastsRemoved += len(nodes)
}

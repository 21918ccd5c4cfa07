package train

import "slices"

// passThrough lists ops whose input 0 a weight may reach its layer through (weights
// shared through Identity, a MatMul weight transposed or reshaped, a QAT weight behind
// QuantizeLinear → DequantizeLinear) and which therefore keep it a weight.
var passThrough = map[string]bool{
	"Identity": true, "Cast": true, "Transpose": true, "Reshape": true, "Flatten": true,
	"Squeeze": true, "Unsqueeze": true, "Slice": true, "Concat": true,
	"QuantizeLinear": true, "DequantizeLinear": true,
}

// weightInputs finds the float initializers that are weights: read, directly or through
// passThrough ops, as
//
//   - Conv or ConvTranspose W or B, Gemm B or C (or a constant A), either operand of a
//     MatMul, BatchNormalization or LayerNormalization scale or bias, the table of a
//     Gather (an embedding);
//   - an operand of Add, Sub or Mul that has more than one element (a bias, a scale, a
//     positional embedding), or of Add or Sub when the other operand comes from a MatMul,
//     Gemm or Conv (a bias of any shape).
//
// Everything else read by a differentiable input is a constant of the computation
// (Pow exponents, epsilons, GELU's √2, ½ and 1, attention scales, clip bounds) and is
// not trained by default.
func (g *Graph) weightInputs() map[int]bool {
	type use struct {
		n *node
		i int
	}
	consumers := map[int][]use{}
	producer := map[int]*node{}
	for _, n := range g.nodes {
		for i, id := range n.in {
			if id >= 0 {
				consumers[id] = append(consumers[id], use{n, i})
			}
		}
		for _, id := range n.out {
			if id >= 0 {
				producer[id] = n
			}
		}
	}
	linear := func(id int) bool {
		p := producer[id]
		return p != nil && slices.Contains([]string{"MatMul", "Gemm", "Conv", "ConvTranspose"}, p.op)
	}
	var isWeight func(id, numel, depth int) bool
	isWeight = func(id, numel, depth int) bool {
		for _, u := range consumers[id] {
			n, i := u.n, u.i
			switch n.op {
			case "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization":
				if i <= 2 {
					return true
				}
			case "Gather":
				if i == 0 {
					return true
				}
			case "Add", "Sub", "Mul":
				if numel > 1 {
					return true
				}
				if n.op != "Mul" && len(n.in) == 2 && n.in[1-i] >= 0 && linear(n.in[1-i]) {
					return true
				}
			default:
				if passThrough[n.op] && (i == 0 || n.op == "Concat") && depth < 8 && len(n.out) > 0 && n.out[0] >= 0 &&
					isWeight(n.out[0], numel, depth+1) {
					return true
				}
			}
		}
		return false
	}
	out := map[int]bool{}
	for id, v := range g.vals {
		if v.kind == vkConst && v.t != nil && v.t.DType == Float32 && isWeight(id, len(v.t.Data), 0) {
			out[id] = true
		}
	}
	return out
}

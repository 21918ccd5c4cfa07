package train

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// assignRoles works out, from the nodes that read each parameter, how Reinit should
// initialize it.
func (g *Graph) assignRoles() {
	consumers := map[int][]struct {
		n *node
		i int
	}{}
	producer := map[int]*node{}
	for _, n := range g.nodes {
		for i, id := range n.in {
			if id >= 0 {
				consumers[id] = append(consumers[id], struct {
					n *node
					i int
				}{n, i})
			}
		}
		for _, id := range n.out {
			if id >= 0 {
				producer[id] = n
			}
		}
	}
	isLinear := func(id int) bool {
		p := producer[id]
		return p != nil && (p.op == "MatMul" || p.op == "Gemm" || p.op == "Conv")
	}
	// roleOf finds the role of a parameter of the given shape from the nodes that read
	// value id: the parameter itself or, through Identity nodes (weights shared by
	// several layers), a value that only relabels it.
	var roleOf func(id int, shape []int, depth int) (paramRole, int)
	roleOf = func(id int, shape []int, depth int) (paramRole, int) {
		for _, cu := range consumers[id] {
			n, i := cu.n, cu.i
			switch n.op {
			case "Identity":
				if depth < 8 && len(n.out) > 0 && n.out[0] >= 0 {
					if r, f := roleOf(n.out[0], shape, depth+1); r != roleOther {
						return r, f
					}
				}
			case "Gemm":
				switch {
				case i == 1 && len(shape) == 2:
					if n.k.(*gemmOp).transB {
						return roleWeight, shape[1]
					}
					return roleWeight, shape[0]
				case i == 2:
					return roleBias, 0
				}
			case "MatMul":
				if i == 1 && len(shape) >= 2 {
					return roleWeight, shape[len(shape)-2]
				}
				if i == 0 && len(shape) >= 2 {
					return roleWeight, shape[len(shape)-1]
				}
			case "Conv":
				switch {
				case i == 1 && len(shape) >= 3:
					return roleWeight, numel(shape[1:])
				case i == 2:
					return roleBias, 0
				}
			case "BatchNormalization", "LayerNormalization":
				switch i {
				case 1:
					return roleScale, 0
				case 2:
					return roleShift, 0
				}
			case "Add", "Sub":
				if other := n.in[1-i]; other >= 0 && isLinear(other) {
					return roleBias, 0
				}
			case "Gather":
				if i == 0 {
					return roleEmbed, 0
				}
			}
		}
		return roleOther, 0
	}
	for id, v := range g.vals {
		if v.param != nil {
			v.param.role, v.param.fanIn = roleOf(id, v.param.Value.Shape, 0)
		}
	}
}

// Reinit draws fresh parameter values, deterministically for a seed, the way PyTorch
// initializes new layers: Conv, Gemm and MatMul weights Kaiming-uniform (bound
// 1/sqrt(fan_in)), their biases zeros, normalization scales ones and shifts zeros,
// Gather tables (embeddings) N(0, 1). Batch-norm running statistics go back to mean 0
// and variance 1, and gradients are cleared. Parameters with none of these roles keep
// their values. Each parameter's numbers depend only on the seed and its name.
func (g *Graph) Reinit(seed uint64) {
	for _, p := range g.params {
		h := fnv.New64a()
		h.Write([]byte(p.Name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		d := p.Value.Data
		switch p.role {
		case roleWeight:
			bound := 1 / math.Sqrt(float64(max(1, p.fanIn)))
			for i := range d {
				d[i] = float32((2*r.Float64() - 1) * bound)
			}
		case roleBias, roleShift:
			clear(d)
		case roleScale:
			for i := range d {
				d[i] = 1
			}
		case roleEmbed:
			for i := range d {
				d[i] = float32(r.NormFloat64())
			}
		}
		clear(p.Grad.Data)
	}
	for _, id := range g.states {
		v := g.vals[id]
		// BatchNormalization's inputs 3 and 4: mean and variance.
		fill := float32(0)
		if g.isVarState(id) {
			fill = 1
		}
		for i := range v.t.Data {
			v.t.Data[i] = fill
		}
	}
}

// isVarState reports whether state value id is read as a running variance.
func (g *Graph) isVarState(id int) bool {
	for _, n := range g.nodes {
		if n.op == "BatchNormalization" && len(n.in) > 4 && n.in[4] == id {
			return true
		}
	}
	return false
}

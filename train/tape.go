package train

import (
	"fmt"
	"slices"
	"unsafe"
)

// Tape records one Forward run: every value computed, and what each node kept for its
// backward pass.
type Tape struct {
	g         *Graph
	training  bool
	vals      []*Tensor
	saved     []any
	grads     []*Tensor
	gradOwned []bool // grads[i] was allocated for this value alone (may be added to in place)
	owned     [][]float32
	released  bool
}

// get returns a buffer of n float32s (contents arbitrary) that the tape owns.
func (t *Tape) get(n int) []float32 {
	b := t.g.getBuf(n)
	t.owned = append(t.owned, b)
	return b
}

// Release hands the tape's buffers back to its Graph, for the next Forward to reuse.
// The tape and every tensor it returned (outputs, gradients) must not be used after.
// Calling it is optional: without it the memory is left to the garbage collector.
func (t *Tape) Release() {
	if t.released {
		return
	}
	t.released = true
	t.g.putBufs(t.owned)
	t.owned = nil
	t.vals, t.saved, t.grads = nil, nil, nil
}

// Forward runs the graph on inputs (every graph input, by name). training selects
// training behaviour: BatchNormalization normalizes with the batch's statistics and
// updates its running statistics, and Dropout drops.
func (g *Graph) Forward(inputs map[string]*Tensor, training bool) (*Tape, error) {
	t := &Tape{g: g, training: training, vals: make([]*Tensor, len(g.vals)), saved: make([]any, len(g.nodes))}
	for id, v := range g.vals {
		if v.kind == vkConst || v.kind == vkParam || v.kind == vkState {
			t.vals[id] = v.t
		}
	}
	for name := range inputs {
		id, ok := g.byName[name]
		if !ok || g.vals[id].kind != vkInput {
			return nil, fmt.Errorf("forward: %q is not an input of the graph (inputs: %v)", name, g.Inputs())
		}
	}
	for _, id := range g.inputs {
		v := g.vals[id]
		x := inputs[v.name]
		if x == nil {
			return nil, fmt.Errorf("forward: input %q is missing", v.name)
		}
		if err := checkInput(v, x); err != nil {
			return nil, fmt.Errorf("forward: input %q: %v", v.name, err)
		}
		t.vals[id] = x
	}
	c := &ctx{tape: t, g: g, training: training}
	get := func(id int) *Tensor { return t.vals[id] }
	for _, n := range g.nodes {
		c.n = n
		outs, err := g.runNode(c, n, get)
		if err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		for i, id := range n.out {
			if id >= 0 {
				t.vals[id] = outs[i]
			}
		}
	}
	return t, nil
}

func checkInput(v *value, x *Tensor) error {
	if x.DType != v.dtype {
		return fmt.Errorf("is %s, the model wants %s", x.DType, v.dtype)
	}
	if x.Len() != numel(x.Shape) {
		return fmt.Errorf("has %d elements for shape %v", x.Len(), x.Shape)
	}
	if v.shape == nil {
		return nil
	}
	if len(x.Shape) != len(v.shape) {
		return fmt.Errorf("has shape %v, the model wants rank %d (%v)", x.Shape, len(v.shape), v.shape)
	}
	for i, d := range v.shape {
		if d >= 0 && x.Shape[i] != d {
			return fmt.Errorf("has shape %v, the model wants dimension %d to be %d", x.Shape, i, d)
		}
	}
	return nil
}

// Output returns the value called name (a graph output or any intermediate value), or
// nil when there is none.
func (t *Tape) Output(name string) *Tensor {
	id, ok := t.g.byName[name]
	if !ok || t.vals == nil {
		return nil
	}
	return t.vals[id]
}

// Grad returns the gradient that the last Backward computed for the value called name:
// an intermediate value, or a graph input when CompileOptions.InputGrads is set. For a
// parameter it returns Param.Grad (accumulated over Backward calls). It is nil when no
// gradient reached the value.
func (t *Tape) Grad(name string) *Tensor {
	id, ok := t.g.byName[name]
	if !ok {
		return nil
	}
	if p := t.g.vals[id].param; p != nil {
		return p.Grad
	}
	if t.grads == nil {
		return nil
	}
	return t.grads[id]
}

// Backward propagates gradients from seeds (the gradient of the objective with respect
// to each named value: graph outputs or any intermediate float value, each of that
// value's shape) back through the graph, and adds the parameters' gradients to
// Param.Grad. It may be called more than once on a tape (the parameter gradients add
// up); gradients of intermediate values start from zero on each call.
func (t *Tape) Backward(seeds map[string]*Tensor) error {
	if t.released {
		return fmt.Errorf("backward: the tape was released")
	}
	g := t.g
	t.grads = make([]*Tensor, len(g.vals))
	t.gradOwned = make([]bool, len(g.vals))
	for name, s := range seeds {
		id, ok := g.byName[name]
		if !ok {
			return fmt.Errorf("backward: no value is called %q", name)
		}
		x := t.vals[id]
		if x == nil || x.DType != Float32 || s == nil || s.DType != Float32 {
			return fmt.Errorf("backward: %q: gradients need float32 values and seeds", name)
		}
		if !slices.Equal(x.Shape, s.Shape) || len(s.Data) != len(x.Data) {
			return fmt.Errorf("backward: the seed for %q has shape %v, the value has %v", name, s.Shape, x.Shape)
		}
		if err := t.addGrad(id, s, true); err != nil {
			return err
		}
	}
	c := &ctx{tape: t, g: g, training: t.training}
	ins := make([]*Tensor, 0, 8)
	outs := make([]*Tensor, 0, 4)
	gouts := make([]*Tensor, 0, 4)
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		if !n.anyGrad {
			continue
		}
		ins, outs, gouts = ins[:0], outs[:0], gouts[:0]
		any := false
		for _, id := range n.out {
			var v, gv *Tensor
			if id >= 0 {
				v, gv = t.vals[id], t.grads[id]
			}
			outs = append(outs, v)
			gouts = append(gouts, gv)
			any = any || gv != nil
		}
		if !any {
			continue
		}
		for _, id := range n.in {
			var v *Tensor
			if id >= 0 {
				v = t.vals[id]
			}
			ins = append(ins, v)
		}
		c.n = n
		gin, err := n.k.(gradKernel).backward(c, ins, outs, gouts)
		if err != nil {
			return fmt.Errorf("backward: %s: %w", n.label, err)
		}
		for j, gi := range gin {
			if gi == nil || j >= len(n.in) || !n.needGrad[j] {
				continue
			}
			if err := t.addGrad(n.in[j], gi, sharesMemory(gi, gouts)); err != nil {
				return fmt.Errorf("backward: %s: input %d: %w", n.label, j, err)
			}
		}
	}
	return nil
}

// sharesMemory reports whether x's data lies inside the data of one of ts (a view).
func sharesMemory(x *Tensor, ts []*Tensor) bool {
	if len(x.Data) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(x.Data)))
	for _, t := range ts {
		if t == nil || len(t.Data) == 0 {
			continue
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))
		if p >= lo && p < lo+uintptr(len(t.Data))*4 {
			return true
		}
	}
	return false
}

// addGrad adds gradient gi to value id. shared says gi belongs to someone else (a seed,
// or another value's gradient passed through): it is then never written to.
func (t *Tape) addGrad(id int, gi *Tensor, shared bool) error {
	v := t.g.vals[id]
	x := t.vals[id]
	if len(gi.Data) != len(x.Data) {
		return fmt.Errorf("gradient of %q has shape %v, the value has %v", v.name, gi.Shape, x.Shape)
	}
	switch v.kind {
	case vkParam:
		axpy(1, gi.Data, v.param.Grad.Data)
		return nil
	case vkConst, vkState:
		return nil
	}
	if !slices.Equal(gi.Shape, x.Shape) {
		gi = &Tensor{Shape: x.Shape, Data: gi.Data}
	}
	cur := t.grads[id]
	switch {
	case cur == nil:
		t.grads[id], t.gradOwned[id] = gi, !shared
	case t.gradOwned[id]:
		axpy(1, gi.Data, cur.Data)
	case !shared:
		axpy(1, cur.Data, gi.Data)
		t.grads[id], t.gradOwned[id] = gi, true
	default:
		sum := &Tensor{Shape: x.Shape, Data: t.get(len(x.Data))}
		for k := range sum.Data {
			sum.Data[k] = cur.Data[k] + gi.Data[k]
		}
		t.grads[id], t.gradOwned[id] = sum, true
	}
	return nil
}

// axpy computes y += a*x.
func axpy(a float32, x, y []float32) {
	parallelFor(len(y), 1, func(lo, hi int) {
		yy := y[lo:hi]
		xx := x[lo:hi:hi]
		if a == 1 {
			for i := range yy {
				yy[i] += xx[i]
			}
			return
		}
		for i := range yy {
			yy[i] += a * xx[i]
		}
	})
}

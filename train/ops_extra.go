package train

import (
	"fmt"
	"math"
	"slices"
)

// extraOps are the activations and selections of real students: Clip (ReLU6),
// HardSigmoid, HardSwish, Max, Min, Where and Expand.
func extraOps() map[string]opSpec {
	return map[string]opSpec{
		"Clip": {make: newClip, diff: inputs(0),
			limits: "min and max as attributes (before opset 11) or scalar inputs; float only; no gradient to the bounds"},
		"HardSigmoid": {make: func(a attrs) (kernel, error) {
			return &hardOp{op: "HardSigmoid", alpha: a.float("alpha", 0.2), beta: a.float("beta", 0.5)}, nil
		}, diff: inputs(0)},
		"HardSwish": {make: func(attrs) (kernel, error) {
			return &hardOp{op: "HardSwish", alpha: 1.0 / 6, beta: 0.5, swish: true}, nil
		}, diff: inputs(0)},
		"Max": {make: func(attrs) (kernel, error) { return &extremeOp{op: "Max", max: true}, nil }, diff: allInputs,
			limits: "numpy broadcasting; float only; the gradient goes to the first input holding the maximum"},
		"Min": {make: func(attrs) (kernel, error) { return &extremeOp{op: "Min"}, nil }, diff: allInputs,
			limits: "numpy broadcasting; float only; the gradient goes to the first input holding the minimum"},
		"Where": {make: func(attrs) (kernel, error) { return whereOp{}, nil }, diff: inputs(1, 2),
			limits: "numpy broadcasting; X and Y float or int64"},
		"Expand": {make: func(attrs) (kernel, error) { return expandOp{}, nil }, diff: inputs(0)},
	}
}

// clipOp is Clip: y = min(max(x, lo), hi).
type clipOp struct {
	lo, hi float32 // before opset 11
}

func newClip(a attrs) (kernel, error) {
	return &clipOp{lo: a.float("min", -math.MaxFloat32), hi: a.float("max", math.MaxFloat32)}, nil
}

// bounds returns the bounds of a run: the attributes, or the inputs from opset 11.
func (k *clipOp) bounds(c *ctx, in []*Tensor) (lo, hi float32, err error) {
	if c.g.opset < 11 {
		return k.lo, k.hi, nil
	}
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	for i, p := range []*float32{&lo, &hi} {
		if b := input(in, i+1); b != nil {
			if b.DType != Float32 || len(b.Data) != 1 {
				return 0, 0, fmt.Errorf("the %s bound must be a float scalar, got %s", []string{"min", "max"}[i], b)
			}
			*p = b.Data[0]
		}
	}
	return lo, hi, nil
}

func (k *clipOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat("Clip", x); err != nil {
		return nil, err
	}
	lo, hi, err := k.bounds(c, in)
	if err != nil {
		return nil, err
	}
	y := c.allocRaw(x.Shape...)
	parallelFor(len(x.Data), 1, func(a, b int) {
		for i, v := range x.Data[a:b] {
			y.Data[a+i] = min(max(v, lo), hi)
		}
	})
	return []*Tensor{y}, nil
}

// backward passes the gradient where lo <= x <= hi, as PyTorch's clamp does.
func (k *clipOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, g := in[0], gout[0]
	lo, hi, err := k.bounds(c, in)
	if err != nil {
		return nil, err
	}
	dx := c.allocRaw(x.Shape...)
	parallelFor(len(x.Data), 1, func(a, b int) {
		for i := a; i < b; i++ {
			if v := x.Data[i]; v >= lo && v <= hi {
				dx.Data[i] = g.Data[i]
			} else {
				dx.Data[i] = 0
			}
		}
	})
	return []*Tensor{dx, nil, nil}, nil
}

// hardOp is HardSigmoid, max(0, min(1, αx + β)), and HardSwish, x · HardSigmoid(x)
// with α = 1/6, β = ½.
type hardOp struct {
	op          string
	alpha, beta float32
	swish       bool
}

func (k *hardOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat(k.op, x); err != nil {
		return nil, err
	}
	y := c.allocRaw(x.Shape...)
	parallelFor(len(x.Data), 1, func(a, b int) {
		for i, v := range x.Data[a:b] {
			s := max(0, min(1, k.alpha*v+k.beta))
			if k.swish {
				s *= v
			}
			y.Data[a+i] = s
		}
	})
	return []*Tensor{y}, nil
}

func (k *hardOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, g := in[0], gout[0]
	dx := c.allocRaw(x.Shape...)
	parallelFor(len(x.Data), 1, func(a, b int) {
		for i := a; i < b; i++ {
			v := x.Data[i]
			z := k.alpha*v + k.beta
			var d float32
			switch {
			case !k.swish && z > 0 && z < 1:
				d = k.alpha
			case k.swish && z >= 1:
				d = 1
			case k.swish && z > 0:
				d = z + k.alpha*v // d/dx x(αx+β) = 2αx + β
			}
			dx.Data[i] = g.Data[i] * d
		}
	})
	return []*Tensor{dx}, nil
}

// extremeOp is Max or Min of any number of inputs, with numpy broadcasting.
type extremeOp struct {
	op  string
	max bool
}

// extremeSaved records, per output element, the input that gave it.
type extremeSaved struct{ which []int32 }

func (k *extremeOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%s needs at least one input", k.op)
	}
	if err := wantFloat(k.op, in...); err != nil {
		return nil, err
	}
	out := slices.Clone(in[0].Shape)
	for _, t := range in[1:] {
		s, err := broadcastShape(out, t.Shape)
		if err != nil {
			return nil, err
		}
		out = s
	}
	y := c.allocRaw(out...)
	which := make([]int32, numel(out))
	for j, t := range in {
		bc := newBcastTo(out, out, t.Shape)
		n, _, sb := bc.inner()
		bc.each(true, func(o, _, ib int) {
			for e := range n {
				v := t.Data[ib+e*sb]
				if j == 0 || (k.max && v > y.Data[o+e]) || (!k.max && v < y.Data[o+e]) {
					y.Data[o+e], which[o+e] = v, int32(j)
				}
			}
		})
	}
	c.save(&extremeSaved{which})
	return []*Tensor{y}, nil
}

func (k *extremeOp) backward(c *ctx, in, out, gout []*Tensor) ([]*Tensor, error) {
	which := c.saved().(*extremeSaved).which
	y, g := out[0], gout[0]
	gin := make([]*Tensor, len(in))
	for j, t := range in {
		if !c.needGrad(j) {
			continue
		}
		dst := c.alloc(t.Shape...)
		bc := newBcastTo(y.Shape, y.Shape, t.Shape)
		n, _, sb := bc.inner()
		bc.each(false, func(o, _, ib int) {
			for e := range n {
				if which[o+e] == int32(j) {
					dst.Data[ib+e*sb] += g.Data[o+e]
				}
			}
		})
		gin[j] = dst
	}
	return gin, nil
}

// whereOp is Where(cond, X, Y) with numpy broadcasting.
type whereOp struct{}

// whereSaved is the condition broadcast to the output's shape.
type whereSaved struct{ cond []bool }

func (whereOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	cond, x, y := in[0], in[1], in[2]
	if cond.DType != Int64 {
		return nil, fmt.Errorf("the condition must be bool, got %s", cond)
	}
	if x.DType != y.DType {
		return nil, fmt.Errorf("the two value inputs differ in type: %s and %s", x, y)
	}
	xy, err := broadcastShape(x.Shape, y.Shape)
	if err != nil {
		return nil, err
	}
	out, err := broadcastShape(cond.Shape, xy)
	if err != nil {
		return nil, err
	}
	mask := make([]bool, numel(out))
	bcc := newBcastTo(out, cond.Shape, cond.Shape)
	n, sc, _ := bcc.inner()
	bcc.each(false, func(o, ic, _ int) {
		for e := range n {
			mask[o+e] = cond.Ints[ic+e*sc] != 0
		}
	})
	bc := newBcastTo(out, x.Shape, y.Shape)
	n, sa, sb := bc.inner()
	var r *Tensor
	if x.DType == Int64 {
		r = c.allocInts(out...)
		bc.each(false, func(o, ia, ib int) {
			for e := range n {
				if mask[o+e] {
					r.Ints[o+e] = x.Ints[ia+e*sa]
				} else {
					r.Ints[o+e] = y.Ints[ib+e*sb]
				}
			}
		})
	} else {
		r = c.allocRaw(out...)
		bc.each(true, func(o, ia, ib int) {
			for e := range n {
				if mask[o+e] {
					r.Data[o+e] = x.Data[ia+e*sa]
				} else {
					r.Data[o+e] = y.Data[ib+e*sb]
				}
			}
		})
	}
	c.save(&whereSaved{mask})
	return []*Tensor{r}, nil
}

func (whereOp) backward(c *ctx, in, out, gout []*Tensor) ([]*Tensor, error) {
	mask := c.saved().(*whereSaved).cond
	g := gout[0]
	gin := make([]*Tensor, 3)
	for j, pick := range []bool{true, false} {
		if !c.needGrad(j+1) || in[j+1].DType != Float32 {
			continue
		}
		full := c.allocRaw(out[0].Shape...)
		for i, m := range mask {
			if m == pick {
				full.Data[i] = g.Data[i]
			} else {
				full.Data[i] = 0
			}
		}
		gin[j+1] = reduceTo(c, full, in[j+1].Shape)
	}
	return gin, nil
}

// expandOp is Expand: the input broadcast against a shape.
type expandOp struct{}

func (expandOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	shape, err := intsOf(in[1])
	if err != nil {
		return nil, fmt.Errorf("shape input: %v", err)
	}
	out, err := broadcastShape(x.Shape, shape)
	if err != nil {
		return nil, err
	}
	bc := newBcastTo(out, x.Shape, x.Shape)
	n, sa, _ := bc.inner()
	if x.DType == Int64 {
		y := c.allocInts(out...)
		bc.each(false, func(o, ia, _ int) {
			for e := range n {
				y.Ints[o+e] = x.Ints[ia+e*sa]
			}
		})
		return []*Tensor{y}, nil
	}
	y := c.allocRaw(out...)
	bc.each(true, func(o, ia, _ int) {
		for e := range n {
			y.Data[o+e] = x.Data[ia+e*sa]
		}
	})
	return []*Tensor{y}, nil
}

func (expandOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	if in[0].DType != Float32 {
		return []*Tensor{nil, nil}, nil
	}
	return []*Tensor{reduceTo(c, gout[0], in[0].Shape), nil}, nil
}

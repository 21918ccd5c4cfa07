package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

func elementwiseOps() map[string]opSpec {
	m := map[string]opSpec{}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow"} {
		limits := "numpy broadcasting; also on int64 for shape arithmetic (Div truncates)"
		if op == "Pow" {
			limits = "numpy broadcasting; the exponent's gradient is 0 where the base is <= 0"
		}
		m[op] = opSpec{make: func(attrs) (kernel, error) { return &binaryOp{op: op}, nil }, diff: allInputs, limits: limits}
	}
	for op, f := range unaryFuncs {
		m[op] = opSpec{make: func(a attrs) (kernel, error) {
			return &unaryOp{op: op, f: f, alpha: a.float("alpha", 0.01)}, nil
		}, diff: inputs(0)}
	}
	m["Identity"] = opSpec{make: func(attrs) (kernel, error) { return identityOp{}, nil }, diff: inputs(0)}
	m["Cast"] = opSpec{make: newCast, diff: inputs(0), limits: "to FLOAT, DOUBLE, FLOAT16 (all held as float32), INT64, INT32 (held as int64)"}
	m["Dropout"] = opSpec{make: newDropout, diff: inputs(0), outputs: 2,
		limits: "drops only when Forward's training flag is set (the training_mode input is ignored); the mask output is float32 0/1"}
	return m
}

// binaryOp is Add, Sub, Mul, Div or Pow with numpy broadcasting.
type binaryOp struct{ op string }

func (k *binaryOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	a, b := in[0], in[1]
	if a.DType != b.DType {
		return nil, fmt.Errorf("%s of %s and %s", k.op, a, b)
	}
	bc, err := newBcast(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	if a.DType == Int64 {
		return k.forwardInt(c, bc, a, b)
	}
	y := c.allocRaw(bc.out...)
	n, sa, sb := bc.inner()
	op := k.op
	bc.each(true, func(o, ia, ib int) {
		binaryRow(op, y.Data[o:o+n], a.Data[ia:], b.Data[ib:], sa, sb)
	})
	return []*Tensor{y}, nil
}

func (k *binaryOp) forwardInt(c *ctx, bc *bcast, a, b *Tensor) ([]*Tensor, error) {
	y := c.allocInts(bc.out...)
	n, sa, sb := bc.inner()
	var err error
	bc.each(false, func(o, ia, ib int) {
		for j := range n {
			x, z := a.Ints[ia+j*sa], b.Ints[ib+j*sb]
			var r int64
			switch k.op {
			case "Add":
				r = x + z
			case "Sub":
				r = x - z
			case "Mul":
				r = x * z
			case "Div":
				if z == 0 {
					err = fmt.Errorf("integer division by zero")
					return
				}
				r = x / z
			case "Pow":
				r = int64(math.Pow(float64(x), float64(z)))
			}
			y.Ints[o+j] = r
		}
	})
	return []*Tensor{y}, err
}

// binaryRow computes one run of y = a op b, where a and b step by sa and sb (0 or 1).
func binaryRow(op string, y, a, b []float32, sa, sb int) {
	n := len(y)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n:n], b[:n:n]
		switch op {
		case "Add":
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case "Sub":
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case "Mul":
			for i := range y {
				y[i] = a[i] * b[i]
			}
		case "Div":
			for i := range y {
				y[i] = a[i] / b[i]
			}
		case "Pow":
			for i := range y {
				y[i] = powf(a[i], b[i])
			}
		}
	case sa == 1 && sb == 0:
		a = a[:n:n]
		z := b[0]
		switch op {
		case "Add":
			for i := range y {
				y[i] = a[i] + z
			}
		case "Sub":
			for i := range y {
				y[i] = a[i] - z
			}
		case "Mul":
			for i := range y {
				y[i] = a[i] * z
			}
		case "Div":
			for i := range y {
				y[i] = a[i] / z
			}
		case "Pow":
			for i := range y {
				y[i] = powf(a[i], z)
			}
		}
	default:
		for i := range y {
			x, z := a[i*sa], b[i*sb]
			switch op {
			case "Add":
				y[i] = x + z
			case "Sub":
				y[i] = x - z
			case "Mul":
				y[i] = x * z
			case "Div":
				y[i] = x / z
			case "Pow":
				y[i] = powf(x, z)
			}
		}
	}
}

func powf(x, e float32) float32 {
	switch e {
	case 2:
		return x * x
	case 1:
		return x
	case 0.5:
		return float32(math.Sqrt(float64(x)))
	}
	return float32(math.Pow(float64(x), float64(e)))
}

func (k *binaryOp) backward(c *ctx, in, out, gout []*Tensor) ([]*Tensor, error) {
	a, b, y, g := in[0], in[1], out[0], gout[0]
	gin := make([]*Tensor, 2)
	switch k.op {
	case "Add", "Sub":
		if c.needGrad(0) {
			gin[0] = reduceTo(c, g, a.Shape)
		}
		if c.needGrad(1) {
			gb := reduceTo(c, g, b.Shape)
			if k.op == "Sub" {
				neg := c.allocRaw(b.Shape...)
				for i, v := range gb.Data {
					neg.Data[i] = -v
				}
				gb = neg
			}
			gin[1] = gb
		}
		return gin, nil
	}
	bc := newBcastTo(y.Shape, a.Shape, b.Shape)
	n, sa, sb := bc.inner()
	// Each operand's gradient is accumulated run by run; runs may map onto the same
	// elements of a broadcast operand, so those run serially.
	grad := func(which int, f func(g, x, z, y float32) float32) *Tensor {
		shape := a.Shape
		if which == 1 {
			shape = b.Shape
		}
		dst := c.alloc(shape...)
		par := slices.Equal(shape, y.Shape)
		bc.each(par, func(o, ia, ib int) {
			off, st := ia, sa
			if which == 1 {
				off, st = ib, sb
			}
			gg, yy := g.Data[o:o+n], y.Data[o:o+n]
			for j := range n {
				dst.Data[off+j*st] += f(gg[j], a.Data[ia+j*sa], b.Data[ib+j*sb], yy[j])
			}
		})
		return dst
	}
	switch k.op {
	case "Mul":
		if c.needGrad(0) {
			gin[0] = grad(0, func(g, _, z, _ float32) float32 { return g * z })
		}
		if c.needGrad(1) {
			gin[1] = grad(1, func(g, x, _, _ float32) float32 { return g * x })
		}
	case "Div":
		if c.needGrad(0) {
			gin[0] = grad(0, func(g, _, z, _ float32) float32 { return g / z })
		}
		if c.needGrad(1) {
			gin[1] = grad(1, func(g, _, z, y float32) float32 { return -g * y / z })
		}
	case "Pow":
		if c.needGrad(0) {
			gin[0] = grad(0, func(g, x, z, _ float32) float32 {
				if z == 0 {
					return 0
				}
				return g * z * powf(x, z-1)
			})
		}
		if c.needGrad(1) {
			gin[1] = grad(1, func(g, x, _, y float32) float32 {
				if x <= 0 {
					return 0
				}
				return g * y * float32(math.Log(float64(x)))
			})
		}
	}
	return gin, nil
}

// unary functions: forward f(x), and the derivative from x and y = f(x).
type unaryFunc struct {
	f  func(x, alpha float32) float32
	df func(x, y, alpha float32) float32
}

var unaryFuncs = map[string]unaryFunc{
	"Relu": {func(x, _ float32) float32 { return max(x, 0) }, func(x, _, _ float32) float32 {
		if x > 0 {
			return 1
		}
		return 0
	}},
	"LeakyRelu": {func(x, al float32) float32 {
		if x < 0 {
			return al * x
		}
		return x
	}, func(x, _, al float32) float32 {
		if x < 0 {
			return al
		}
		return 1
	}},
	"Sigmoid": {func(x, _ float32) float32 {
		if x >= 0 {
			return float32(1 / (1 + math.Exp(-float64(x))))
		}
		e := math.Exp(float64(x))
		return float32(e / (1 + e))
	}, func(_, y, _ float32) float32 { return y * (1 - y) }},
	"Tanh": {func(x, _ float32) float32 { return float32(math.Tanh(float64(x))) },
		func(_, y, _ float32) float32 { return 1 - y*y }},
	"Erf": {func(x, _ float32) float32 { return float32(math.Erf(float64(x))) },
		func(x, _, _ float32) float32 { return float32(2 / math.SqrtPi * math.Exp(-float64(x)*float64(x))) }},
	"Sqrt": {func(x, _ float32) float32 { return float32(math.Sqrt(float64(x))) },
		func(_, y, _ float32) float32 { return 0.5 / y }},
	"Exp": {func(x, _ float32) float32 { return float32(math.Exp(float64(x))) },
		func(_, y, _ float32) float32 { return y }},
	"Log": {func(x, _ float32) float32 { return float32(math.Log(float64(x))) },
		func(x, _, _ float32) float32 { return 1 / x }},
	"Neg": {func(x, _ float32) float32 { return -x }, func(_, _, _ float32) float32 { return -1 }},
	"Abs": {func(x, _ float32) float32 { return float32(math.Abs(float64(x))) }, func(x, _, _ float32) float32 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	}},
}

type unaryOp struct {
	op    string
	f     unaryFunc
	alpha float32
}

func (k *unaryOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat(k.op, x); err != nil {
		return nil, err
	}
	y := c.allocRaw(x.Shape...)
	f, al := k.f.f, k.alpha
	if k.op == "Relu" { // the hot one: no call per element
		parallelFor(len(x.Data), 1, func(lo, hi int) {
			for i, v := range x.Data[lo:hi] {
				y.Data[lo+i] = max(v, 0)
			}
		})
		return []*Tensor{y}, nil
	}
	parallelFor(len(x.Data), 8, func(lo, hi int) {
		for i, v := range x.Data[lo:hi] {
			y.Data[lo+i] = f(v, al)
		}
	})
	return []*Tensor{y}, nil
}

func (k *unaryOp) backward(c *ctx, in, out, gout []*Tensor) ([]*Tensor, error) {
	x, y, g := in[0], out[0], gout[0]
	dx := c.allocRaw(x.Shape...)
	if k.op == "Relu" {
		parallelFor(len(x.Data), 1, func(lo, hi int) {
			for i, v := range x.Data[lo:hi] {
				if v > 0 {
					dx.Data[lo+i] = g.Data[lo+i]
				} else {
					dx.Data[lo+i] = 0
				}
			}
		})
		return []*Tensor{dx}, nil
	}
	df, al := k.f.df, k.alpha
	parallelFor(len(x.Data), 8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dx.Data[i] = g.Data[i] * df(x.Data[i], y.Data[i], al)
		}
	})
	return []*Tensor{dx}, nil
}

type identityOp struct{}

func (identityOp) forward(_ *ctx, in []*Tensor) ([]*Tensor, error) { return []*Tensor{in[0]}, nil }
func (identityOp) backward(_ *ctx, _, _, gout []*Tensor) ([]*Tensor, error) {
	return []*Tensor{gout[0]}, nil
}

type castOp struct{ to DType }

func newCast(a attrs) (kernel, error) {
	switch dt := onnxio.DataType(a.int("to", 0)); dt {
	case onnxio.TypeFloat, onnxio.TypeDouble, onnxio.TypeFloat16:
		return &castOp{to: Float32}, nil
	case onnxio.TypeInt64, onnxio.TypeInt32:
		return &castOp{to: Int64}, nil
	default:
		return nil, fmt.Errorf("casting to %s is not supported (float and int64 only)", dt)
	}
}

func (k *castOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if x.DType == k.to {
		return []*Tensor{x}, nil
	}
	if k.to == Float32 {
		y := c.allocRaw(x.Shape...)
		for i, v := range x.Ints {
			y.Data[i] = float32(v)
		}
		return []*Tensor{y}, nil
	}
	y := c.allocInts(x.Shape...)
	for i, v := range x.Data {
		y.Ints[i] = int64(v) // truncates toward zero, like onnxruntime
	}
	return []*Tensor{y}, nil
}

func (k *castOp) backward(_ *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	if in[0].DType != Float32 || k.to != Float32 {
		return []*Tensor{nil}, nil
	}
	return []*Tensor{gout[0]}, nil
}

type dropoutOp struct{ ratio float32 }

func newDropout(a attrs) (kernel, error) {
	return &dropoutOp{ratio: a.float("ratio", 0.5)}, nil
}

func (k *dropoutOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat("Dropout", x); err != nil {
		return nil, err
	}
	ratio := k.ratio
	if c.g.opset >= 12 {
		ratio = 0.5
		if r := input(in, 1); r != nil {
			if r.DType != Float32 || len(r.Data) != 1 {
				return nil, fmt.Errorf("ratio must be a float scalar")
			}
			ratio = r.Data[0]
		}
	}
	if ratio < 0 || ratio >= 1 {
		return nil, fmt.Errorf("ratio %v is outside [0, 1)", ratio)
	}
	wantMask := len(c.n.out) > 1 && c.n.out[1] >= 0
	var mask *Tensor
	if wantMask {
		mask = c.allocRaw(x.Shape...)
	}
	if !c.training || ratio == 0 {
		if mask != nil {
			for i := range mask.Data {
				mask.Data[i] = 1
			}
		}
		c.save((*Tensor)(nil))
		return []*Tensor{x, mask}, nil
	}
	scale := 1 / (1 - ratio)
	keep := c.allocRaw(x.Shape...) // the factor each element is multiplied by
	y := c.allocRaw(x.Shape...)
	rng := c.g.rng
	for i, v := range x.Data {
		if rng.Float32() < ratio {
			keep.Data[i], y.Data[i] = 0, 0
		} else {
			keep.Data[i], y.Data[i] = scale, v*scale
		}
	}
	if mask != nil {
		for i, f := range keep.Data {
			mask.Data[i] = min(f, 1)
		}
	}
	c.save(keep)
	return []*Tensor{y, mask}, nil
}

func (k *dropoutOp) backward(c *ctx, _, _, gout []*Tensor) ([]*Tensor, error) {
	keep, _ := c.saved().(*Tensor)
	if keep == nil {
		return []*Tensor{gout[0]}, nil
	}
	dx := c.allocRaw(keep.Shape...)
	for i, f := range keep.Data {
		dx.Data[i] = gout[0].Data[i] * f
	}
	return []*Tensor{dx}, nil
}

package train

import (
	"fmt"
	"math"
	"slices"
)

func normOps() map[string]opSpec {
	return map[string]opSpec{
		"BatchNormalization": {make: newBatchNorm, diff: inputs(0, 1, 2), state: []int{3, 4}, outputs: 3,
			limits: "batch statistics iff Forward's training flag (training_mode attribute ignored); running var updated with the unbiased batch variance, as PyTorch does"},
		"LayerNormalization": {make: func(a attrs) (kernel, error) {
			return &layerNorm{axis: a.int("axis", -1), eps: a.float("epsilon", 1e-5)}, nil
		}, diff: inputs(0, 1, 2), outputs: 3, limits: "scale and bias hold exactly the normalized shape's elements; no gradient through the Mean and InvStdDev outputs"},
		"Softmax": {make: func(a attrs) (kernel, error) { return newSoftmax(a, false), nil }, diff: inputs(0),
			limits: "opset < 13 flattens from axis, as ONNX defines"},
		"LogSoftmax": {make: func(a attrs) (kernel, error) { return newSoftmax(a, true), nil }, diff: inputs(0),
			limits: "opset < 13 flattens from axis, as ONNX defines"},
		"ReduceMean": {make: func(a attrs) (kernel, error) { return newReduce(a, true), nil }, diff: inputs(0),
			limits: "axes as attribute (opset < 18) or input"},
		"ReduceSum": {make: func(a attrs) (kernel, error) { return newReduce(a, false), nil }, diff: inputs(0),
			limits: "axes as attribute (opset < 13) or input"},
	}
}

type batchNorm struct {
	eps, momentum float32
}

func newBatchNorm(a attrs) (kernel, error) {
	if a.opset < 9 && a.has("spatial") && a.int("spatial", 1) != 1 {
		return nil, fmt.Errorf("spatial=0 is not supported")
	}
	return &batchNorm{eps: a.float("epsilon", 1e-5), momentum: a.float("momentum", 0.9)}, nil
}

type bnSaved struct {
	mean, invstd []float32 // per channel: the batch's (training) or the running ones
	batch        bool
}

func (k *batchNorm) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x, scale, bias, rm, rv := in[0], in[1], in[2], in[3], in[4]
	if err := wantFloat("BatchNormalization", x, scale, bias, rm, rv); err != nil {
		return nil, err
	}
	if len(x.Shape) < 2 {
		return nil, fmt.Errorf("BatchNormalization needs rank 2 or more, got %v", x.Shape)
	}
	n, ch := x.Shape[0], x.Shape[1]
	sp := numel(x.Shape[2:])
	for _, t := range []*Tensor{scale, bias, rm, rv} {
		if len(t.Data) != ch {
			return nil, fmt.Errorf("BatchNormalization: a per-channel input has %d elements for %d channels", len(t.Data), ch)
		}
	}
	s := &bnSaved{mean: make([]float32, ch), invstd: make([]float32, ch), batch: c.training}
	var newMean, newVar *Tensor
	if c.training {
		m := n * sp
		newMean, newVar = c.allocRaw(ch), c.allocRaw(ch)
		parallelFor(ch, m, func(lo, hi int) {
			for cc := lo; cc < hi; cc++ {
				var sum float64
				for i := range n {
					for _, v := range x.Data[(i*ch+cc)*sp : (i*ch+cc+1)*sp] {
						sum += float64(v)
					}
				}
				mean := sum / float64(m)
				var sq float64
				for i := range n {
					for _, v := range x.Data[(i*ch+cc)*sp : (i*ch+cc+1)*sp] {
						d := float64(v) - mean
						sq += d * d
					}
				}
				variance := sq / float64(m)
				s.mean[cc] = float32(mean)
				s.invstd[cc] = float32(1 / math.Sqrt(variance+float64(k.eps)))
				unbiased := variance
				if m > 1 {
					unbiased = sq / float64(m-1)
				}
				mom := float64(k.momentum)
				newMean.Data[cc] = float32(float64(rm.Data[cc])*mom + mean*(1-mom))
				newVar.Data[cc] = float32(float64(rv.Data[cc])*mom + unbiased*(1-mom))
			}
		})
		if c.tape != nil {
			// Running statistics held by the graph are updated in place (and exported).
			if id := c.n.in[3]; c.g.vals[id].kind == vkState {
				copy(rm.Data, newMean.Data)
			}
			if id := c.n.in[4]; c.g.vals[id].kind == vkState {
				copy(rv.Data, newVar.Data)
			}
		}
	} else {
		for cc := range ch {
			s.mean[cc] = rm.Data[cc]
			s.invstd[cc] = float32(1 / math.Sqrt(float64(rv.Data[cc])+float64(k.eps)))
		}
		newMean, newVar = rm, rv
	}
	y := c.allocRaw(x.Shape...)
	parallelFor(n*ch, sp, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			cc := p % ch
			a := s.invstd[cc] * scale.Data[cc]
			b := bias.Data[cc] - s.mean[cc]*a
			src, dst := x.Data[p*sp:(p+1)*sp], y.Data[p*sp:(p+1)*sp]
			for i, v := range src {
				dst[i] = v*a + b
			}
		}
	})
	c.save(s)
	return []*Tensor{y, newMean, newVar}, nil
}

func (k *batchNorm) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, scale, gy := in[0], in[1], gout[0]
	if gy == nil {
		return make([]*Tensor, len(in)), nil
	}
	s := c.saved().(*bnSaved)
	n, ch := x.Shape[0], x.Shape[1]
	sp := numel(x.Shape[2:])
	m := n * sp
	// Per channel: sum(dy) and sum(dy·xhat).
	sumDy, sumDyX := make([]float64, ch), make([]float64, ch)
	parallelFor(ch, m, func(lo, hi int) {
		for cc := lo; cc < hi; cc++ {
			mean, inv := s.mean[cc], s.invstd[cc]
			var a, b float64
			for i := range n {
				off := (i*ch + cc) * sp
				xs, gs := x.Data[off:off+sp], gy.Data[off:off+sp:off+sp]
				for j, v := range xs {
					a += float64(gs[j])
					b += float64(gs[j]) * float64((v-mean)*inv)
				}
			}
			sumDy[cc], sumDyX[cc] = a, b
		}
	})
	gin := make([]*Tensor, len(in))
	if c.needGrad(0) {
		dx := c.allocRaw(x.Shape...)
		parallelFor(n*ch, sp, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				cc := p % ch
				mean, inv, sc := s.mean[cc], s.invstd[cc], scale.Data[cc]
				xs, gs, ds := x.Data[p*sp:(p+1)*sp], gy.Data[p*sp:(p+1)*sp], dx.Data[p*sp:(p+1)*sp]
				if !s.batch {
					f := sc * inv
					for j, g := range gs {
						ds[j] = g * f
					}
					continue
				}
				mdy := float32(sumDy[cc] / float64(m))
				mdyx := float32(sumDyX[cc] / float64(m))
				for j, v := range xs {
					xh := (v - mean) * inv
					ds[j] = sc * inv * (gs[j] - mdy - xh*mdyx)
				}
			}
		})
		gin[0] = dx
	}
	if c.needGrad(1) {
		ds := c.allocRaw(ch)
		for cc := range ch {
			ds.Data[cc] = float32(sumDyX[cc])
		}
		gin[1] = ds
	}
	if c.needGrad(2) {
		db := c.allocRaw(ch)
		for cc := range ch {
			db.Data[cc] = float32(sumDy[cc])
		}
		gin[2] = db
	}
	return gin, nil
}

type layerNorm struct {
	axis int
	eps  float32
}

type lnSaved struct {
	mean, invstd []float32
}

func (k *layerNorm) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x, scale, bias := in[0], in[1], input(in, 2)
	if err := wantFloat("LayerNormalization", x, scale, bias); err != nil {
		return nil, err
	}
	axis, err := normAxis(k.axis, len(x.Shape))
	if err != nil {
		return nil, err
	}
	d := numel(x.Shape[axis:])
	rows := numel(x.Shape[:axis])
	if len(scale.Data) != d || (bias != nil && len(bias.Data) != d) {
		return nil, fmt.Errorf("LayerNormalization: scale and bias must hold %d elements", d)
	}
	y := c.allocRaw(x.Shape...)
	statShape := slices.Clone(x.Shape)
	for i := axis; i < len(statShape); i++ {
		statShape[i] = 1
	}
	mt, it := c.allocRaw(statShape...), c.allocRaw(statShape...)
	parallelFor(rows, d, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xs, ys := x.Data[r*d:(r+1)*d], y.Data[r*d:(r+1)*d]
			var sum float64
			for _, v := range xs {
				sum += float64(v)
			}
			mean := sum / float64(d)
			var sq float64
			for _, v := range xs {
				e := float64(v) - mean
				sq += e * e
			}
			inv := float32(1 / math.Sqrt(sq/float64(d)+float64(k.eps)))
			mf := float32(mean)
			mt.Data[r], it.Data[r] = mf, inv
			for j, v := range xs {
				o := (v - mf) * inv * scale.Data[j]
				if bias != nil {
					o += bias.Data[j]
				}
				ys[j] = o
			}
		}
	})
	c.save(&lnSaved{mean: mt.Data, invstd: it.Data})
	return []*Tensor{y, mt, it}, nil
}

func (k *layerNorm) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, scale, bias, gy := in[0], in[1], input(in, 2), gout[0]
	gin := make([]*Tensor, len(in))
	if gy == nil {
		return gin, nil
	}
	s := c.saved().(*lnSaved)
	d := len(scale.Data)
	rows := len(x.Data) / d
	var dx *Tensor
	if c.needGrad(0) {
		dx = c.allocRaw(x.Shape...)
	}
	nw := min(workers(), rows)
	dsc, dbs := make([][]float64, nw), make([][]float64, nw)
	for i := range nw {
		dsc[i], dbs[i] = make([]float64, d), make([]float64, d)
	}
	parallelChunks(rows, 4*d, func(chunk, lo, hi int) {
		ds, db := dsc[chunk], dbs[chunk]
		for r := lo; r < hi; r++ {
			xs, gs := x.Data[r*d:(r+1)*d], gy.Data[r*d:(r+1)*d]
			mean, inv := s.mean[r], s.invstd[r]
			var a, b float64 // mean of dxhat and of dxhat·xhat
			for j, v := range xs {
				xh := (v - mean) * inv
				g := gs[j]
				ds[j] += float64(g * xh)
				db[j] += float64(g)
				dxh := float64(g * scale.Data[j])
				a += dxh
				b += dxh * float64(xh)
			}
			if dx == nil {
				continue
			}
			ma, mb := float32(a/float64(d)), float32(b/float64(d))
			dxs := dx.Data[r*d : (r+1)*d]
			for j, v := range xs {
				xh := (v - mean) * inv
				dxs[j] = inv * (gs[j]*scale.Data[j] - ma - xh*mb)
			}
		}
	})
	if dx != nil {
		gin[0] = dx
	}
	sum := func(parts [][]float64, shape []int) *Tensor {
		t := c.allocRaw(shape...)
		for j := range t.Data {
			var v float64
			for _, p := range parts {
				v += p[j]
			}
			t.Data[j] = float32(v)
		}
		return t
	}
	if c.needGrad(1) {
		gin[1] = sum(dsc, scale.Shape)
	}
	if bias != nil && c.needGrad(2) {
		gin[2] = sum(dbs, bias.Shape)
	}
	return gin, nil
}

type softmaxOp struct {
	axis    int
	log     bool
	flatten bool // opset < 13: the input is flattened to 2-D at axis
}

func newSoftmax(a attrs, log bool) *softmaxOp {
	if a.opset < 13 {
		return &softmaxOp{axis: a.int("axis", 1), log: log, flatten: true}
	}
	return &softmaxOp{axis: a.int("axis", -1), log: log}
}

// layout splits x's shape into (outer, length along the axis, inner).
func (k *softmaxOp) layout(shape []int) (outer, l, inner int, err error) {
	axis, err := normAxis(k.axis, max(1, len(shape)))
	if err != nil {
		return 0, 0, 0, err
	}
	if len(shape) == 0 {
		return 1, 1, 1, nil
	}
	outer = numel(shape[:axis])
	if k.flatten {
		return outer, numel(shape[axis:]), 1, nil
	}
	return outer, shape[axis], numel(shape[axis+1:]), nil
}

func (k *softmaxOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat("Softmax", x); err != nil {
		return nil, err
	}
	outer, l, inner, err := k.layout(x.Shape)
	if err != nil {
		return nil, err
	}
	y := c.allocRaw(x.Shape...)
	parallelFor(outer*inner, 4*l, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			o, i := p/inner, p%inner
			base := o*l*inner + i
			m := float32(math.Inf(-1))
			for j := range l {
				m = max(m, x.Data[base+j*inner])
			}
			var sum float64
			for j := range l {
				e := math.Exp(float64(x.Data[base+j*inner] - m))
				sum += e
				if !k.log {
					y.Data[base+j*inner] = float32(e)
				}
			}
			if k.log {
				ls := float32(math.Log(sum))
				for j := range l {
					y.Data[base+j*inner] = x.Data[base+j*inner] - m - ls
				}
			} else {
				inv := float32(1 / sum)
				for j := range l {
					y.Data[base+j*inner] *= inv
				}
			}
		}
	})
	return []*Tensor{y}, nil
}

func (k *softmaxOp) backward(c *ctx, _, out, gout []*Tensor) ([]*Tensor, error) {
	y, g := out[0], gout[0]
	outer, l, inner, _ := k.layout(y.Shape)
	dx := c.allocRaw(y.Shape...)
	parallelFor(outer*inner, 4*l, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			o, i := p/inner, p%inner
			base := o*l*inner + i
			var s float64
			for j := range l {
				if k.log {
					s += float64(g.Data[base+j*inner])
				} else {
					s += float64(g.Data[base+j*inner] * y.Data[base+j*inner])
				}
			}
			sf := float32(s)
			for j := range l {
				q := base + j*inner
				if k.log {
					dx.Data[q] = g.Data[q] - float32(math.Exp(float64(y.Data[q])))*sf
				} else {
					dx.Data[q] = y.Data[q] * (g.Data[q] - sf)
				}
			}
		}
	})
	return []*Tensor{dx}, nil
}

type reduceOp struct {
	mean      bool
	axes      []int // from the attribute; nil when given as an input or absent
	axesInput bool
	keepdims  bool
	noopEmpty bool
}

func newReduce(a attrs, mean bool) *reduceOp {
	inputFrom := int64(18)
	if !mean {
		inputFrom = 13
	}
	return &reduceOp{mean: mean, axes: a.ints("axes"), axesInput: a.opset >= inputFrom,
		keepdims: a.int("keepdims", 1) != 0, noopEmpty: a.int("noop_with_empty_axes", 0) != 0}
}

// shapes returns the reduced shape with kept dimensions, the output shape and the
// number of elements each output sums.
func (k *reduceOp) shapes(x *Tensor, in []*Tensor) (keep, out []int, count int, err error) {
	axes := k.axes
	if k.axesInput {
		axes = nil
		if t := input(in, 1); t != nil {
			if axes, err = intsOf(t); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	r := len(x.Shape)
	red := make([]bool, r)
	if len(axes) == 0 {
		if k.noopEmpty {
			return slices.Clone(x.Shape), slices.Clone(x.Shape), 1, nil
		}
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return nil, nil, 0, err
		}
		red[ax] = true
	}
	count = 1
	for i, d := range x.Shape {
		if red[i] {
			keep = append(keep, 1)
			count *= d
			if k.keepdims {
				out = append(out, 1)
			}
		} else {
			keep = append(keep, d)
			out = append(out, d)
		}
	}
	return keep, out, count, nil
}

func (k *reduceOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat("Reduce", x); err != nil {
		return nil, err
	}
	keep, out, count, err := k.shapes(x, in)
	if err != nil {
		return nil, err
	}
	acc := make([]float64, numel(keep))
	bc := newBcastTo(x.Shape, x.Shape, keep)
	n, _, sb := bc.inner()
	bc.each(false, func(o, _, ib int) {
		src := x.Data[o : o+n]
		if sb == 0 {
			var s float64
			for _, v := range src {
				s += float64(v)
			}
			acc[ib] += s
			return
		}
		for j, v := range src {
			acc[ib+j] += float64(v)
		}
	})
	y := c.allocRaw(out...)
	div := 1.0
	if k.mean && count > 0 {
		div = float64(count)
	}
	for i, v := range acc {
		y.Data[i] = float32(v / div)
	}
	return []*Tensor{y}, nil
}

func (k *reduceOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, g := in[0], gout[0]
	keep, _, count, _ := k.shapes(x, in)
	scale := float32(1)
	if k.mean && count > 0 {
		scale = 1 / float32(count)
	}
	dx := c.allocRaw(x.Shape...)
	bc := newBcastTo(x.Shape, x.Shape, keep)
	n, _, sb := bc.inner()
	bc.each(true, func(o, _, ib int) {
		dst := dx.Data[o : o+n]
		for j := range dst {
			dst[j] = g.Data[ib+j*sb] * scale
		}
	})
	gin := make([]*Tensor, len(in))
	gin[0] = dx
	return gin, nil
}

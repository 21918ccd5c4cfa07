package train

import (
	"fmt"
	"math"
	"slices"
)

func convOps() map[string]opSpec {
	return map[string]opSpec{
		"Conv": {make: newConv, diff: allInputs,
			limits: "1-D and 2-D; strides, pads, dilations, group, auto_pad NOTSET/SAME_UPPER/SAME_LOWER/VALID"},
		"MaxPool": {make: func(a attrs) (kernel, error) { return newPool(a, true) }, diff: inputs(0),
			limits: "1-D and 2-D; strides, pads, dilations, ceil_mode, auto_pad; no Indices output, storage_order 0"},
		"AveragePool": {make: func(a attrs) (kernel, error) { return newPool(a, false) }, diff: inputs(0),
			limits: "1-D and 2-D; strides, pads, ceil_mode, count_include_pad, auto_pad; dilations 1"},
		"GlobalAveragePool": {make: func(attrs) (kernel, error) { return globalAvgPool{}, nil }, diff: inputs(0)},
	}
}

// window holds the spatial attributes shared by Conv and the pools.
type window struct {
	autoPad   string
	kernel    []int // from kernel_shape; Conv may take it from the weights
	strides   []int
	pads      []int
	dilations []int
	ceil      bool
}

func readWindow(a attrs) (window, error) {
	w := window{autoPad: a.str("auto_pad", "NOTSET"), kernel: a.ints("kernel_shape"), strides: a.ints("strides"),
		pads: a.ints("pads"), dilations: a.ints("dilations"), ceil: a.int("ceil_mode", 0) != 0}
	switch w.autoPad {
	case "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return w, fmt.Errorf("auto_pad %q is not supported", w.autoPad)
	}
	if r := len(w.kernel); r > 2 {
		return w, fmt.Errorf("%d-D windows are not supported (1-D and 2-D only)", r)
	}
	return w, nil
}

// geom is a 2-D window applied to an [N, C, H, W] input (1-D inputs use H = 1).
type geom struct {
	n, c, h, w     int
	kh, kw         int
	sh, sw         int
	dh, dw         int
	pt, pl, pb, pr int
	oh, ow         int
	oneD           bool
}

// geometry works out the output size of window w with kernel size kernel over x's
// spatial dimensions.
func (w *window) geometry(xs []int, kernel []int) (*geom, error) {
	sp := len(xs) - 2
	if sp < 1 || sp > 2 {
		return nil, fmt.Errorf("input of shape %v: only 1-D and 2-D (rank 3 and 4) inputs are supported", xs)
	}
	if len(kernel) != sp {
		return nil, fmt.Errorf("kernel %v does not match input %v", kernel, xs)
	}
	get := func(v []int, i, def int) int {
		if len(v) == 0 {
			return def
		}
		return v[i]
	}
	if (len(w.strides) != 0 && len(w.strides) != sp) || (len(w.dilations) != 0 && len(w.dilations) != sp) ||
		(len(w.pads) != 0 && len(w.pads) != 2*sp) {
		return nil, fmt.Errorf("strides %v, dilations %v or pads %v do not match a %d-D input", w.strides, w.dilations, w.pads, sp)
	}
	in := xs[2:]
	var k, s, d, pb, pe, o [2]int
	for i := range sp {
		k[i], s[i], d[i] = kernel[i], get(w.strides, i, 1), get(w.dilations, i, 1)
		pb[i], pe[i] = get(w.pads, i, 0), get(w.pads, i+sp, 0)
		ext := (k[i]-1)*d[i] + 1
		switch w.autoPad {
		case "VALID":
			pb[i], pe[i] = 0, 0
		case "SAME_UPPER", "SAME_LOWER":
			out := (in[i] + s[i] - 1) / s[i]
			total := max(0, (out-1)*s[i]+ext-in[i])
			if w.autoPad == "SAME_UPPER" {
				pb[i], pe[i] = total/2, total-total/2
			} else {
				pb[i], pe[i] = total-total/2, total/2
			}
		}
		span := in[i] + pb[i] + pe[i] - ext
		if span < 0 {
			return nil, fmt.Errorf("the window (%d with dilation %d) is larger than the padded input (%d)", k[i], d[i], in[i]+pb[i]+pe[i])
		}
		if w.ceil {
			o[i] = (span+s[i]-1)/s[i] + 1
			if (o[i]-1)*s[i] >= in[i]+pb[i] { // the last window must start inside the input or the leading pad
				o[i]--
			}
		} else {
			o[i] = span/s[i] + 1
		}
	}
	g := &geom{n: xs[0], c: xs[1]}
	if sp == 1 {
		g.oneD = true
		g.h, g.w = 1, in[0]
		g.kh, g.kw, g.sh, g.sw, g.dh, g.dw = 1, k[0], 1, s[0], 1, d[0]
		g.pl, g.pr, g.oh, g.ow = pb[0], pe[0], 1, o[0]
	} else {
		g.h, g.w = in[0], in[1]
		g.kh, g.kw, g.sh, g.sw, g.dh, g.dw = k[0], k[1], s[0], s[1], d[0], d[1]
		g.pt, g.pl, g.pb, g.pr, g.oh, g.ow = pb[0], pb[1], pe[0], pe[1], o[0], o[1]
	}
	return g, nil
}

func (g *geom) outShape(c int) []int {
	if g.oneD {
		return []int{g.n, c, g.ow}
	}
	return []int{g.n, c, g.oh, g.ow}
}

// im2col writes the patches of one sample x [C, H, W] into col, a [C·KH·KW, OH·OW]
// block of a matrix with row stride ld.
func (g *geom) im2col(x, col []float32, ld, channels int) {
	ohw := g.oh * g.ow
	for ch := range channels {
		plane := x[ch*g.h*g.w : (ch+1)*g.h*g.w]
		for ki := range g.kh {
			for kj := range g.kw {
				row := col[((ch*g.kh+ki)*g.kw+kj)*ld:][:ohw]
				for oh := range g.oh {
					dst := row[oh*g.ow : (oh+1)*g.ow]
					ih := oh*g.sh - g.pt + ki*g.dh
					if ih < 0 || ih >= g.h {
						clear(dst)
						continue
					}
					src := plane[ih*g.w : (ih+1)*g.w]
					iw0 := kj*g.dw - g.pl
					if g.sw == 1 {
						lo, hi := max(0, -iw0), min(g.ow, g.w-iw0) // ow range with iw inside
						if hi <= lo {
							clear(dst)
							continue
						}
						clear(dst[:lo])
						copy(dst[lo:hi], src[iw0+lo:iw0+hi])
						clear(dst[hi:])
						continue
					}
					for ow := range dst {
						iw := iw0 + ow*g.sw
						if iw >= 0 && iw < g.w {
							dst[ow] = src[iw]
						} else {
							dst[ow] = 0
						}
					}
				}
			}
		}
	}
}

// col2im adds col, a [C·KH·KW, OH·OW] block with row stride ld, back into dx [C, H, W].
func (g *geom) col2im(col []float32, ld int, dx []float32, channels int) {
	ohw := g.oh * g.ow
	for ch := range channels {
		plane := dx[ch*g.h*g.w : (ch+1)*g.h*g.w]
		for ki := range g.kh {
			for kj := range g.kw {
				row := col[((ch*g.kh+ki)*g.kw+kj)*ld:][:ohw]
				for oh := range g.oh {
					src := row[oh*g.ow : (oh+1)*g.ow]
					ih := oh*g.sh - g.pt + ki*g.dh
					if ih < 0 || ih >= g.h {
						continue
					}
					dst := plane[ih*g.w : (ih+1)*g.w]
					iw0 := kj*g.dw - g.pl
					for ow, v := range src {
						iw := iw0 + ow*g.sw
						if iw >= 0 && iw < g.w {
							dst[iw] += v
						}
					}
				}
			}
		}
	}
}

type convOp struct {
	win   window
	group int
}

func newConv(a attrs) (kernel, error) {
	w, err := readWindow(a)
	if err != nil {
		return nil, err
	}
	return &convOp{win: w, group: a.int("group", 1)}, nil
}

func (k *convOp) setup(x, w *Tensor) (*geom, error) {
	if len(w.Shape) != len(x.Shape) {
		return nil, fmt.Errorf("weights %v do not match input %v", w.Shape, x.Shape)
	}
	kernel := w.Shape[2:]
	if len(k.win.kernel) != 0 && !slices.Equal(k.win.kernel, kernel) {
		return nil, fmt.Errorf("kernel_shape %v differs from the weights' %v", k.win.kernel, kernel)
	}
	g, err := k.win.geometry(x.Shape, kernel)
	if err != nil {
		return nil, fmt.Errorf("window: %v", err)
	}
	if k.group < 1 || g.c%k.group != 0 || w.Shape[0]%k.group != 0 || w.Shape[1] != g.c/k.group {
		return nil, fmt.Errorf("%d groups do not fit input %v and weights %v", k.group, x.Shape, w.Shape)
	}
	return g, nil
}

// convBlockCols is about how many columns (samples × output positions) Conv puts in one
// matrix product: samples are processed in blocks, so that the products are large
// enough for gonum to split over goroutines while the patch matrix stays a few MB.
const convBlockCols = 8192

// blocks returns the number of samples per block.
func (g *geom) blockSize() int { return max(1, min(g.n, convBlockCols/max(1, g.oh*g.ow))) }

func (k *convOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x, w, b := in[0], in[1], input(in, 2)
	if err := wantFloat("Conv", x, w, b); err != nil {
		return nil, err
	}
	g, err := k.setup(x, w)
	if err != nil {
		return nil, err
	}
	m := w.Shape[0]
	if b != nil && len(b.Data) != m {
		return nil, fmt.Errorf("bias of %d elements for %d output channels", len(b.Data), m)
	}
	y := c.allocRaw(g.outShape(m)...)
	ohw, chw := g.oh*g.ow, g.c*g.h*g.w
	ckk := g.c * g.kh * g.kw
	G := k.group
	mg, ckkg := m/G, ckk/G
	bs := g.blockSize()
	col := c.allocRaw(ckk * bs * ohw).Data
	yb := c.allocRaw(m * bs * ohw).Data
	for n0 := 0; n0 < g.n; n0 += bs {
		nb := min(bs, g.n-n0)
		cols := nb * ohw
		parallelFor(nb, ckk*ohw, func(lo, hi int) {
			for s := lo; s < hi; s++ {
				g.im2col(x.Data[(n0+s)*chw:(n0+s+1)*chw], col[s*ohw:], cols, g.c)
			}
		})
		for gi := range G {
			sgemmFwd(false, false, mg, cols, ckkg, 1, w.Data[gi*mg*ckkg:], ckkg, col[gi*ckkg*cols:], cols, 0, yb[gi*mg*cols:], cols)
		}
		// [M, samples·OHW] → [samples, M, OHW], adding the bias
		parallelFor(nb*m, ohw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				s, oc := p/m, p%m
				dst := y.Data[((n0+s)*m+oc)*ohw:][:ohw]
				src := yb[oc*cols+s*ohw:][:ohw]
				if b == nil {
					copy(dst, src)
					continue
				}
				bv := b.Data[oc]
				for j, v := range src {
					dst[j] = v + bv
				}
			}
		})
	}
	return []*Tensor{y}, nil
}

func (k *convOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, w, b, gy := in[0], in[1], input(in, 2), gout[0]
	g, _ := k.setup(x, w)
	m := w.Shape[0]
	ohw, chw := g.oh*g.ow, g.c*g.h*g.w
	ckk := g.c * g.kh * g.kw
	G := k.group
	mg, ckkg := m/G, ckk/G
	needX, needW, needB := c.needGrad(0), c.needGrad(1), b != nil && c.needGrad(2)
	gin := make([]*Tensor, len(in))
	var dx, dw, db *Tensor
	if needX {
		dx = c.alloc(x.Shape...)
		gin[0] = dx
	}
	if needW {
		dw = c.alloc(w.Shape...)
		gin[1] = dw
	}
	if needB {
		db = c.alloc(b.Shape...)
		gin[2] = db
	}
	bs := g.blockSize()
	col := c.allocRaw(ckk * bs * ohw).Data // the patches, then their gradient
	gyb := c.allocRaw(m * bs * ohw).Data
	for n0 := 0; n0 < g.n; n0 += bs {
		nb := min(bs, g.n-n0)
		cols := nb * ohw
		// [samples, M, OHW] → [M, samples·OHW]
		parallelFor(nb*m, ohw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				s, oc := p/m, p%m
				copy(gyb[oc*cols+s*ohw:][:ohw], gy.Data[((n0+s)*m+oc)*ohw:][:ohw])
			}
		})
		if needB {
			for oc := range m {
				var sum float32
				for _, v := range gyb[oc*cols : (oc+1)*cols] {
					sum += v
				}
				db.Data[oc] += sum
			}
		}
		if needW {
			parallelFor(nb, ckk*ohw, func(lo, hi int) {
				for s := lo; s < hi; s++ {
					g.im2col(x.Data[(n0+s)*chw:(n0+s+1)*chw], col[s*ohw:], cols, g.c)
				}
			})
			for gi := range G { // dW_g += dY_g · col_gᵀ
				sgemm(false, true, mg, ckkg, cols, 1, gyb[gi*mg*cols:], cols, col[gi*ckkg*cols:], cols, 1, dw.Data[gi*mg*ckkg:], ckkg)
			}
		}
		if needX {
			for gi := range G { // dcol_g = W_gᵀ · dY_g
				sgemm(true, false, ckkg, cols, mg, 1, w.Data[gi*mg*ckkg:], ckkg, gyb[gi*mg*cols:], cols, 0, col[gi*ckkg*cols:], cols)
			}
			parallelFor(nb, ckk*ohw, func(lo, hi int) {
				for s := lo; s < hi; s++ {
					g.col2im(col[s*ohw:], cols, dx.Data[(n0+s)*chw:(n0+s+1)*chw], g.c)
				}
			})
		}
	}
	return gin, nil
}

type poolOp struct {
	win          window
	isMax        bool
	includePad   bool
	storageOrder int
}

func newPool(a attrs, isMax bool) (kernel, error) {
	w, err := readWindow(a)
	if err != nil {
		return nil, err
	}
	if len(w.kernel) == 0 {
		return nil, fmt.Errorf("kernel_shape is required")
	}
	if !isMax {
		for _, d := range w.dilations {
			if d != 1 {
				return nil, fmt.Errorf("AveragePool dilations %v are not supported", w.dilations)
			}
		}
	}
	k := &poolOp{win: w, isMax: isMax, includePad: a.int("count_include_pad", 0) != 0, storageOrder: a.int("storage_order", 0)}
	if k.storageOrder != 0 {
		return nil, fmt.Errorf("storage_order %d is not supported", k.storageOrder)
	}
	return k, nil
}

func (k *poolOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat("pool", x); err != nil {
		return nil, err
	}
	g, err := k.win.geometry(x.Shape, k.win.kernel)
	if err != nil {
		return nil, err
	}
	y := c.allocRaw(g.outShape(g.c)...)
	planes, hw, ohw := g.n*g.c, g.h*g.w, g.oh*g.ow
	if k.isMax {
		arg := make([]int32, len(y.Data))
		parallelFor(planes, hw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				xp := x.Data[p*hw : (p+1)*hw]
				for oh := range g.oh {
					for ow := range g.ow {
						best, bi := float32(math.Inf(-1)), int32(-1)
						for ki := range g.kh {
							ih := oh*g.sh - g.pt + ki*g.dh
							if ih < 0 || ih >= g.h {
								continue
							}
							for kj := range g.kw {
								iw := ow*g.sw - g.pl + kj*g.dw
								if iw < 0 || iw >= g.w {
									continue
								}
								if v := xp[ih*g.w+iw]; v > best || bi < 0 {
									best, bi = v, int32(ih*g.w+iw)
								}
							}
						}
						o := p*ohw + oh*g.ow + ow
						y.Data[o], arg[o] = best, bi
					}
				}
			}
		})
		c.save(arg)
		return []*Tensor{y}, nil
	}
	parallelFor(planes, hw, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			xp := x.Data[p*hw : (p+1)*hw]
			for oh := range g.oh {
				for ow := range g.ow {
					var sum float32
					for ki := range g.kh {
						ih := oh*g.sh - g.pt + ki
						if ih < 0 || ih >= g.h {
							continue
						}
						for kj := range g.kw {
							iw := ow*g.sw - g.pl + kj
							if iw >= 0 && iw < g.w {
								sum += xp[ih*g.w+iw]
							}
						}
					}
					y.Data[p*ohw+oh*g.ow+ow] = sum / float32(k.count(g, oh, ow))
				}
			}
		}
	})
	return []*Tensor{y}, nil
}

// count is the divisor of an average-pool window: the elements inside the input, or
// with count_include_pad those inside the padded input.
func (k *poolOp) count(g *geom, oh, ow int) int {
	h0, w0 := oh*g.sh-g.pt, ow*g.sw-g.pl
	h1, w1 := h0+g.kh, w0+g.kw
	if k.includePad {
		return (min(h1, g.h+g.pb) - max(h0, -g.pt)) * (min(w1, g.w+g.pr) - max(w0, -g.pl))
	}
	return (min(h1, g.h) - max(h0, 0)) * (min(w1, g.w) - max(w0, 0))
}

func (k *poolOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, gy := in[0], gout[0]
	g, _ := k.win.geometry(x.Shape, k.win.kernel)
	dx := c.alloc(x.Shape...)
	planes, hw, ohw := g.n*g.c, g.h*g.w, g.oh*g.ow
	if k.isMax {
		arg := c.saved().([]int32)
		parallelFor(planes, ohw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				dp := dx.Data[p*hw : (p+1)*hw]
				for o, gv := range gy.Data[p*ohw : (p+1)*ohw] {
					if a := arg[p*ohw+o]; a >= 0 {
						dp[a] += gv
					}
				}
			}
		})
		return []*Tensor{dx}, nil
	}
	parallelFor(planes, hw, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			dp := dx.Data[p*hw : (p+1)*hw]
			for oh := range g.oh {
				for ow := range g.ow {
					gv := gy.Data[p*ohw+oh*g.ow+ow] / float32(k.count(g, oh, ow))
					for ki := range g.kh {
						ih := oh*g.sh - g.pt + ki
						if ih < 0 || ih >= g.h {
							continue
						}
						for kj := range g.kw {
							iw := ow*g.sw - g.pl + kj
							if iw >= 0 && iw < g.w {
								dp[ih*g.w+iw] += gv
							}
						}
					}
				}
			}
		}
	})
	return []*Tensor{dx}, nil
}

type globalAvgPool struct{}

func (globalAvgPool) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	x := in[0]
	if err := wantFloat("GlobalAveragePool", x); err != nil {
		return nil, err
	}
	if len(x.Shape) < 3 {
		return nil, fmt.Errorf("GlobalAveragePool needs rank 3 or more, got %v", x.Shape)
	}
	shape := slices.Clone(x.Shape)
	sp := 1
	for i := 2; i < len(shape); i++ {
		sp *= shape[i]
		shape[i] = 1
	}
	y := c.allocRaw(shape...)
	for p := range y.Data {
		var s float32
		for _, v := range x.Data[p*sp : (p+1)*sp] {
			s += v
		}
		y.Data[p] = s / float32(sp)
	}
	return []*Tensor{y}, nil
}

func (globalAvgPool) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	x, gy := in[0], gout[0]
	dx := c.allocRaw(x.Shape...)
	sp := len(x.Data) / max(1, len(gy.Data))
	for p, gv := range gy.Data {
		v := gv / float32(sp)
		row := dx.Data[p*sp : (p+1)*sp]
		for i := range row {
			row[i] = v
		}
	}
	return []*Tensor{dx}, nil
}

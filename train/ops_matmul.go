package train

import (
	"fmt"
	"slices"
)

func matmulOps() map[string]opSpec {
	return map[string]opSpec{
		"Gemm": {make: func(a attrs) (kernel, error) {
			return &gemmOp{alpha: a.float("alpha", 1), beta: a.float("beta", 1), transA: a.int("transA", 0) != 0, transB: a.int("transB", 0) != 0}, nil
		}, diff: allInputs, limits: "C broadcasts to [M, N]"},
		"MatMul": {make: func(attrs) (kernel, error) { return matmulOp{}, nil }, diff: allInputs,
			limits: "numpy semantics (1-D promotion, broadcast batch dimensions)"},
	}
}

type gemmOp struct {
	alpha, beta    float32
	transA, transB bool
}

func (k *gemmOp) dims(a, b *Tensor) (m, n, kk int, err error) {
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return 0, 0, 0, fmt.Errorf("inputs A and B must be 2-D, got %v and %v", a.Shape, b.Shape)
	}
	m, kk = a.Shape[0], a.Shape[1]
	if k.transA {
		m, kk = kk, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if k.transB {
		kb, n = n, kb
	}
	if kb != kk {
		return 0, 0, 0, fmt.Errorf("op(A) is %d×%d but op(B) is %d×%d", m, kk, kb, n)
	}
	return m, n, kk, nil
}

func (k *gemmOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	a, b, cc := in[0], in[1], input(in, 2)
	if err := wantFloat("Gemm", a, b, cc); err != nil {
		return nil, err
	}
	m, n, kk, err := k.dims(a, b)
	if err != nil {
		return nil, err
	}
	y := c.allocRaw(m, n)
	beta := float32(0)
	if cc != nil && k.beta != 0 {
		if _, err := broadcastShape([]int{m, n}, cc.Shape); err != nil || len(cc.Shape) > 2 {
			return nil, fmt.Errorf("input C of shape %v does not broadcast to [%d %d]", cc.Shape, m, n)
		}
		bc := newBcastTo([]int{m, n}, []int{m, n}, cc.Shape)
		nn, _, sb := bc.inner()
		bb := k.beta
		bc.each(false, func(o, _, ib int) {
			row := y.Data[o : o+nn]
			for j := range row {
				row[j] = bb * cc.Data[ib+j*sb]
			}
		})
		beta = 1
	}
	sgemmFwd(k.transA, k.transB, m, n, kk, k.alpha, a.Data, a.Shape[1], b.Data, b.Shape[1], beta, y.Data, n)
	return []*Tensor{y}, nil
}

func (k *gemmOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	a, b, cc, g := in[0], in[1], input(in, 2), gout[0]
	m, n, kk, _ := k.dims(a, b)
	lda, ldb := a.Shape[1], b.Shape[1]
	gin := make([]*Tensor, len(in))
	if c.needGrad(0) {
		da := c.allocRaw(a.Shape...)
		if !k.transA { // dA = alpha·dY·op(B)ᵀ
			sgemm(false, !k.transB, m, kk, n, k.alpha, g.Data, n, b.Data, ldb, 0, da.Data, kk)
		} else { // dA = alpha·op(B)·dYᵀ
			sgemm(k.transB, true, kk, m, n, k.alpha, b.Data, ldb, g.Data, n, 0, da.Data, m)
		}
		gin[0] = da
	}
	if c.needGrad(1) {
		// A parameter's gradient is added into Param.Grad in place (beta 1).
		db, beta := c.paramGrad(1), float32(1)
		if db == nil {
			db, beta = c.allocRaw(b.Shape...), 0
			gin[1] = db
		}
		if !k.transB { // dB = alpha·op(A)ᵀ·dY
			sgemm(!k.transA, false, kk, n, m, k.alpha, a.Data, lda, g.Data, n, beta, db.Data, n)
		} else { // dB = alpha·dYᵀ·op(A)
			sgemm(true, k.transA, n, kk, m, k.alpha, g.Data, n, a.Data, lda, beta, db.Data, kk)
		}
	}
	if cc != nil && c.needGrad(2) {
		dc := reduceTo(c, g, cc.Shape)
		if k.beta != 1 {
			scaled := c.allocRaw(cc.Shape...)
			for i, v := range dc.Data {
				scaled.Data[i] = k.beta * v
			}
			dc = scaled
		}
		gin[2] = dc
	}
	return gin, nil
}

// matmulOp is numpy's matmul.
type matmulOp struct{}

// mmShapes works out a MatMul: the operands as batches of matrices (1-D ones promoted),
// the broadcast batch shape and the output shape.
type mmShapes struct {
	m, n, k      int
	batch        []int // broadcast batch dimensions
	aBatch       []int // a's batch dimensions (as stored)
	bBatch       []int
	out          []int
	flatA, flatB bool // the operand has no batch dims
}

func matmulShapes(a, b []int) (*mmShapes, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("MatMul of scalars")
	}
	s := &mmShapes{}
	as, bs := slices.Clone(a), slices.Clone(b)
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []int{1, as[0]}
	}
	if bVec {
		bs = []int{bs[0], 1}
	}
	s.m, s.k = as[len(as)-2], as[len(as)-1]
	kb := bs[len(bs)-2]
	s.n = bs[len(bs)-1]
	if kb != s.k {
		return nil, fmt.Errorf("MatMul of %v and %v: inner dimensions %d and %d differ", a, b, s.k, kb)
	}
	s.aBatch, s.bBatch = as[:len(as)-2], bs[:len(bs)-2]
	batch, err := broadcastShape(s.aBatch, s.bBatch)
	if err != nil {
		return nil, fmt.Errorf("MatMul of %v and %v: %v", a, b, err)
	}
	s.batch = batch
	s.out = slices.Clone(batch)
	if !aVec {
		s.out = append(s.out, s.m)
	}
	if !bVec {
		s.out = append(s.out, s.n)
	}
	s.flatB = numel(s.bBatch) == 1
	s.flatA = numel(s.aBatch) == 1
	return s, nil
}

func (matmulOp) forward(c *ctx, in []*Tensor) ([]*Tensor, error) {
	a, b := in[0], in[1]
	if err := wantFloat("MatMul", a, b); err != nil {
		return nil, err
	}
	s, err := matmulShapes(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	y := c.allocRaw(s.out...)
	m, n, k := s.m, s.n, s.k
	if s.flatB && numel(s.aBatch) == numel(s.batch) {
		// [..., M, K] × [K, N]: one product with the batch folded into M.
		rows := numel(s.batch) * m
		sgemmFwd(false, false, rows, n, k, 1, a.Data, k, b.Data, n, 0, y.Data, n)
		return []*Tensor{y}, nil
	}
	bc := newBcastTo(s.batch, s.aBatch, s.bBatch)
	offs := batchOffsets(bc)
	parallelFor(len(offs), m*n*k, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o := offs[i]
			sgemmFwd(false, false, m, n, k, 1, a.Data[o[0]*m*k:], k, b.Data[o[1]*k*n:], n, 0, y.Data[i*m*n:], n)
		}
	})
	return []*Tensor{y}, nil
}

// batchOffsets lists, for each output batch index, the matrix index in each operand.
func batchOffsets(bc *bcast) [][2]int {
	offs := make([][2]int, 0, bc.total)
	n, sa, sb := bc.inner()
	bc.each(false, func(_, ia, ib int) {
		for j := range n {
			offs = append(offs, [2]int{ia + j*sa, ib + j*sb})
		}
	})
	return offs
}

func (matmulOp) backward(c *ctx, in, _, gout []*Tensor) ([]*Tensor, error) {
	a, b, g := in[0], in[1], gout[0]
	s, _ := matmulShapes(a.Shape, b.Shape)
	m, n, k := s.m, s.n, s.k
	gin := make([]*Tensor, 2)
	if s.flatB && numel(s.aBatch) == numel(s.batch) {
		rows := numel(s.batch) * m
		if c.needGrad(0) { // dA = dY·Bᵀ
			da := c.allocRaw(a.Shape...)
			sgemm(false, true, rows, k, n, 1, g.Data, n, b.Data, n, 0, da.Data, k)
			gin[0] = da
		}
		if c.needGrad(1) { // dB = Aᵀ·dY, into Param.Grad in place for a parameter
			db, beta := c.paramGrad(1), float32(1)
			if db == nil {
				db, beta = c.allocRaw(b.Shape...), 0
				gin[1] = db
			}
			sgemm(true, false, k, n, rows, 1, a.Data, k, g.Data, n, beta, db.Data, n)
		}
		return gin, nil
	}
	bc := newBcastTo(s.batch, s.aBatch, s.bBatch)
	offs := batchOffsets(bc)
	if c.needGrad(0) {
		da := c.alloc(a.Shape...)
		// A broadcast along the batch gets several contributions per matrix: serial then.
		par := numel(s.aBatch) == len(offs)
		body := func(lo, hi int) {
			for i := lo; i < hi; i++ {
				o := offs[i]
				sgemm(false, true, m, k, n, 1, g.Data[i*m*n:], n, b.Data[o[1]*k*n:], n, 1, da.Data[o[0]*m*k:], k)
			}
		}
		if par {
			parallelFor(len(offs), m*n*k, body)
		} else {
			body(0, len(offs))
		}
		gin[0] = da
	}
	if c.needGrad(1) {
		db := c.alloc(b.Shape...)
		par := numel(s.bBatch) == len(offs)
		body := func(lo, hi int) {
			for i := lo; i < hi; i++ {
				o := offs[i]
				sgemm(true, false, k, n, m, 1, a.Data[o[0]*m*k:], k, g.Data[i*m*n:], n, 1, db.Data[o[1]*k*n:], n)
			}
		}
		if par {
			parallelFor(len(offs), m*n*k, body)
		} else {
			body(0, len(offs))
		}
		gin[1] = db
	}
	return gin, nil
}

package train

import (
	"fmt"
	"slices"
)

// broadcastShape returns the numpy broadcast of shapes a and b.
func broadcastShape(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := range r {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// bcast maps each element of a broadcast output to its elements in two operands. Its
// dimensions are collapsed as far as the strides allow, so that the innermost run is as
// long as possible; inner strides are 1 (contiguous) or 0 (broadcast).
type bcast struct {
	out    []int // the full output shape
	dims   []int // collapsed dimensions
	sa, sb []int // operand strides per collapsed dimension
	total  int
}

func newBcast(a, b []int) (*bcast, error) {
	out, err := broadcastShape(a, b)
	if err != nil {
		return nil, err
	}
	return newBcastTo(out, a, b), nil
}

// newBcastTo builds the mapping for operands a and b that broadcast to out.
func newBcastTo(out, a, b []int) *bcast {
	r := len(out)
	opStrides := func(s []int) []int {
		st := make([]int, r)
		acc := 1
		for i := r - 1; i >= 0; i-- {
			j := i - (r - len(s))
			if j < 0 || s[j] == 1 {
				st[i] = 0
			} else {
				st[i] = acc
			}
			if j >= 0 {
				acc *= s[j]
			}
		}
		return st
	}
	fa, fb := opStrides(a), opStrides(b)
	bc := &bcast{out: slices.Clone(out), total: numel(out)}
	for i := range r {
		if out[i] == 1 {
			continue
		}
		k := len(bc.dims) - 1
		if k >= 0 && bc.sa[k] == fa[i]*out[i] && bc.sb[k] == fb[i]*out[i] {
			bc.dims[k] *= out[i]
			bc.sa[k], bc.sb[k] = fa[i], fb[i]
			continue
		}
		bc.dims = append(bc.dims, out[i])
		bc.sa = append(bc.sa, fa[i])
		bc.sb = append(bc.sb, fb[i])
	}
	if len(bc.dims) == 0 {
		bc.dims, bc.sa, bc.sb = []int{1}, []int{0}, []int{0}
	}
	return bc
}

// inner returns the length and operand strides of the innermost run.
func (bc *bcast) inner() (n, sa, sb int) {
	k := len(bc.dims) - 1
	return bc.dims[k], bc.sa[k], bc.sb[k]
}

// rows calls fn for runs lo..hi-1 (of total/inner runs) with the offsets of each run in
// the output and the two operands.
func (bc *bcast) rows(lo, hi int, fn func(o, ia, ib int)) {
	k := len(bc.dims) - 1
	n := bc.dims[k]
	if k == 0 {
		for r := lo; r < hi; r++ {
			fn(r*n, 0, 0)
		}
		return
	}
	idx := make([]int, k)
	rem := lo
	for d := k - 1; d >= 0; d-- {
		idx[d] = rem % bc.dims[d]
		rem /= bc.dims[d]
	}
	ia, ib := 0, 0
	for d := range k {
		ia += idx[d] * bc.sa[d]
		ib += idx[d] * bc.sb[d]
	}
	for r := lo; r < hi; r++ {
		fn(r*n, ia, ib)
		for d := k - 1; d >= 0; d-- {
			idx[d]++
			ia += bc.sa[d]
			ib += bc.sb[d]
			if idx[d] < bc.dims[d] {
				break
			}
			ia -= bc.sa[d] * bc.dims[d]
			ib -= bc.sb[d] * bc.dims[d]
			idx[d] = 0
		}
	}
}

// numRows is the number of inner runs.
func (bc *bcast) numRows() int {
	n, _, _ := bc.inner()
	if n == 0 {
		return 0
	}
	return bc.total / n
}

// each calls fn for every run, in parallel chunks of runs when parallel is set.
func (bc *bcast) each(parallel bool, fn func(o, ia, ib int)) {
	nr := bc.numRows()
	n, _, _ := bc.inner()
	if !parallel {
		bc.rows(0, nr, fn)
		return
	}
	parallelFor(nr, n, func(lo, hi int) { bc.rows(lo, hi, fn) })
}

// reduceTo sums g (of shape out) into a tensor of shape to, which broadcasts to out.
func reduceTo(c *ctx, g *Tensor, to []int) *Tensor {
	if slices.Equal(g.Shape, to) {
		return g
	}
	dst := c.alloc(to...)
	bc := newBcastTo(g.Shape, to, to)
	n, sa, _ := bc.inner()
	bc.each(false, func(o, ia, _ int) {
		src := g.Data[o : o+n]
		if sa == 0 {
			var s float32
			for _, v := range src {
				s += v
			}
			dst.Data[ia] += s
			return
		}
		d := dst.Data[ia : ia+n]
		for j, v := range src {
			d[j] += v
		}
	})
	return dst
}

package distill

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// rows holds n samples of one tensor, each of the same size, readable in any order: in
// memory, or in a temporary file when the data set is too large for the memory budget
// (the teacher's outputs on a big data set, say). Rows are written once, in order.
type rows struct {
	sample []int64 // shape of one row
	size   int     // elements per row
	n      int     // rows written
	mem    []float32
	file   *os.File
	buf    []byte
}

func newRows(sample []int64, capacity int, spill bool) (*rows, error) {
	size := 1
	for _, d := range sample {
		size *= int(d)
	}
	if size <= 0 {
		return nil, fmt.Errorf("samples of shape %v have no elements: training needs non-empty tensors", sample)
	}
	r := &rows{sample: sample, size: size}
	if !spill {
		r.mem = make([]float32, 0, capacity*size)
		return r, nil
	}
	f, err := os.CreateTemp("", "onnxpipe-distill-*.f32")
	if err != nil {
		return nil, fmt.Errorf("spilling training data to disk: %w", err)
	}
	os.Remove(f.Name()) // unlinked: the space goes back when the file is closed
	r.file = f
	return r, nil
}

// add appends rows from data (a whole number of rows).
func (r *rows) add(data []float32) error {
	if len(data)%r.size != 0 {
		return fmt.Errorf("%d values are not a whole number of rows of %d", len(data), r.size)
	}
	r.n += len(data) / r.size
	if r.file == nil {
		r.mem = append(r.mem, data...)
		return nil
	}
	buf := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	_, err := r.file.Write(buf)
	return err
}

// gather copies the rows at idx, in that order, into dst (len(idx)*size values).
func (r *rows) gather(idx []int, dst []float32) error {
	for k, i := range idx {
		out := dst[k*r.size : (k+1)*r.size]
		if r.file == nil {
			copy(out, r.mem[i*r.size:(i+1)*r.size])
			continue
		}
		if cap(r.buf) < 4*r.size {
			r.buf = make([]byte, 4*r.size)
		}
		b := r.buf[:4*r.size]
		if _, err := r.file.ReadAt(b, int64(i)*int64(len(b))); err != nil {
			return fmt.Errorf("reading spilled training data: %w", err)
		}
		for j := range out {
			out[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
	}
	return nil
}

func (r *rows) close() {
	if r.file != nil {
		r.file.Close()
	}
}

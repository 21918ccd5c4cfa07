package distill

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"unsafe"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// split is a data set held for training: every sample's inputs, its label, and (offline)
// the teacher's outputs on it, each readable by sample index in any order.
type split struct {
	n       int
	names   []string // input names, in model order
	inputs  map[string]*rows
	labels  []int // nil when the data set has none
	teacher map[string]*rows
	// digest is a CRC-32C of every input value and label in order: checkpoints are
	// resumed only on the same data.
	digest uint32
}

func (s *split) close() {
	for _, r := range s.inputs {
		r.close()
	}
	for _, r := range s.teacher {
		r.close()
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// loadSplit reads ds once, in order: every sample's inputs and labels. Rows go to
// temporary files instead of memory when the whole would exceed memLimit bytes.
func loadSplit(ctx context.Context, name string, ds *dataset.Dataset, memLimit int64) (_ *split, err error) {
	s := &split{inputs: map[string]*rows{}, teacher: map[string]*rows{}}
	for _, in := range ds.Inputs() {
		s.names = append(s.names, in.Name)
	}
	defer func() {
		if err != nil { // s, not the nil returned: its temporary files go
			s.close()
		}
	}()
	total := ds.Len()
	for b, err := range ds.Batches() {
		if err != nil {
			return nil, fmt.Errorf("dataset %q: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := dataset.CheckFinite(b); err != nil {
			return nil, fmt.Errorf("dataset %q: %w", name, err)
		}
		if s.n == 0 { // first batch: shapes known, decide where the rows live
			var rowBytes int64
			for _, t := range b.Inputs {
				rowBytes += 4 * sampleSize(t)
			}
			spill := rowBytes*int64(total) > memLimit
			for _, in := range s.names {
				if s.inputs[in], err = newRows(slices.Clone(b.Inputs[in].Shape[1:]), total, spill); err != nil {
					return nil, fmt.Errorf("dataset %q input %q: %w", name, in, err)
				}
			}
		}
		for _, in := range s.names {
			if err := s.inputs[in].addTensor(b.Inputs[in], fmt.Sprintf("dataset %q input %q", name, in)); err != nil {
				return nil, err
			}
			if data, ok := b.Inputs[in].Data.([]float32); ok && len(data) > 0 {
				s.digest = crc32.Update(s.digest, castagnoli, unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data)))
			}
		}
		if b.Labels != nil {
			var buf [8]byte
			for _, l := range b.Labels {
				s.labels = append(s.labels, int(l))
				binary.LittleEndian.PutUint64(buf[:], uint64(l))
				s.digest = crc32.Update(s.digest, castagnoli, buf[:])
			}
		}
		s.n += b.N
	}
	if s.n == 0 {
		return nil, fmt.Errorf("dataset %q holds no samples", name)
	}
	return s, nil
}

// spilled reports whether the split's rows live in temporary files.
func (s *split) spilled() bool {
	for _, r := range s.inputs {
		return r.file != nil
	}
	return false
}

// fillTeacher runs the teacher in onnxruntime over every sample of s, batch samples at
// a time, and keeps its outputs named in outs (logits and hint features), replacing
// those of an earlier teacher: training then never runs the teacher again.
func (s *split) fillTeacher(ctx context.Context, sess *ort.Session, outs []string, batch int, memLimit int64) error {
	for _, r := range s.teacher {
		r.close()
	}
	s.teacher = map[string]*rows{}
	idx := make([]int, 0, batch)
	for lo := 0; lo < s.n; lo += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+batch, s.n)
		idx = idx[:0]
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		in := map[string]*onnxio.Tensor{}
		for _, name := range s.names {
			t, err := s.inputs[name].tensor(idx)
			if err != nil {
				return err
			}
			in[name] = t
		}
		out, err := sess.Run(in, outs...)
		if err != nil {
			return fmt.Errorf("running the teacher on samples %d-%d: %w", lo, hi-1, err)
		}
		if lo == 0 {
			var rowBytes int64
			for _, o := range outs {
				t := out[o]
				if t == nil || len(t.Shape) == 0 || t.Shape[0] != int64(hi-lo) {
					return fmt.Errorf("teacher output %q does not have the batch axis first; distillation needs outputs of shape [N, ...]", o)
				}
				rowBytes += 4 * sampleSize(t)
			}
			for _, r := range s.inputs {
				rowBytes += 4 * int64(r.size)
			}
			spill := rowBytes*int64(s.n) > memLimit
			for _, o := range outs {
				if s.teacher[o], err = newRows(slices.Clone(out[o].Shape[1:]), s.n, spill); err != nil {
					return fmt.Errorf("teacher output %q: %w", o, err)
				}
			}
		}
		for _, o := range outs {
			if err := s.teacher[o].addTensor(out[o], fmt.Sprintf("teacher output %q", o)); err != nil {
				return err
			}
		}
	}
	return nil
}
func sampleSize(t *onnxio.Tensor) int64 {
	n := int64(1)
	for _, d := range t.Shape[1:] {
		n *= d
	}
	return n
}

// addTensor appends a batch tensor [N, ...] whose sample shape must match the rows'.
func (r *rows) addTensor(t *onnxio.Tensor, what string) error {
	data, ok := t.Data.([]float32)
	if !ok {
		return fmt.Errorf("%s is %s: training reads float32 tensors only", what, t.Type)
	}
	if len(t.Shape) == 0 || !slices.Equal(t.Shape[1:], r.sample) {
		return fmt.Errorf("%s has samples of shape %v after %v: training needs one shape for all samples", what, t.Shape[1:], r.sample)
	}
	return r.add(data)
}

// tensor returns the rows at idx as one onnxio tensor [len(idx), ...sample].
func (r *rows) tensor(idx []int) (*onnxio.Tensor, error) {
	data := make([]float32, len(idx)*r.size)
	if err := r.gather(idx, data); err != nil {
		return nil, err
	}
	return onnxio.NewTensor(append([]int64{int64(len(idx))}, r.sample...), data), nil
}

package ort

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// Buffers is output memory that Session.RunInto reuses from one call to the next, so
// that repeated runs on inputs of the same shapes neither allocate nor copy their
// outputs: onnxruntime writes each output straight into Go memory that the Buffers keep.
//
// The first call for a given set of input shapes lets onnxruntime allocate the outputs
// (the bridge copies them into Go memory, as Run does) and keeps that memory; later
// calls with the same input shapes hand it to onnxruntime to write into. Outputs that
// are graph inputs or initializers are not kept (onnxruntime returns those values as
// they are instead of writing them into a buffer). An output whose
// shape turns out to depend on the input values, not only on their shapes, is noticed
// (onnxruntime refuses a buffer of the wrong shape; the bridge then runs again without
// buffers) and is allocated afresh on every later call. String outputs are never kept.
//
// A Buffers belongs to one Session and serves one call at a time. The zero value is not
// usable: get one from Session.NewBuffers, and Release it when done (the kept values
// do not depend on the session and may be released after its Close).
type Buffers struct {
	mu    sync.Mutex // held by a RunInto call
	s     *Session
	key   string // the input shapes the kept values were computed for
	slots []slot // per onnxruntime output
	dead  bool   // released
}

// slot is one onnxruntime output's kept value.
type slot struct {
	value   ortgo.Value // a Go-backed tensor onnxruntime can write into; nil: none kept
	shape   []int64     // value's shape
	dynamic bool        // its shape changed for the same input shapes: never kept
}

// NewBuffers returns empty output buffers for RunInto on s.
func (s *Session) NewBuffers() *Buffers {
	return &Buffers{s: s, slots: make([]slot, s.nOrtOut)}
}

// Release frees the kept outputs; tensors returned by earlier RunInto calls with b must
// not be used after it. Releasing twice is harmless; a released Buffers cannot be used
// again.
func (b *Buffers) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop()
	b.dead = true
}

// drop releases every kept value.
func (b *Buffers) drop() {
	for i := range b.slots {
		release(b.slots[i].value)
		b.slots[i].value, b.slots[i].shape = nil, nil
	}
	b.key = ""
}

// shapeKey identifies the shapes of the session's inputs in inputs (already checked).
func (s *Session) shapeKey(inputs map[string]*onnxio.Tensor) string {
	var sb strings.Builder
	for _, info := range s.inputs {
		fmt.Fprint(&sb, inputs[info.Name].Shape, ";")
	}
	return sb.String()
}

// RunInto is Run writing the outputs into b's memory: the returned tensors share memory
// with b and hold their values only until the next RunInto call with b (or b's Release);
// copy what must live longer. Values, checks and errors are Run's. Two calls may run at
// once on one session with different Buffers; a Buffers used by two calls at once, or
// with another session, is an error.
func (s *Session) RunInto(b *Buffers, inputs map[string]*onnxio.Tensor, outputs ...string) (map[string]*onnxio.Tensor, error) {
	if b == nil || b.s != s {
		return nil, errors.New("run: the buffers belong to another session: get them from this session's NewBuffers")
	}
	if !b.mu.TryLock() {
		return nil, errors.New("run: the buffers are in use by another call: give each concurrent call its own Buffers")
	}
	defer b.mu.Unlock()
	if b.dead {
		return nil, errors.New("run: the buffers were released: get new ones with NewBuffers")
	}
	return s.run(b, inputs, outputs)
}

// preallocated lists the kept values b offers for inputs of shapes key (nil entries:
// onnxruntime allocates); some reports whether there is at least one.
func (b *Buffers) preallocated(key string) (out []ortgo.Value, some bool) {
	out = make([]ortgo.Value, len(b.slots))
	if key != b.key {
		return out, false
	}
	for i, sl := range b.slots {
		if sl.value != nil && !sl.dynamic {
			out[i] = sl.value
			some = true
		}
	}
	return out, some
}

// keep takes over the values of a successful run for inputs of shapes key: outputs
// onnxruntime allocated replace the slot's value (and become the memory of later runs),
// and a slot whose shape changed for the same key is marked dynamic. It returns the
// values the caller must still release (those not kept).
func (b *Buffers) keep(key string, out []ortgo.Value, prealloc []ortgo.Value) (rest []ortgo.Value) {
	sameKey := key == b.key
	for i, v := range out {
		sl := &b.slots[i]
		if i < len(prealloc) && prealloc[i] != nil && v == prealloc[i] {
			continue // written in place
		}
		shape := []int64(v.GetShape())
		if sameKey && sl.value != nil && !slices.Equal(sl.shape, shape) {
			sl.dynamic = true
		}
		_, isString := v.(*ortgo.StringTensor)
		if sl.dynamic || isString || b.s.fed[i] {
			rest = append(rest, v)
			if sl.value != nil {
				release(sl.value)
				sl.value, sl.shape = nil, nil
			}
			continue
		}
		if sl.value != nil {
			release(sl.value)
		}
		sl.value, sl.shape = v, shape
	}
	b.key = key
	return rest
}

package dataset

import (
	"fmt"
	"math/rand/v2"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// randomSource generates spec.Samples samples: floating-point inputs standard normal
// (mean 0, std 1), integer inputs uniform in [0, 10), bool inputs fair coin flips.
// Sample i of input k comes from its own PCG generator seeded with (seed, i<<16|k), so
// a sample's data does not depend on the order, the batch size or the limit.
type randomSource struct {
	name   string
	dt     onnxio.DataType
	sample []int64
	per    int
	n      int
	seed   uint64
	k      uint64
}

func newRandom(in InputInfo, k int, spec *Spec) (source, error) {
	if in.Shape == nil {
		return nil, fmt.Errorf("random data needs the input's shape; input %q records none: give real data", in.Name)
	}
	s := &randomSource{name: in.Name, dt: in.Type, n: spec.Samples, seed: uint64(spec.Seed), k: uint64(k), per: 1}
	if s.n == 0 {
		s.n = 16
	}
	for i, d := range in.Shape[1:] {
		if d < 0 {
			return nil, fmt.Errorf("random data needs fixed dims; input %q dim %d is dynamic (shape %s): fix it in the model or give real data", in.Name, i+1, dimString(in.Shape))
		}
		s.sample = append(s.sample, d)
		s.per *= int(d)
	}
	if s.sample == nil {
		s.sample = []int64{}
	}
	switch in.Type {
	case onnxio.TypeFloat, onnxio.TypeDouble, onnxio.TypeFloat16, onnxio.TypeBFloat16, onnxio.TypeBool,
		onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt16, onnxio.TypeUint16,
		onnxio.TypeInt32, onnxio.TypeUint32, onnxio.TypeInt64, onnxio.TypeUint64:
	default:
		return nil, fmt.Errorf("random data cannot fill input %q of type %s: give real data", in.Name, in.Type)
	}
	return s, nil
}

func (s *randomSource) Len() int              { return s.n }
func (s *randomSource) Type() onnxio.DataType { return s.dt }
func (s *randomSource) Sample() []int64       { return s.sample }
func (s *randomSource) Describe() string      { return "random data" }

func (s *randomSource) Read(rows []int) (*onnxio.Tensor, error) {
	n := len(rows) * s.per
	gen := func(i int) *rand.Rand {
		return rand.New(rand.NewPCG(s.seed, uint64(rows[i/s.per])<<16|s.k))
	}
	var data any
	switch s.dt {
	case onnxio.TypeFloat:
		data = randFill(n, s.per, gen, func(r *rand.Rand) float32 { return float32(r.NormFloat64()) })
	case onnxio.TypeDouble:
		data = randFill(n, s.per, gen, func(r *rand.Rand) float64 { return r.NormFloat64() })
	case onnxio.TypeFloat16:
		data = randFill(n, s.per, gen, func(r *rand.Rand) float16.Float16 { return float16.Fromfloat32(float32(r.NormFloat64())) })
	case onnxio.TypeBFloat16:
		data = randFill(n, s.per, gen, func(r *rand.Rand) onnxio.BFloat16 { return onnxio.BFloat16FromFloat32(float32(r.NormFloat64())) })
	case onnxio.TypeBool:
		data = randFill(n, s.per, gen, func(r *rand.Rand) bool { return r.IntN(2) == 1 })
	case onnxio.TypeInt8:
		data = randFill(n, s.per, gen, func(r *rand.Rand) int8 { return int8(r.IntN(10)) })
	case onnxio.TypeUint8:
		data = randFill(n, s.per, gen, func(r *rand.Rand) uint8 { return uint8(r.IntN(10)) })
	case onnxio.TypeInt16:
		data = randFill(n, s.per, gen, func(r *rand.Rand) int16 { return int16(r.IntN(10)) })
	case onnxio.TypeUint16:
		data = randFill(n, s.per, gen, func(r *rand.Rand) uint16 { return uint16(r.IntN(10)) })
	case onnxio.TypeInt32:
		data = randFill(n, s.per, gen, func(r *rand.Rand) int32 { return int32(r.IntN(10)) })
	case onnxio.TypeUint32:
		data = randFill(n, s.per, gen, func(r *rand.Rand) uint32 { return uint32(r.IntN(10)) })
	case onnxio.TypeInt64:
		data = randFill(n, s.per, gen, func(r *rand.Rand) int64 { return int64(r.IntN(10)) })
	case onnxio.TypeUint64:
		data = randFill(n, s.per, gen, func(r *rand.Rand) uint64 { return uint64(r.IntN(10)) })
	}
	return &onnxio.Tensor{Type: s.dt, Shape: append([]int64{int64(len(rows))}, s.sample...), Data: data}, nil
}

// randFill fills n elements, starting a new generator (gen) at each sample of per
// elements.
func randFill[T any](n, per int, gen func(i int) *rand.Rand, f func(*rand.Rand) T) []T {
	out := make([]T, n)
	var r *rand.Rand
	for i := range out {
		if i%per == 0 {
			r = gen(i)
		}
		out[i] = f(r)
	}
	return out
}

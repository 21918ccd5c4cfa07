package onnxio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// BFloat16 is a bfloat16 value: the upper 16 bits of an IEEE float32.
type BFloat16 uint16

// Float32 widens b to float32 exactly.
func (b BFloat16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// BFloat16FromFloat32 rounds f to the nearest bfloat16 (ties to even; NaN stays NaN).
func BFloat16FromFloat32(f float32) BFloat16 {
	u := math.Float32bits(f)
	if f != f {
		return BFloat16(u>>16 | 0x40) // keep a quiet NaN
	}
	u += 0x7fff + (u>>16)&1
	return BFloat16(u >> 16)
}

// Tensor is a dense tensor held in Go memory.
//
// Data is a slice whose Go type follows Type: float32 for TypeFloat, float64 for TypeDouble,
// int8/uint8/int16/uint16/int32/uint32/int64/uint64 for the integer types of the same
// width, bool for TypeBool, float16.Float16 for TypeFloat16, BFloat16 for TypeBFloat16, string for
// TypeString, complex64/complex128 for the complex types, int8 for TypeInt4 and TypeInt2 and uint8 for
// TypeUint4 and TypeUint2 (one unpacked element each), and uint8 holding each element's bit
// pattern for the FLOAT8 and FLOAT4 types. Its length is the product of Shape.
type Tensor struct {
	Type  DataType
	Shape []int64
	Data  any
}

// Element is the set of Go types a Tensor's Data may be a slice of.
type Element interface {
	float32 | float64 | int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64 |
		bool | float16.Float16 | BFloat16 | string | complex64 | complex128
}

// NewTensor returns a tensor of data with the given shape; the element type is the one
// that T stands for (uint8 means TypeUint8, int8 means TypeInt8).
func NewTensor[T Element](shape []int64, data []T) *Tensor {
	return &Tensor{Type: typeOf[T](), Shape: append([]int64(nil), shape...), Data: data}
}

func typeOf[T Element]() DataType {
	var z T
	switch any(z).(type) {
	case float32:
		return TypeFloat
	case float64:
		return TypeDouble
	case int8:
		return TypeInt8
	case uint8:
		return TypeUint8
	case int16:
		return TypeInt16
	case uint16:
		return TypeUint16
	case int32:
		return TypeInt32
	case uint32:
		return TypeUint32
	case int64:
		return TypeInt64
	case uint64:
		return TypeUint64
	case bool:
		return TypeBool
	case float16.Float16:
		return TypeFloat16
	case BFloat16:
		return TypeBFloat16
	case string:
		return TypeString
	case complex64:
		return TypeComplex64
	case complex128:
		return TypeComplex128
	}
	panic("onnxio: unreachable element type")
}

// Slice returns t's data as []T, or an error when t holds another Go type.
func Slice[T Element](t *Tensor) ([]T, error) {
	s, ok := t.Data.([]T)
	if !ok {
		var z T
		return nil, fmt.Errorf("tensor of %s holds %T, not []%T", t.Type, t.Data, z)
	}
	return s, nil
}

// NumElements returns the number of elements of a shape, or an error for a negative
// dimension or a product that overflows.
func NumElements(shape []int64) (int64, error) {
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
	}
	if slices.Contains(shape, 0) {
		return 0, nil
	}
	n := int64(1)
	for _, d := range shape {
		if n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// Len returns the number of elements in t's Data.
func (t *Tensor) Len() int {
	switch s := t.Data.(type) {
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	case []int8:
		return len(s)
	case []uint8:
		return len(s)
	case []int16:
		return len(s)
	case []uint16:
		return len(s)
	case []int32:
		return len(s)
	case []uint32:
		return len(s)
	case []int64:
		return len(s)
	case []uint64:
		return len(s)
	case []bool:
		return len(s)
	case []float16.Float16:
		return len(s)
	case []BFloat16:
		return len(s)
	case []string:
		return len(s)
	case []complex64:
		return len(s)
	case []complex128:
		return len(s)
	}
	return 0
}

// Float32s converts every element of t to float32 (integers exactly where they fit,
// float8/float4 codes decoded). Strings, bools and complex values are errors. For a
// float32 tensor it returns Data itself, not a copy.
func (t *Tensor) Float32s() ([]float32, error) {
	switch s := t.Data.(type) {
	case []float32:
		return s, nil
	case []float64:
		return convert(s, func(v float64) float32 { return float32(v) }), nil
	case []int8:
		return convert(s, func(v int8) float32 { return float32(v) }), nil
	case []uint8:
		if dec := float8Decoder(t.Type); dec != nil {
			return convert(s, dec), nil
		}
		return convert(s, func(v uint8) float32 { return float32(v) }), nil
	case []int16:
		return convert(s, func(v int16) float32 { return float32(v) }), nil
	case []uint16:
		return convert(s, func(v uint16) float32 { return float32(v) }), nil
	case []int32:
		return convert(s, func(v int32) float32 { return float32(v) }), nil
	case []uint32:
		return convert(s, func(v uint32) float32 { return float32(v) }), nil
	case []int64:
		return convert(s, func(v int64) float32 { return float32(v) }), nil
	case []uint64:
		return convert(s, func(v uint64) float32 { return float32(v) }), nil
	case []float16.Float16:
		return convert(s, float16.Float16.Float32), nil
	case []BFloat16:
		return convert(s, BFloat16.Float32), nil
	}
	return nil, fmt.Errorf("cannot convert a tensor of %s to float32", t.Type)
}

func convert[S, D any](s []S, f func(S) D) []D {
	d := make([]D, len(s))
	for i, v := range s {
		d[i] = f(v)
	}
	return d
}

// ErrExternalData is returned when a tensor's data lives in an external file that has not
// been read (Load reads it; a TensorProto built by hand may not have it).
var ErrExternalData = errors.New("tensor data is stored externally and was not loaded")

// DecodeTensor converts a TensorProto to a Tensor, reading raw_data or the typed field
// that holds the data. It checks that the data matches the shape.
func DecodeTensor(tp *onnxpb.TensorProto) (*Tensor, error) {
	name := tp.GetName()
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q: %w", name, ErrExternalData)
	}
	if tp.Segment != nil {
		return nil, fmt.Errorf("tensor %q: segmented tensors are not supported", name)
	}
	dt := DataType(tp.GetDataType())
	if dt.Bits() == 0 && dt != TypeString {
		return nil, fmt.Errorf("tensor %q: unsupported element type %s", name, dt)
	}
	n, err := NumElements(tp.GetDims())
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %v", name, err)
	}
	t := &Tensor{Type: dt, Shape: append([]int64(nil), tp.GetDims()...)}
	if tp.RawData != nil {
		t.Data, err = decodeRaw(dt, tp.RawData, n)
	} else {
		t.Data, err = decodeTyped(dt, tp, n)
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %q (%s %v): %v", name, dt, tp.GetDims(), err)
	}
	return t, nil
}

// TensorFloat32s decodes tp and converts its elements to float32.
func TensorFloat32s(tp *onnxpb.TensorProto) ([]float32, error) {
	t, err := DecodeTensor(tp)
	if err != nil {
		return nil, err
	}
	return t.Float32s()
}

func decodeRaw(dt DataType, raw []byte, n int64) (any, error) {
	if dt == TypeString {
		return nil, errors.New("string tensors cannot use raw_data")
	}
	if dt.Bits() == 0 {
		return nil, fmt.Errorf("unsupported element type %s", dt)
	}
	if want := dt.ByteSize(n); int64(len(raw)) != want {
		return nil, fmt.Errorf("raw_data has %d bytes, the shape needs %d", len(raw), want)
	}
	le := binary.LittleEndian
	switch dt {
	case TypeFloat:
		return fill(n, func(i int) float32 { return math.Float32frombits(le.Uint32(raw[4*i:])) }), nil
	case TypeDouble:
		return fill(n, func(i int) float64 { return math.Float64frombits(le.Uint64(raw[8*i:])) }), nil
	case TypeInt8:
		return fill(n, func(i int) int8 { return int8(raw[i]) }), nil
	case TypeUint8, TypeFloat8E4M3FN, TypeFloat8E4M3FNUZ, TypeFloat8E5M2, TypeFloat8E5M2FNUZ, TypeFloat8E8M0:
		return clone(raw), nil
	case TypeBool:
		return fill(n, func(i int) bool { return raw[i] != 0 }), nil
	case TypeInt16:
		return fill(n, func(i int) int16 { return int16(le.Uint16(raw[2*i:])) }), nil
	case TypeUint16:
		return fill(n, func(i int) uint16 { return le.Uint16(raw[2*i:]) }), nil
	case TypeFloat16:
		return fill(n, func(i int) float16.Float16 { return float16.Frombits(le.Uint16(raw[2*i:])) }), nil
	case TypeBFloat16:
		return fill(n, func(i int) BFloat16 { return BFloat16(le.Uint16(raw[2*i:])) }), nil
	case TypeInt32:
		return fill(n, func(i int) int32 { return int32(le.Uint32(raw[4*i:])) }), nil
	case TypeUint32:
		return fill(n, func(i int) uint32 { return le.Uint32(raw[4*i:]) }), nil
	case TypeInt64:
		return fill(n, func(i int) int64 { return int64(le.Uint64(raw[8*i:])) }), nil
	case TypeUint64:
		return fill(n, func(i int) uint64 { return le.Uint64(raw[8*i:]) }), nil
	case TypeComplex64:
		return fill(n, func(i int) complex64 {
			return complex(math.Float32frombits(le.Uint32(raw[8*i:])), math.Float32frombits(le.Uint32(raw[8*i+4:])))
		}), nil
	case TypeComplex128:
		return fill(n, func(i int) complex128 {
			return complex(math.Float64frombits(le.Uint64(raw[16*i:])), math.Float64frombits(le.Uint64(raw[16*i+8:])))
		}), nil
	case TypeInt4, TypeInt2:
		return unpackSigned(raw, n, dt.Bits()), nil
	case TypeUint4, TypeUint2, TypeFloat4E2M1:
		return unpackUnsigned(raw, n, dt.Bits()), nil
	}
	return nil, fmt.Errorf("unsupported element type %s", dt)
}

// clone copies s into a new slice that is never nil (a decoded empty tensor holds an
// empty slice, whichever field it came from).
func clone[T any](s []T) []T { return append(make([]T, 0, len(s)), s...) }

func fill[T any](n int64, f func(i int) T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

// unpackUnsigned splits packed sub-byte elements, lowest bits first.
func unpackUnsigned(packed []byte, n int64, bits int) []uint8 {
	per := 8 / bits
	mask := byte(1<<bits - 1)
	return fill(n, func(i int) uint8 { return packed[i/per] >> (uint(i%per) * uint(bits)) & mask })
}

func unpackSigned(packed []byte, n int64, bits int) []int8 {
	u := unpackUnsigned(packed, n, bits)
	shift := uint(8 - bits)
	return convert(u, func(v uint8) int8 { return int8(v<<shift) >> shift })
}

func packBits[T int8 | uint8](vals []T, bits int) []byte {
	per := 8 / bits
	mask := byte(1<<bits - 1)
	out := make([]byte, (len(vals)+per-1)/per)
	for i, v := range vals {
		out[i/per] |= (byte(v) & mask) << (uint(i%per) * uint(bits))
	}
	return out
}

func decodeTyped(dt DataType, tp *onnxpb.TensorProto, n int64) (any, error) {
	count := func(have int, per int64) error {
		if int64(have) != per {
			return fmt.Errorf("typed data has %d values, the shape needs %d", have, per)
		}
		return nil
	}
	switch dt {
	case TypeFloat:
		d := tp.GetFloatData()
		return clone(d), count(len(d), n)
	case TypeComplex64:
		d := tp.GetFloatData()
		if err := count(len(d), 2*n); err != nil {
			return nil, err
		}
		return fill(n, func(i int) complex64 { return complex(d[2*i], d[2*i+1]) }), nil
	case TypeDouble:
		d := tp.GetDoubleData()
		return clone(d), count(len(d), n)
	case TypeComplex128:
		d := tp.GetDoubleData()
		if err := count(len(d), 2*n); err != nil {
			return nil, err
		}
		return fill(n, func(i int) complex128 { return complex(d[2*i], d[2*i+1]) }), nil
	case TypeInt64:
		d := tp.GetInt64Data()
		return clone(d), count(len(d), n)
	case TypeUint32, TypeUint64:
		d := tp.GetUint64Data()
		if err := count(len(d), n); err != nil {
			return nil, err
		}
		if dt == TypeUint32 {
			return convert(d, func(v uint64) uint32 { return uint32(v) }), nil
		}
		return clone(d), nil
	case TypeString:
		d := tp.GetStringData()
		return convert(d, func(b []byte) string { return string(b) }), count(len(d), n)
	}
	d := tp.GetInt32Data()
	if dt.Bits() > 0 && dt.Bits() < 8 { // packed bytes, one per int32
		if err := count(len(d), dt.ByteSize(n)); err != nil {
			return nil, err
		}
		return decodeRaw(dt, convert(d, func(v int32) byte { return byte(v) }), n)
	}
	if err := count(len(d), n); err != nil {
		return nil, err
	}
	switch dt {
	case TypeInt32:
		return clone(d), nil
	case TypeInt16:
		return convert(d, func(v int32) int16 { return int16(v) }), nil
	case TypeUint16:
		return convert(d, func(v int32) uint16 { return uint16(v) }), nil
	case TypeInt8:
		return convert(d, func(v int32) int8 { return int8(v) }), nil
	case TypeUint8, TypeFloat8E4M3FN, TypeFloat8E4M3FNUZ, TypeFloat8E5M2, TypeFloat8E5M2FNUZ, TypeFloat8E8M0:
		return convert(d, func(v int32) uint8 { return uint8(v) }), nil
	case TypeBool:
		return convert(d, func(v int32) bool { return v != 0 }), nil
	case TypeFloat16:
		return convert(d, func(v int32) float16.Float16 { return float16.Frombits(uint16(v)) }), nil
	case TypeBFloat16:
		return convert(d, func(v int32) BFloat16 { return BFloat16(uint16(v)) }), nil
	}
	return nil, fmt.Errorf("unsupported element type %s", dt)
}

// EncodeTensor converts t to a TensorProto named name, with the data in raw_data
// (string_data for strings). It checks that the data matches the shape and the type.
func EncodeTensor(name string, t *Tensor) (*onnxpb.TensorProto, error) {
	n, err := NumElements(t.Shape)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %v", name, err)
	}
	if int64(t.Len()) != n {
		return nil, fmt.Errorf("tensor %q: %d elements for shape %v", name, t.Len(), t.Shape)
	}
	tp := &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     append([]int64(nil), t.Shape...),
		DataType: proto.Int32(int32(t.Type)),
	}
	if t.Type == TypeString {
		s, ok := t.Data.([]string)
		if !ok {
			return nil, fmt.Errorf("tensor %q: string tensor holds %T", name, t.Data)
		}
		tp.StringData = convert(s, func(v string) []byte { return []byte(v) })
		return tp, nil
	}
	raw, err := encodeRaw(t)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %v", name, err)
	}
	tp.RawData = raw
	return tp, nil
}

func encodeRaw(t *Tensor) ([]byte, error) {
	le := binary.LittleEndian
	mismatch := fmt.Errorf("element type %s does not match data %T", t.Type, t.Data)
	switch s := t.Data.(type) {
	case []float32:
		if t.Type != TypeFloat {
			return nil, mismatch
		}
		b := make([]byte, 4*len(s))
		for i, v := range s {
			le.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b, nil
	case []float64:
		if t.Type != TypeDouble {
			return nil, mismatch
		}
		b := make([]byte, 8*len(s))
		for i, v := range s {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b, nil
	case []int8:
		switch t.Type {
		case TypeInt8:
			return convert(s, func(v int8) byte { return byte(v) }), nil
		case TypeInt4, TypeInt2:
			hi := int8(1)<<(t.Type.Bits()-1) - 1
			if err := checkRange(s, -hi-1, hi, t.Type); err != nil {
				return nil, err
			}
			return packBits(s, t.Type.Bits()), nil
		}
		return nil, mismatch
	case []uint8:
		switch t.Type {
		case TypeUint8, TypeFloat8E4M3FN, TypeFloat8E4M3FNUZ, TypeFloat8E5M2, TypeFloat8E5M2FNUZ, TypeFloat8E8M0:
			return clone(s), nil
		case TypeUint4, TypeUint2, TypeFloat4E2M1:
			if err := checkRange(s, 0, uint8(1)<<t.Type.Bits()-1, t.Type); err != nil {
				return nil, err
			}
			return packBits(s, t.Type.Bits()), nil
		}
		return nil, mismatch
	case []bool:
		if t.Type != TypeBool {
			return nil, mismatch
		}
		return convert(s, func(v bool) byte {
			if v {
				return 1
			}
			return 0
		}), nil
	case []int16:
		return put16(t.Type == TypeInt16, mismatch, s, func(v int16) uint16 { return uint16(v) })
	case []uint16:
		return put16(t.Type == TypeUint16, mismatch, s, func(v uint16) uint16 { return v })
	case []float16.Float16:
		return put16(t.Type == TypeFloat16, mismatch, s, float16.Float16.Bits)
	case []BFloat16:
		return put16(t.Type == TypeBFloat16, mismatch, s, func(v BFloat16) uint16 { return uint16(v) })
	case []int32:
		return put32(t.Type == TypeInt32, mismatch, s, func(v int32) uint32 { return uint32(v) })
	case []uint32:
		return put32(t.Type == TypeUint32, mismatch, s, func(v uint32) uint32 { return v })
	case []int64:
		return put64(t.Type == TypeInt64, mismatch, s, func(v int64) uint64 { return uint64(v) })
	case []uint64:
		return put64(t.Type == TypeUint64, mismatch, s, func(v uint64) uint64 { return v })
	case []complex64:
		if t.Type != TypeComplex64 {
			return nil, mismatch
		}
		b := make([]byte, 8*len(s))
		for i, v := range s {
			le.PutUint32(b[8*i:], math.Float32bits(real(v)))
			le.PutUint32(b[8*i+4:], math.Float32bits(imag(v)))
		}
		return b, nil
	case []complex128:
		if t.Type != TypeComplex128 {
			return nil, mismatch
		}
		b := make([]byte, 16*len(s))
		for i, v := range s {
			le.PutUint64(b[16*i:], math.Float64bits(real(v)))
			le.PutUint64(b[16*i+8:], math.Float64bits(imag(v)))
		}
		return b, nil
	}
	return nil, mismatch
}

// checkRange refuses a sub-byte element that packing would silently truncate.
func checkRange[T int8 | uint8](s []T, lo, hi T, dt DataType) error {
	for i, v := range s {
		if v < lo || v > hi {
			return fmt.Errorf("element %d (%d) is out of the range of %s [%d, %d]", i, v, dt, lo, hi)
		}
	}
	return nil
}

func put16[T any](ok bool, mismatch error, s []T, bits func(T) uint16) ([]byte, error) {
	if !ok {
		return nil, mismatch
	}
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], bits(v))
	}
	return b, nil
}

func put32[T any](ok bool, mismatch error, s []T, bits func(T) uint32) ([]byte, error) {
	if !ok {
		return nil, mismatch
	}
	b := make([]byte, 4*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint32(b[4*i:], bits(v))
	}
	return b, nil
}

func put64[T any](ok bool, mismatch error, s []T, bits func(T) uint64) ([]byte, error) {
	if !ok {
		return nil, mismatch
	}
	b := make([]byte, 8*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint64(b[8*i:], bits(v))
	}
	return b, nil
}

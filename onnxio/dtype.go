package onnxio

import (
	"fmt"
	"math"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType int32

// The element types, numbered as in onnx.proto.
const (
	TypeUndefined      DataType = 0
	TypeFloat          DataType = 1
	TypeUint8          DataType = 2
	TypeInt8           DataType = 3
	TypeUint16         DataType = 4
	TypeInt16          DataType = 5
	TypeInt32          DataType = 6
	TypeInt64          DataType = 7
	TypeString         DataType = 8
	TypeBool           DataType = 9
	TypeFloat16        DataType = 10
	TypeDouble         DataType = 11
	TypeUint32         DataType = 12
	TypeUint64         DataType = 13
	TypeComplex64      DataType = 14
	TypeComplex128     DataType = 15
	TypeBFloat16       DataType = 16
	TypeFloat8E4M3FN   DataType = 17
	TypeFloat8E4M3FNUZ DataType = 18
	TypeFloat8E5M2     DataType = 19
	TypeFloat8E5M2FNUZ DataType = 20
	TypeUint4          DataType = 21
	TypeInt4           DataType = 22
	TypeFloat4E2M1     DataType = 23
	TypeFloat8E8M0     DataType = 24
	TypeUint2          DataType = 25
	TypeInt2           DataType = 26
)

// String returns the lower-case ONNX name of the type ("float", "int8", "bfloat16").
func (d DataType) String() string {
	if n, ok := onnxpb.TensorProto_DataType_name[int32(d)]; ok {
		return strings.ToLower(n)
	}
	return fmt.Sprintf("datatype(%d)", int32(d))
}

// ParseDataType reads a type name as TypeString writes it (case-insensitive; "float32" is
// accepted for "float" and "float64" for "double").
func ParseDataType(s string) (DataType, error) {
	switch strings.ToLower(s) {
	case "float32":
		return TypeFloat, nil
	case "float64":
		return TypeDouble, nil
	}
	if v, ok := onnxpb.TensorProto_DataType_value[strings.ToUpper(s)]; ok && v != 0 {
		return DataType(v), nil
	}
	return TypeUndefined, fmt.Errorf("unknown element type %q", s)
}

// Bits is the storage size of one element in bits (4 for INT4, 2 for INT2), or 0 for
// strings and unknown types.
func (d DataType) Bits() int {
	switch d {
	case TypeUint2, TypeInt2:
		return 2
	case TypeUint4, TypeInt4, TypeFloat4E2M1:
		return 4
	case TypeUint8, TypeInt8, TypeBool, TypeFloat8E4M3FN, TypeFloat8E4M3FNUZ, TypeFloat8E5M2, TypeFloat8E5M2FNUZ, TypeFloat8E8M0:
		return 8
	case TypeUint16, TypeInt16, TypeFloat16, TypeBFloat16:
		return 16
	case TypeFloat, TypeInt32, TypeUint32:
		return 32
	case TypeDouble, TypeInt64, TypeUint64, TypeComplex64:
		return 64
	case TypeComplex128:
		return 128
	}
	return 0
}

// ByteSize is the number of bytes that n elements occupy in raw_data (sub-byte types
// are packed, the last byte padded). A size that does not fit in an int64 is
// math.MaxInt64, which no real data matches.
func (d DataType) ByteSize(n int64) int64 {
	b := int64(d.Bits())
	if b == 0 || n <= 0 {
		return 0
	}
	// ceil(n*b/8) without overflowing: n = 8q + r.
	q, r := n/8, n%8
	tail := (r*b + 7) / 8
	if q > (math.MaxInt64-tail)/b {
		return math.MaxInt64
	}
	return q*b + tail
}

// IsFloat reports whether d is a floating-point type of 16 bits or more (the types that
// quantization and float16 conversion treat as activations and weights).
func (d DataType) IsFloat() bool {
	return d == TypeFloat || d == TypeDouble || d == TypeFloat16 || d == TypeBFloat16
}

// IsQuantized reports whether d is an integer type that QDQ graphs quantize to.
func (d DataType) IsQuantized() bool {
	switch d {
	case TypeInt8, TypeUint8, TypeInt16, TypeUint16, TypeInt4, TypeUint4, TypeInt2, TypeUint2, TypeFloat8E4M3FN, TypeFloat8E4M3FNUZ, TypeFloat8E5M2, TypeFloat8E5M2FNUZ:
		return true
	}
	return false
}

package onnxio

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestDataTypeNames(t *testing.T) {
	for _, test := range []struct {
		dt   DataType
		name string
		bits int
	}{
		{TypeFloat, "float", 32},
		{TypeUint8, "uint8", 8},
		{TypeInt8, "int8", 8},
		{TypeUint16, "uint16", 16},
		{TypeInt16, "int16", 16},
		{TypeInt32, "int32", 32},
		{TypeInt64, "int64", 64},
		{TypeString, "string", 0},
		{TypeBool, "bool", 8},
		{TypeFloat16, "float16", 16},
		{TypeDouble, "double", 64},
		{TypeUint32, "uint32", 32},
		{TypeUint64, "uint64", 64},
		{TypeComplex64, "complex64", 64},
		{TypeComplex128, "complex128", 128},
		{TypeBFloat16, "bfloat16", 16},
		{TypeFloat8E4M3FN, "float8e4m3fn", 8},
		{TypeFloat8E4M3FNUZ, "float8e4m3fnuz", 8},
		{TypeFloat8E5M2, "float8e5m2", 8},
		{TypeFloat8E5M2FNUZ, "float8e5m2fnuz", 8},
		{TypeUint4, "uint4", 4},
		{TypeInt4, "int4", 4},
		{TypeFloat4E2M1, "float4e2m1", 4},
		{TypeFloat8E8M0, "float8e8m0", 8},
		{TypeUint2, "uint2", 2},
		{TypeInt2, "int2", 2},
	} {
		if got := test.dt.String(); got != test.name {
			t.Errorf("DataType(%d).String() = %q, want %q", int32(test.dt), got, test.name)
		}
		if got := test.dt.Bits(); got != test.bits {
			t.Errorf("%s.Bits() = %d, want %d", test.name, got, test.bits)
		}
		for _, spelling := range []string{test.name, strings.ToUpper(test.name)} {
			got, err := ParseDataType(spelling)
			if err != nil || got != test.dt {
				t.Errorf("ParseDataType(%q) = %v, %v, want %v", spelling, got, err, test.dt)
			}
		}
	}
	for _, test := range []struct {
		in   string
		want DataType
	}{{"float32", TypeFloat}, {"FLOAT64", TypeDouble}} {
		if got, err := ParseDataType(test.in); err != nil || got != test.want {
			t.Errorf("ParseDataType(%q) = %v, %v, want %v", test.in, got, err, test.want)
		}
	}
	for _, bad := range []string{"", "undefined", "float128", "int3"} {
		if _, err := ParseDataType(bad); err == nil {
			t.Errorf("ParseDataType(%q): no error", bad)
		}
	}
	if got := DataType(99).String(); got != "datatype(99)" {
		t.Errorf("DataType(99).String() = %q", got)
	}
	for _, test := range []struct {
		dt               DataType
		float, quantized bool
	}{
		{TypeFloat, true, false}, {TypeDouble, true, false}, {TypeFloat16, true, false}, {TypeBFloat16, true, false},
		{TypeInt8, false, true}, {TypeUint8, false, true}, {TypeInt16, false, true}, {TypeUint16, false, true},
		{TypeInt4, false, true}, {TypeUint4, false, true}, {TypeInt2, false, true}, {TypeUint2, false, true},
		{TypeFloat8E4M3FN, false, true}, {TypeFloat8E5M2FNUZ, false, true},
		{TypeInt32, false, false}, {TypeInt64, false, false}, {TypeBool, false, false}, {TypeString, false, false},
		{TypeFloat4E2M1, false, false}, {TypeFloat8E8M0, false, false},
	} {
		if test.dt.IsFloat() != test.float || test.dt.IsQuantized() != test.quantized {
			t.Errorf("%s: IsFloat=%v IsQuantized=%v, want %v %v", test.dt, test.dt.IsFloat(), test.dt.IsQuantized(), test.float, test.quantized)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, test := range []struct {
		dt   DataType
		n    int64
		want int64
	}{
		{TypeFloat, 0, 0},
		{TypeFloat, 3, 12},
		{TypeComplex128, 2, 32},
		{TypeInt4, 1, 1},
		{TypeInt4, 2, 1},
		{TypeInt4, 3, 2},
		{TypeUint2, 4, 1},
		{TypeUint2, 5, 2},
		{TypeFloat4E2M1, 7, 4},
		{TypeString, 10, 0},
		// Sizes that do not fit in int64 saturate rather than wrap to a small number.
		{TypeUint8, 1 << 61, 1 << 61},
		{TypeFloat, 1 << 62, math.MaxInt64},
		{TypeComplex128, math.MaxInt64, math.MaxInt64},
		{TypeInt4, math.MaxInt64, 1 << 62},
	} {
		if got := test.dt.ByteSize(test.n); got != test.want {
			t.Errorf("%s.ByteSize(%d) = %d, want %d", test.dt, test.n, got, test.want)
		}
	}
}

func TestNumElements(t *testing.T) {
	for _, test := range []struct {
		shape   []int64
		want    int64
		wantErr string
	}{
		{shape: nil, want: 1},
		{shape: []int64{}, want: 1},
		{shape: []int64{0}, want: 0},
		{shape: []int64{2, 3, 4}, want: 24},
		{shape: []int64{math.MaxInt64}, want: math.MaxInt64},
		{shape: []int64{1 << 31, 1 << 31, 0}, want: 0},
		{shape: []int64{math.MaxInt64, math.MaxInt64, 0}, want: 0},
		{shape: []int64{-1}, wantErr: "negative dimension -1"},
		{shape: []int64{0, -3}, wantErr: "negative dimension -3"},
		{shape: []int64{1 << 32, 1 << 32}, wantErr: "too many elements"},
		{shape: []int64{math.MaxInt64, 2}, wantErr: "too many elements"},
	} {
		got, err := NumElements(test.shape)
		if test.wantErr != "" {
			wantErr(t, fmt.Sprintf("NumElements(%v)", test.shape), err, test.wantErr)
			continue
		}
		if err != nil || got != test.want {
			t.Errorf("NumElements(%v) = %d, %v, want %d", test.shape, got, err, test.want)
		}
	}
}

func f16(v float32) float16.Float16 { return float16.Fromfloat32(v) }

// TestTensorRoundTrip encodes a tensor of every numeric type, checks the little-endian
// raw bytes, and decodes it back.
func TestTensorRoundTrip(t *testing.T) {
	for _, test := range []struct {
		name string
		t    *Tensor
		raw  []byte
	}{
		{"float", NewTensor([]int64{2}, []float32{1, -2}), []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{"double", NewTensor([]int64{1}, []float64{1}), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"int8", NewTensor([]int64{3}, []int8{-1, 0, 127}), []byte{0xff, 0, 0x7f}},
		{"uint8", NewTensor([]int64{2}, []uint8{0, 255}), []byte{0, 0xff}},
		{"int16", NewTensor([]int64{2}, []int16{-2, 0x0102}), []byte{0xfe, 0xff, 0x02, 0x01}},
		{"uint16", NewTensor([]int64{1}, []uint16{0xabcd}), []byte{0xcd, 0xab}},
		{"int32", NewTensor([]int64{1}, []int32{-2}), []byte{0xfe, 0xff, 0xff, 0xff}},
		{"uint32", NewTensor([]int64{1}, []uint32{0x01020304}), []byte{4, 3, 2, 1}},
		{"int64", NewTensor([]int64{1}, []int64{-1}), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"uint64", NewTensor([]int64{1}, []uint64{0x0102030405060708}), []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{"bool", NewTensor([]int64{3}, []bool{true, false, true}), []byte{1, 0, 1}},
		{"float16", NewTensor([]int64{2}, []float16.Float16{f16(1), f16(-2)}), []byte{0x00, 0x3c, 0x00, 0xc0}},
		{"bfloat16", NewTensor([]int64{2}, []BFloat16{BFloat16FromFloat32(1), BFloat16FromFloat32(-2)}), []byte{0x80, 0x3f, 0x00, 0xc0}},
		{"complex64", NewTensor([]int64{1}, []complex64{complex(1, -2)}), []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{"complex128", NewTensor([]int64{1}, []complex128{complex(1, 0)}), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"2-d float", NewTensor([]int64{2, 1}, []float32{0, 1}), []byte{0, 0, 0, 0, 0, 0, 0x80, 0x3f}},
		{"scalar", NewTensor([]int64{}, []int64{7}), []byte{7, 0, 0, 0, 0, 0, 0, 0}},
		{"empty", NewTensor([]int64{0, 3}, []float32{}), []byte{}},
		// Sub-byte types: low bits first, the last byte padded with zeros.
		{"int4", &Tensor{Type: TypeInt4, Shape: []int64{3}, Data: []int8{1, -1, 7}}, []byte{0xf1, 0x07}},
		{"int4 extremes", &Tensor{Type: TypeInt4, Shape: []int64{2}, Data: []int8{-8, 7}}, []byte{0x78}},
		{"uint4", &Tensor{Type: TypeUint4, Shape: []int64{4}, Data: []uint8{0xa, 0x5, 0xf, 0}}, []byte{0x5a, 0x0f}},
		{"int2", &Tensor{Type: TypeInt2, Shape: []int64{5}, Data: []int8{-2, 1, -1, 0, 1}}, []byte{0x36, 0x01}},
		{"uint2", &Tensor{Type: TypeUint2, Shape: []int64{5}, Data: []uint8{1, 2, 3, 0, 3}}, []byte{0x39, 0x03}},
		{"float4e2m1", &Tensor{Type: TypeFloat4E2M1, Shape: []int64{3}, Data: []uint8{0x7, 0x1, 0xf}}, []byte{0x17, 0x0f}},
		{"float8e4m3fn", &Tensor{Type: TypeFloat8E4M3FN, Shape: []int64{2}, Data: []uint8{0x7e, 0x01}}, []byte{0x7e, 0x01}},
		{"float8e5m2", &Tensor{Type: TypeFloat8E5M2, Shape: []int64{1}, Data: []uint8{0x7c}}, []byte{0x7c}},
		{"float8e8m0", &Tensor{Type: TypeFloat8E8M0, Shape: []int64{1}, Data: []uint8{127}}, []byte{127}},
	} {
		tp, err := EncodeTensor("t_"+test.name, test.t)
		if err != nil {
			t.Errorf("%s: EncodeTensor: %v", test.name, err)
			continue
		}
		if tp.GetName() != "t_"+test.name || DataType(tp.GetDataType()) != test.t.Type || !reflect.DeepEqual(tp.GetDims(), test.t.Shape) {
			t.Errorf("%s: header name=%q type=%d dims=%v", test.name, tp.GetName(), tp.GetDataType(), tp.GetDims())
		}
		if !reflect.DeepEqual(tp.RawData, test.raw) {
			t.Errorf("%s: raw_data = % x, want % x", test.name, tp.RawData, test.raw)
		}
		if err := CheckTensorSize(tp); err != nil {
			t.Errorf("%s: CheckTensorSize: %v", test.name, err)
		}
		got, err := DecodeTensor(tp)
		if err != nil {
			t.Errorf("%s: DecodeTensor: %v", test.name, err)
			continue
		}
		if got.Type != test.t.Type || !reflect.DeepEqual(got.Shape, test.t.Shape) || !reflect.DeepEqual(got.Data, test.t.Data) {
			t.Errorf("%s: decoded %+v, want %+v", test.name, got, test.t)
		}
		// Round trip through the wire format too.
		b, err := proto.Marshal(tp)
		if err != nil {
			t.Fatal(err)
		}
		var back onnxpb.TensorProto
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeTensor(&back); err != nil || !reflect.DeepEqual(got.Data, test.t.Data) {
			t.Errorf("%s: after marshal: %v, %v", test.name, got, err)
		}
	}
}

// TestDecodeTyped decodes tensors whose data is in the typed fields (float_data,
// int32_data, ...) rather than raw_data.
func TestDecodeTyped(t *testing.T) {
	typed := func(dt DataType, dims []int64, fill func(*onnxpb.TensorProto)) *onnxpb.TensorProto {
		tp := &onnxpb.TensorProto{Name: proto.String("typed"), DataType: proto.Int32(int32(dt)), Dims: dims}
		fill(tp)
		return tp
	}
	for _, test := range []struct {
		name string
		tp   *onnxpb.TensorProto
		want any
	}{
		{"float", typed(TypeFloat, []int64{2}, func(tp *onnxpb.TensorProto) { tp.FloatData = []float32{1.5, -2} }), []float32{1.5, -2}},
		{"complex64", typed(TypeComplex64, []int64{1}, func(tp *onnxpb.TensorProto) { tp.FloatData = []float32{1, 2} }), []complex64{complex(1, 2)}},
		{"double", typed(TypeDouble, []int64{1}, func(tp *onnxpb.TensorProto) { tp.DoubleData = []float64{3.25} }), []float64{3.25}},
		{"complex128", typed(TypeComplex128, []int64{1}, func(tp *onnxpb.TensorProto) { tp.DoubleData = []float64{-1, 4} }), []complex128{complex(-1, 4)}},
		{"int64", typed(TypeInt64, []int64{2}, func(tp *onnxpb.TensorProto) { tp.Int64Data = []int64{-5, 1 << 40} }), []int64{-5, 1 << 40}},
		{"uint32", typed(TypeUint32, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Uint64Data = []uint64{0xffffffff} }), []uint32{0xffffffff}},
		{"uint64", typed(TypeUint64, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Uint64Data = []uint64{1 << 63} }), []uint64{1 << 63}},
		{"string", typed(TypeString, []int64{2}, func(tp *onnxpb.TensorProto) { tp.StringData = [][]byte{[]byte("a"), []byte("bc")} }), []string{"a", "bc"}},
		{"int32", typed(TypeInt32, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{-7} }), []int32{-7}},
		{"int16", typed(TypeInt16, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{-300} }), []int16{-300}},
		{"uint16", typed(TypeUint16, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{65535} }), []uint16{65535}},
		{"int8", typed(TypeInt8, []int64{2}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{-128, 127} }), []int8{-128, 127}},
		{"uint8", typed(TypeUint8, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{200} }), []uint8{200}},
		{"bool", typed(TypeBool, []int64{2}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{1, 0} }), []bool{true, false}},
		{"float16", typed(TypeFloat16, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x3c00} }), []float16.Float16{f16(1)}},
		{"bfloat16", typed(TypeBFloat16, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0xbf80} }), []BFloat16{0xbf80}},
		{"float8e4m3fn", typed(TypeFloat8E4M3FN, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x7e} }), []uint8{0x7e}},
		{"int4 packed", typed(TypeInt4, []int64{3}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0xf1, 0x07} }), []int8{1, -1, 7}},
		{"uint4 packed", typed(TypeUint4, []int64{2}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x5a} }), []uint8{0xa, 0x5}},
		{"uint2 packed", typed(TypeUint2, []int64{5}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x39, 0x03} }), []uint8{1, 2, 3, 0, 3}},
		{"int2 packed", typed(TypeInt2, []int64{3}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x36} }), []int8{-2, 1, -1}},
		{"empty float", typed(TypeFloat, []int64{0}, func(*onnxpb.TensorProto) {}), []float32{}},
	} {
		if err := CheckTensorSize(test.tp); err != nil {
			t.Errorf("%s: CheckTensorSize: %v", test.name, err)
		}
		got, err := DecodeTensor(test.tp)
		if err != nil {
			t.Errorf("%s: DecodeTensor: %v", test.name, err)
			continue
		}
		if !reflect.DeepEqual(got.Data, test.want) {
			t.Errorf("%s: decoded %#v, want %#v", test.name, got.Data, test.want)
		}
		if got.Len() != reflect.ValueOf(test.want).Len() {
			t.Errorf("%s: Len() = %d", test.name, got.Len())
		}
	}
}

// TestDecodeTensorErrors feeds tensors whose data does not match their shape or type:
// each must be refused with an error naming the tensor.
func TestDecodeTensorErrors(t *testing.T) {
	tensor := func(dt DataType, dims []int64, set func(*onnxpb.TensorProto)) *onnxpb.TensorProto {
		tp := &onnxpb.TensorProto{Name: proto.String("bad_w"), DataType: proto.Int32(int32(dt)), Dims: dims}
		if set != nil {
			set(tp)
		}
		return tp
	}
	raw := func(b ...byte) func(*onnxpb.TensorProto) {
		return func(tp *onnxpb.TensorProto) { tp.RawData = append([]byte{}, b...) }
	}
	for _, test := range []struct {
		name string
		tp   *onnxpb.TensorProto
		want string
	}{
		{"raw too short", tensor(TypeFloat, []int64{2, 2}, raw(1, 2, 3, 4)), "raw_data has 4 bytes, the shape needs 16"},
		{"raw too long", tensor(TypeInt8, []int64{2}, raw(1, 2, 3)), "raw_data has 3 bytes, the shape needs 2"},
		{"int4 raw short", tensor(TypeInt4, []int64{3}, raw(0x11)), "raw_data has 1 bytes, the shape needs 2"},
		{"float_data short", tensor(TypeFloat, []int64{3}, func(tp *onnxpb.TensorProto) { tp.FloatData = []float32{1} }), "typed data has 1 values, the shape needs 3"},
		{"no data", tensor(TypeInt64, []int64{2}, nil), "typed data has 0 values, the shape needs 2"},
		{"complex64 odd", tensor(TypeComplex64, []int64{2}, func(tp *onnxpb.TensorProto) { tp.FloatData = []float32{1, 2, 3} }), "typed data has 3 values, the shape needs 4"},
		{"int4 int32_data", tensor(TypeInt4, []int64{4}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{1} }), "typed data has 1 values, the shape needs 2"},
		{"string raw", tensor(TypeString, []int64{1}, raw(1)), "string tensors cannot use raw_data"},
		{"undefined type", tensor(TypeUndefined, []int64{1}, raw(1)), "unsupported element type"},
		{"unknown type", tensor(DataType(99), []int64{1}, raw(1)), "unsupported element type"},
		{"negative dim", tensor(TypeFloat, []int64{-1}, raw()), "negative dimension"},
		{"overflowing dims", tensor(TypeFloat, []int64{1 << 40, 1 << 40}, raw()), "too many elements"},
		// The byte count of these shapes overflows int64: it must not wrap to 0 and accept
		// an empty raw_data (that would allocate 2^61 elements).
		{"huge uint8, empty raw", tensor(TypeUint8, []int64{1 << 61}, raw()), "raw_data has 0 bytes"},
		{"huge float, empty raw", tensor(TypeFloat, []int64{1 << 62}, raw()), "raw_data has 0 bytes"},
		{"huge int4, empty raw", tensor(TypeInt4, []int64{math.MaxInt64}, raw()), "raw_data has 0 bytes"},
		{"huge complex64 typed", tensor(TypeComplex64, []int64{1 << 62}, nil), "typed data has 0 values"},
		{"external", tensor(TypeFloat, []int64{1}, func(tp *onnxpb.TensorProto) {
			tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		}), "stored externally"},
		{"segment", tensor(TypeFloat, []int64{1}, func(tp *onnxpb.TensorProto) {
			tp.Segment = &onnxpb.TensorProto_Segment{Begin: proto.Int64(0), End: proto.Int64(1)}
		}), "segmented"},
	} {
		_, err := DecodeTensor(test.tp)
		wantErr(t, test.name, err, test.want, `"bad_w"`)
		if err := CheckTensorSize(test.tp); err == nil && test.name != "external" && test.name != "segment" {
			t.Errorf("%s: CheckTensorSize accepted it", test.name)
		}
	}
}

func TestEncodeTensorErrors(t *testing.T) {
	for _, test := range []struct {
		name string
		t    *Tensor
		want string
	}{
		{"short data", NewTensor([]int64{2, 2}, []float32{1}), "1 elements for shape [2 2]"},
		{"negative dim", NewTensor([]int64{-2}, []float32{}), "negative dimension"},
		{"type mismatch", &Tensor{Type: TypeInt32, Shape: []int64{1}, Data: []float32{1}}, "does not match data []float32"},
		{"int8 as uint4", &Tensor{Type: TypeUint4, Shape: []int64{1}, Data: []int8{1}}, "does not match"},
		{"string holds bytes", &Tensor{Type: TypeString, Shape: []int64{1}, Data: []uint8{1}}, "string tensor holds []uint8"},
		{"nil data", &Tensor{Type: TypeFloat, Shape: []int64{0}, Data: nil}, "does not match"},
		{"int4 out of range", &Tensor{Type: TypeInt4, Shape: []int64{2}, Data: []int8{1, 8}}, "element 1 (8) is out of the range of int4"},
		{"int4 below range", &Tensor{Type: TypeInt4, Shape: []int64{1}, Data: []int8{-9}}, "out of the range of int4"},
		{"uint4 out of range", &Tensor{Type: TypeUint4, Shape: []int64{1}, Data: []uint8{16}}, "out of the range of uint4"},
		{"int2 out of range", &Tensor{Type: TypeInt2, Shape: []int64{1}, Data: []int8{2}}, "out of the range of int2"},
		{"uint2 out of range", &Tensor{Type: TypeUint2, Shape: []int64{1}, Data: []uint8{4}}, "out of the range of uint2"},
		{"float4 code out of range", &Tensor{Type: TypeFloat4E2M1, Shape: []int64{1}, Data: []uint8{0x10}}, "out of the range of float4e2m1"},
	} {
		_, err := EncodeTensor("enc", test.t)
		wantErr(t, test.name, err, test.want, `"enc"`)
	}
}

// TestFloat8Decode checks known codes of every 8-bit and 4-bit float type against the
// values in the ONNX specification (docs/Operators.md, Cast; onnx.numpy_helper).
func TestFloat8Decode(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	pow2 := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	for _, test := range []struct {
		dt   DataType
		code uint8
		want float32
	}{
		{TypeFloat8E4M3FN, 0x00, 0},
		{TypeFloat8E4M3FN, 0x01, pow2(-9)},
		{TypeFloat8E4M3FN, 0x07, 7 * pow2(-9)},
		{TypeFloat8E4M3FN, 0x08, pow2(-6)},
		{TypeFloat8E4M3FN, 0x38, 1},
		{TypeFloat8E4M3FN, 0x7e, 448},
		{TypeFloat8E4M3FN, 0xfe, -448},
		{TypeFloat8E4M3FN, 0x7f, nan},
		{TypeFloat8E4M3FN, 0xff, nan},
		{TypeFloat8E4M3FN, 0x78, 256},

		{TypeFloat8E4M3FNUZ, 0x00, 0},
		{TypeFloat8E4M3FNUZ, 0x80, nan},
		{TypeFloat8E4M3FNUZ, 0x01, pow2(-10)},
		{TypeFloat8E4M3FNUZ, 0x40, 1},
		{TypeFloat8E4M3FNUZ, 0x7f, 240},
		{TypeFloat8E4M3FNUZ, 0xff, -240},

		{TypeFloat8E5M2, 0x00, 0},
		{TypeFloat8E5M2, 0x01, pow2(-16)},
		{TypeFloat8E5M2, 0x04, pow2(-14)},
		{TypeFloat8E5M2, 0x3c, 1},
		{TypeFloat8E5M2, 0x7b, 57344},
		{TypeFloat8E5M2, 0xfb, -57344},
		{TypeFloat8E5M2, 0x7c, inf},
		{TypeFloat8E5M2, 0xfc, -inf},
		{TypeFloat8E5M2, 0x7d, nan},
		{TypeFloat8E5M2, 0x7f, nan},
		{TypeFloat8E5M2, 0xfe, nan},

		{TypeFloat8E5M2FNUZ, 0x00, 0},
		{TypeFloat8E5M2FNUZ, 0x80, nan},
		{TypeFloat8E5M2FNUZ, 0x01, pow2(-17)},
		{TypeFloat8E5M2FNUZ, 0x40, 1},
		{TypeFloat8E5M2FNUZ, 0x7f, 57344},
		{TypeFloat8E5M2FNUZ, 0xff, -57344},

		{TypeFloat8E8M0, 0, pow2(-127)},
		{TypeFloat8E8M0, 127, 1},
		{TypeFloat8E8M0, 128, 2},
		{TypeFloat8E8M0, 254, pow2(127)},
		{TypeFloat8E8M0, 255, nan},

		{TypeFloat4E2M1, 0x0, 0},
		{TypeFloat4E2M1, 0x1, 0.5},
		{TypeFloat4E2M1, 0x2, 1},
		{TypeFloat4E2M1, 0x3, 1.5},
		{TypeFloat4E2M1, 0x4, 2},
		{TypeFloat4E2M1, 0x5, 3},
		{TypeFloat4E2M1, 0x6, 4},
		{TypeFloat4E2M1, 0x7, 6},
		{TypeFloat4E2M1, 0x9, -0.5},
		{TypeFloat4E2M1, 0xf, -6},
	} {
		tp, err := EncodeTensor("f8", &Tensor{Type: test.dt, Shape: []int64{1}, Data: []uint8{test.code}})
		if err != nil {
			t.Fatalf("%s 0x%02x: %v", test.dt, test.code, err)
		}
		got, err := TensorFloat32s(tp)
		if err != nil {
			t.Fatalf("%s 0x%02x: %v", test.dt, test.code, err)
		}
		g := got[0]
		switch {
		case test.want != test.want:
			if g == g {
				t.Errorf("%s 0x%02x = %v, want NaN", test.dt, test.code, g)
			}
		case g != test.want:
			t.Errorf("%s 0x%02x = %v, want %v", test.dt, test.code, g, test.want)
		}
	}
	// Negative zero keeps its sign in the formats that have one.
	for _, dt := range []DataType{TypeFloat8E4M3FN, TypeFloat8E5M2} {
		v := float8Decoder(dt)(0x80)
		if v != 0 || !math.Signbit(float64(v)) {
			t.Errorf("%s 0x80 = %v, want -0", dt, v)
		}
	}
	if v := float8Decoder(TypeFloat4E2M1)(0x8); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("float4e2m1 0x8 = %v, want -0", v)
	}
	if float8Decoder(TypeUint8) != nil || float8Decoder(TypeInt4) != nil {
		t.Errorf("float8Decoder returns a decoder for an integer type")
	}
}

func TestBFloat16(t *testing.T) {
	for _, test := range []struct {
		name string
		in   uint32 // float32 bits
		want BFloat16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"minus two", 0xc0000000, 0xc000},
		{"zero", 0, 0},
		{"negative zero", 0x80000000, 0x8000},
		{"exact", 0x3f810000, 0x3f81},
		{"round down", 0x3f807fff, 0x3f80},
		{"round up", 0x3f808001, 0x3f81},
		{"tie to even (down)", 0x3f808000, 0x3f80},
		{"tie to even (up)", 0x3f818000, 0x3f82},
		{"infinity", 0x7f800000, 0x7f80},
		{"max float rounds to infinity", 0x7f7fffff, 0x7f80},
		{"smallest subnormal", 0x00000001, 0x0000},
	} {
		if got := BFloat16FromFloat32(math.Float32frombits(test.in)); got != test.want {
			t.Errorf("%s: BFloat16FromFloat32(%#08x) = %#04x, want %#04x", test.name, test.in, uint16(got), uint16(test.want))
		}
	}
	for _, nanBits := range []uint32{0x7fc00000, 0x7f800001, 0xffc00001, 0x7f800100} {
		b := BFloat16FromFloat32(math.Float32frombits(nanBits))
		if f := b.Float32(); f == f {
			t.Errorf("BFloat16FromFloat32(NaN %#08x) = %#04x, which is not NaN", nanBits, uint16(b))
		}
	}
	// Every bfloat16 widens exactly and narrows back to itself.
	for u := 0; u <= 0xffff; u++ {
		b := BFloat16(u)
		f := b.Float32()
		if f != f {
			continue
		}
		if back := BFloat16FromFloat32(f); back != b {
			t.Fatalf("bfloat16 %#04x -> %v -> %#04x", u, f, uint16(back))
		}
	}
}

func TestFloat32s(t *testing.T) {
	for _, test := range []struct {
		name string
		t    *Tensor
		want []float32
	}{
		{"float", NewTensor([]int64{2}, []float32{1, 2}), []float32{1, 2}},
		{"double", NewTensor([]int64{1}, []float64{0.5}), []float32{0.5}},
		{"int8", NewTensor([]int64{2}, []int8{-3, 4}), []float32{-3, 4}},
		{"uint8", NewTensor([]int64{1}, []uint8{200}), []float32{200}},
		{"int16", NewTensor([]int64{1}, []int16{-300}), []float32{-300}},
		{"uint16", NewTensor([]int64{1}, []uint16{60000}), []float32{60000}},
		{"int32", NewTensor([]int64{1}, []int32{-70000}), []float32{-70000}},
		{"uint32", NewTensor([]int64{1}, []uint32{70000}), []float32{70000}},
		{"int64", NewTensor([]int64{1}, []int64{1 << 40}), []float32{1 << 40}},
		{"uint64", NewTensor([]int64{1}, []uint64{3}), []float32{3}},
		{"float16", NewTensor([]int64{1}, []float16.Float16{f16(-1.5)}), []float32{-1.5}},
		{"bfloat16", NewTensor([]int64{1}, []BFloat16{0x4040}), []float32{3}},
		{"int4", &Tensor{Type: TypeInt4, Shape: []int64{2}, Data: []int8{-8, 7}}, []float32{-8, 7}},
		{"uint4", &Tensor{Type: TypeUint4, Shape: []int64{1}, Data: []uint8{15}}, []float32{15}},
		{"float8e4m3fn", &Tensor{Type: TypeFloat8E4M3FN, Shape: []int64{1}, Data: []uint8{0x7e}}, []float32{448}},
		{"float4e2m1", &Tensor{Type: TypeFloat4E2M1, Shape: []int64{2}, Data: []uint8{0x7, 0x1}}, []float32{6, 0.5}},
	} {
		got, err := test.t.Float32s()
		if err != nil || !reflect.DeepEqual(got, test.want) {
			t.Errorf("%s: Float32s() = %v, %v, want %v", test.name, got, err, test.want)
		}
	}
	for _, bad := range []*Tensor{
		NewTensor([]int64{1}, []bool{true}),
		NewTensor([]int64{1}, []string{"a"}),
		NewTensor([]int64{1}, []complex64{1}),
	} {
		if _, err := bad.Float32s(); err == nil {
			t.Errorf("Float32s of %s: no error", bad.Type)
		}
	}
}

func TestSlice(t *testing.T) {
	tt := NewTensor([]int64{2}, []int32{1, 2})
	if s, err := Slice[int32](tt); err != nil || !reflect.DeepEqual(s, []int32{1, 2}) {
		t.Errorf("Slice[int32] = %v, %v", s, err)
	}
	if _, err := Slice[float32](tt); err == nil {
		t.Errorf("Slice[float32] of an int32 tensor: no error")
	}
	for _, test := range []struct {
		t    *Tensor
		want DataType
	}{
		{NewTensor(nil, []float32{}), TypeFloat}, {NewTensor(nil, []float64{}), TypeDouble},
		{NewTensor(nil, []int8{}), TypeInt8}, {NewTensor(nil, []uint8{}), TypeUint8},
		{NewTensor(nil, []int16{}), TypeInt16}, {NewTensor(nil, []uint16{}), TypeUint16},
		{NewTensor(nil, []int32{}), TypeInt32}, {NewTensor(nil, []uint32{}), TypeUint32},
		{NewTensor(nil, []int64{}), TypeInt64}, {NewTensor(nil, []uint64{}), TypeUint64},
		{NewTensor(nil, []bool{}), TypeBool}, {NewTensor(nil, []float16.Float16{}), TypeFloat16},
		{NewTensor(nil, []BFloat16{}), TypeBFloat16}, {NewTensor(nil, []string{}), TypeString},
		{NewTensor(nil, []complex64{}), TypeComplex64}, {NewTensor(nil, []complex128{}), TypeComplex128},
	} {
		if test.t.Type != test.want {
			t.Errorf("NewTensor of %T has type %s, want %s", test.t.Data, test.t.Type, test.want)
		}
	}
	// NewTensor copies the shape.
	shape := []int64{3}
	nt := NewTensor(shape, []float32{1, 2, 3})
	shape[0] = 9
	if nt.Shape[0] != 3 {
		t.Errorf("NewTensor shares the caller's shape slice")
	}
}

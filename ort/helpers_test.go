package ort

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// initORT loads the library or fails the test: `make test` installs it first, so a
// missing library is a failure, not a reason to skip.
func initORT(t testing.TB) {
	t.Helper()
	if err := Init(""); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

// vi declares a tensor value; each dim is an int (fixed) or a string (symbolic). No dims
// declares a scalar.
func vi(name string, dt onnxio.DataType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		default:
			panic("dim must be int or string")
		}
	}
	v := viNoShape(name, dt)
	v.GetType().GetTensorType().Shape = shape
	return v
}

// viNoShape declares a tensor value of unknown rank.
func viNoShape(name string, dt onnxio.DataType) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}}}}
}

func node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// graph builds model bytes at IR 8 and the given opset.
func graph(t testing.TB, opset int64, nodes []*onnxpb.NodeProto, inputs, outputs []*onnxpb.ValueInfoProto) []byte {
	t.Helper()
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("ort_test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("test"),
			Node:   nodes,
			Input:  inputs,
			Output: outputs,
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addModel is z = x + y with x, y, z float [N, 3].
func addModel(t testing.TB) []byte {
	return graph(t, 17,
		[]*onnxpb.NodeProto{node("Add", []string{"x", "y"}, []string{"z"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, "N", 3), vi("y", onnxio.TypeFloat, "N", 3)},
		[]*onnxpb.ValueInfoProto{vi("z", onnxio.TypeFloat, "N", 3)})
}

// identityModel is y = Identity(x) for element type dt and the declared dims of x and y
// (nil dims: no declared shape).
func identityModel(t testing.TB, dt onnxio.DataType, dims []any) []byte {
	decl := func(name string) *onnxpb.ValueInfoProto {
		if dims == nil {
			return viNoShape(name, dt)
		}
		return vi(name, dt, dims...)
	}
	return graph(t, 17,
		[]*onnxpb.NodeProto{node("Identity", []string{"x"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{decl("x")}, []*onnxpb.ValueInfoProto{decl("y")})
}

func newSession(t testing.TB, model []byte, opts Options) *Session {
	t.Helper()
	initORT(t)
	s, err := NewSession(model, opts)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func run(t testing.TB, s *Session, inputs map[string]*onnxio.Tensor, outputs ...string) map[string]*onnxio.Tensor {
	t.Helper()
	out, err := s.Run(inputs, outputs...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

func seq(n int, f func(i int) float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

func sameTensor(t testing.TB, name string, got, want *onnxio.Tensor) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no tensor", name)
	}
	if got.Type != want.Type {
		t.Errorf("%s: type %s, want %s", name, got.Type, want.Type)
	}
	if !reflect.DeepEqual(got.Shape, want.Shape) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	if !reflect.DeepEqual(got.Data, want.Data) {
		t.Errorf("%s: data %v, want %v", name, got.Data, want.Data)
	}
}

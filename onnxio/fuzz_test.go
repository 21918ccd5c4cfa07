package onnxio

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// fuzzModels are the valid small models that seed FuzzLoadBytes.
func fuzzModels(t testing.TB) []*Model {
	ext := mlpModel(t)
	w := ext.Graph().Initializer[1] // B1, 64 bytes, read from fuzzdata.bin
	w.RawData = nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	w.ExternalData = []*onnxpb.StringStringEntryProto{
		{Key: proto.String("location"), Value: proto.String("fuzzdata.bin")},
		{Key: proto.String("offset"), Value: proto.String("64")},
		{Key: proto.String("length"), Value: proto.String("64")},
	}
	shared := wrapGraph(sharedWeightsGraph(t))
	shared.SetOpset("com.example", 1)
	return []*Model{
		mlpModel(t),
		ifModel(t),
		wrapGraph(nestedGraph(t)),
		shared,
		quantModel(t, "qdq"),
		quantModel(t, "qoperator"),
		ext,
	}
}

// FuzzLoadBytes: whatever the bytes, LoadBytes, Check, Summarize, TopoSort, the index,
// the tensor decoder and the edit helpers must not panic, and errors must say something.
func FuzzLoadBytes(f *testing.F) {
	dir := f.TempDir()
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "fuzzdata.bin"), data, 0o644); err != nil {
		f.Fatal(err)
	}
	for _, m := range fuzzModels(f) {
		b, err := proto.Marshal(m.Proto)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, cut := range []int{1, len(b) / 3, len(b) / 2, len(b) - 1} {
			f.Add(b[:cut])
		}
	}
	f.Add([]byte(lfsPointer))
	f.Add([]byte{})
	tb, _ := proto.Marshal(floatInit(f, "w", 2, 3))
	f.Add(tb)

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadBytes(data, dir)
		if err != nil {
			if !strings.Contains(err.Error(), "not an ONNX model") && !strings.Contains(err.Error(), "tensor ") {
				t.Errorf("LoadBytes error does not say what is wrong: %v", err)
			}
			return
		}
		if err := Check(m); err != nil && err.Error() == "" {
			t.Errorf("empty Check error")
		}
		s := Summarize(m)
		if _, err := json.Marshal(s); err != nil {
			t.Errorf("summary does not marshal: %v", err)
		}
		g := m.Graph()
		ix := NewIndex(g)
		for name := range ix.Producer {
			ix.ConstantTensor(name)
			ix.ElemType(name)
			ix.Shape(name)
		}
		for _, n := range g.GetNode() {
			if n.GetOpType() == "Constant" {
				ConstantNodeTensor(n)
			}
		}
		WalkTensors(m.Proto, func(tp *onnxpb.TensorProto, _ string) bool {
			if tt, err := DecodeTensor(tp); err == nil {
				tt.Float32s()
			}
			return true
		})
		nm := NewNamer(g)
		nm.Name("x")
		before := len(g.GetNode())
		if err := TopoSort(g); err == nil && len(g.GetNode()) != before {
			t.Errorf("TopoSort changed the node count from %d to %d", before, len(g.GetNode()))
		}
		if b, err := m.Bytes(); err == nil {
			if _, err := LoadBytes(b, dir); err != nil {
				t.Errorf("a loaded model does not load again after Bytes: %v", err)
			}
		}
		c := m.Clone()
		RemoveDeadNodes(c.Graph())
		RemoveUnusedInitializers(c.Graph())
		if len(g.GetNode()) > 0 && len(g.GetNode()[0].GetOutput()) > 0 {
			v := g.GetNode()[0].GetOutput()[0]
			InsertAfter(c.Graph(), v, v+"_fz", true, node("fz", "Identity", []string{v}, []string{v + "_fz"}))
			ReplaceUses(c.Graph(), v, v+"_fz2")
		}
	})
}

// fuzzTensors are the TensorProtos that seed FuzzDecodeTensor: one of every type in
// raw_data, and the typed-field forms.
func fuzzTensors(t testing.TB) []*onnxpb.TensorProto {
	var out []*onnxpb.TensorProto
	add := func(tt *Tensor) {
		tp, err := EncodeTensor("seed_"+tt.Type.String(), tt)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tp)
	}
	add(NewTensor([]int64{2}, []float32{1, -2}))
	add(NewTensor([]int64{1, 1}, []float64{3}))
	add(NewTensor([]int64{3}, []int8{-1, 0, 1}))
	add(NewTensor([]int64{2}, []uint8{0, 255}))
	add(NewTensor([]int64{1}, []int16{-2}))
	add(NewTensor([]int64{1}, []uint16{2}))
	add(NewTensor([]int64{1}, []int32{-2}))
	add(NewTensor([]int64{1}, []uint32{2}))
	add(NewTensor([]int64{1}, []int64{-2}))
	add(NewTensor([]int64{1}, []uint64{2}))
	add(NewTensor([]int64{2}, []bool{true, false}))
	add(NewTensor([]int64{1}, []BFloat16{0x3f80}))
	add(NewTensor([]int64{1}, []complex64{1}))
	add(NewTensor([]int64{1}, []complex128{1}))
	add(NewTensor([]int64{2}, []string{"a", "b"}))
	add(&Tensor{Type: TypeInt4, Shape: []int64{3}, Data: []int8{1, -1, 7}})
	add(&Tensor{Type: TypeUint4, Shape: []int64{3}, Data: []uint8{1, 15, 7}})
	add(&Tensor{Type: TypeInt2, Shape: []int64{5}, Data: []int8{1, -1, 0, -2, 1}})
	add(&Tensor{Type: TypeUint2, Shape: []int64{5}, Data: []uint8{1, 3, 0, 2, 1}})
	add(&Tensor{Type: TypeFloat4E2M1, Shape: []int64{1}, Data: []uint8{7}})
	for _, dt := range []DataType{TypeFloat8E4M3FN, TypeFloat8E4M3FNUZ, TypeFloat8E5M2, TypeFloat8E5M2FNUZ, TypeFloat8E8M0} {
		add(&Tensor{Type: dt, Shape: []int64{2}, Data: []uint8{0x7e, 0x80}})
	}
	typed := func(dt DataType, dims []int64, set func(*onnxpb.TensorProto)) {
		tp := &onnxpb.TensorProto{Name: proto.String("typed"), DataType: proto.Int32(int32(dt)), Dims: dims}
		set(tp)
		out = append(out, tp)
	}
	typed(TypeFloat, []int64{2}, func(tp *onnxpb.TensorProto) { tp.FloatData = []float32{1, 2} })
	typed(TypeInt64, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int64Data = []int64{5} })
	typed(TypeDouble, []int64{1}, func(tp *onnxpb.TensorProto) { tp.DoubleData = []float64{5} })
	typed(TypeUint64, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Uint64Data = []uint64{5} })
	typed(TypeFloat16, []int64{1}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x3c00} })
	typed(TypeInt4, []int64{3}, func(tp *onnxpb.TensorProto) { tp.Int32Data = []int32{0x1f, 0x07} })
	typed(TypeUint8, []int64{1 << 61}, func(tp *onnxpb.TensorProto) { tp.RawData = []byte{} })
	return out
}

// FuzzDecodeTensor decodes arbitrary TensorProto bytes: no panic, no huge allocation from
// a shape the data does not back, errors naming the tensor, agreement with
// CheckTensorSize, and a bit-exact re-encoding of whatever decodes.
func FuzzDecodeTensor(f *testing.F) {
	for _, tp := range fuzzTensors(f) {
		b, err := proto.Marshal(tp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tp onnxpb.TensorProto
		if err := proto.Unmarshal(data, &tp); err != nil {
			return
		}
		sizeErr := CheckTensorSize(&tp)
		tt, err := DecodeTensor(&tp)
		if err != nil {
			if !strings.Contains(err.Error(), "tensor "+strconv.Quote(tp.GetName())) {
				t.Errorf("error does not name the tensor %q: %v", tp.GetName(), err)
			}
			return
		}
		if sizeErr != nil {
			t.Errorf("DecodeTensor accepts what CheckTensorSize refuses: %v", sizeErr)
		}
		n, err := NumElements(tp.GetDims())
		if err != nil || int64(tt.Len()) != n {
			t.Fatalf("decoded %d elements for dims %v (%v)", tt.Len(), tp.GetDims(), err)
		}
		if tt.Type != DataType(tp.GetDataType()) || !reflect.DeepEqual(tt.Shape, append([]int64(nil), tp.GetDims()...)) {
			t.Errorf("decoded header %s %v, want %d %v", tt.Type, tt.Shape, tp.GetDataType(), tp.GetDims())
		}
		tt.Float32s()
		enc, err := EncodeTensor(tp.GetName(), tt)
		if err != nil {
			t.Fatalf("a decoded tensor does not encode: %v", err)
		}
		back, err := DecodeTensor(enc)
		if err != nil {
			t.Fatalf("an encoded tensor does not decode: %v", err)
		}
		enc2, err := EncodeTensor(tp.GetName(), back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc.RawData, enc2.RawData) || !reflect.DeepEqual(enc.StringData, enc2.StringData) {
			t.Errorf("re-encoding is not stable")
		}
		if tp.RawData != nil && tt.Type.Bits() >= 8 && tt.Type != TypeBool && !bytes.Equal(enc.RawData, tp.RawData) {
			t.Errorf("raw_data changed in a decode/encode round trip")
		}
	})
}

package ort

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// reuseModel exposes the values that could trip buffer reuse up: the graph input itself,
// a value later nodes read (a), a Reshape that may alias its input (r), a constant (c),
// a value whose shape depends on the data (nz, NonZero), a float16 output (h, fetched
// through a Cast), an Identity of the input (id) and an initializer (w).
func reuseModel(t testing.TB) []byte {
	minus := &onnxpb.TensorProto{Dims: []int64{1}, DataType: proto.Int32(int32(onnxio.TypeInt64)), Int64Data: []int64{-1}}
	cval := &onnxpb.TensorProto{Dims: []int64{2}, DataType: proto.Int32(int32(onnxio.TypeFloat)), FloatData: []float32{7, 8}}
	b := graph(t, 17,
		[]*onnxpb.NodeProto{
			node("Identity", []string{"x"}, []string{"id"}),
			node("Relu", []string{"x"}, []string{"a"}),
			node("Constant", nil, []string{"minus"}, attrTensor("value", minus)),
			node("Reshape", []string{"a", "minus"}, []string{"r"}),
			node("Add", []string{"a", "x"}, []string{"z"}),
			node("Constant", nil, []string{"c"}, attrTensor("value", cval)),
			node("NonZero", []string{"a"}, []string{"nz"}),
			node("Cast", []string{"z"}, []string{"h"}, attrInt("to", int64(onnxio.TypeFloat16))),
		},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, "N", 3)},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, "N", 3), vi("a", onnxio.TypeFloat, "N", 3),
			vi("r", onnxio.TypeFloat, "M"), vi("z", onnxio.TypeFloat, "N", 3), vi("c", onnxio.TypeFloat, 2),
			vi("nz", onnxio.TypeInt64, 2, "K"), vi("h", onnxio.TypeFloat16, "N", 3),
			vi("id", onnxio.TypeFloat, "N", 3), vi("w", onnxio.TypeFloat, 2)})
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m.Graph.Initializer = append(m.Graph.Initializer, &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{2},
		DataType: proto.Int32(int32(onnxio.TypeFloat)), FloatData: []float32{3, 4}})
	b, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunIntoMatchesRun(t *testing.T) {
	s := newSession(t, reuseModel(t), Options{})
	b := s.NewBuffers()
	defer b.Release()
	// Batches of 2, 2, 3, 2 rows with different signs: the data-dependent NonZero output
	// changes shape between batches of the same shape; the kept buffers must never
	// return stale values.
	for i, rows := range []int{2, 2, 2, 3, 2, 2} {
		x := onnxio.NewTensor([]int64{int64(rows), 3}, seq(rows*3, func(j int) float32 {
			if (j+i)%(i+2) == 0 {
				return -float32(j + 1)
			}
			return float32(j*(i+1)) / 4
		}))
		in := map[string]*onnxio.Tensor{"x": x}
		want := run(t, s, in)
		got, err := s.RunInto(b, in)
		if err != nil {
			t.Fatalf("batch %d: RunInto: %v", i, err)
		}
		for name, w := range want {
			sameTensor(t, name, got[name], w)
		}
		// Only the outputs asked for.
		got, err = s.RunInto(b, in, "z")
		if err != nil || len(got) != 1 {
			t.Fatalf("batch %d: RunInto(z) = %v, %v", i, got, err)
		}
		sameTensor(t, "z", got["z"], want["z"])
	}
	for i := range b.slots {
		name := ""
		for n, j := range s.ortOut {
			if j == i {
				name = n
			}
		}
		if want := name == "nz"; b.slots[i].dynamic != want {
			t.Errorf("output %q: dynamic = %v, want %v", name, b.slots[i].dynamic, want)
		}
	}
}

func TestRunIntoWritesInPlace(t *testing.T) {
	s := newSession(t, addModel(t), Options{})
	b := s.NewBuffers()
	defer b.Release()
	in := func(v float32) map[string]*onnxio.Tensor {
		return map[string]*onnxio.Tensor{
			"x": onnxio.NewTensor([]int64{2, 3}, seq(6, func(i int) float32 { return v * float32(i) })),
			"y": onnxio.NewTensor([]int64{2, 3}, seq(6, func(i int) float32 { return 1 })),
		}
	}
	first, err := s.RunInto(b, in(1))
	if err != nil {
		t.Fatal(err)
	}
	p := &first["z"].Data.([]float32)[0]
	second, err := s.RunInto(b, in(2))
	if err != nil {
		t.Fatal(err)
	}
	if q := &second["z"].Data.([]float32)[0]; q != p {
		t.Error("the second run with the same shapes did not reuse the first run's memory")
	}
	sameTensor(t, "z", second["z"], onnxio.NewTensor([]int64{2, 3}, []float32{1, 3, 5, 7, 9, 11}))
	// A new batch size gets new memory, and the right values.
	x := map[string]*onnxio.Tensor{
		"x": onnxio.NewTensor([]int64{1, 3}, []float32{1, 2, 3}),
		"y": onnxio.NewTensor([]int64{1, 3}, []float32{1, 1, 1}),
	}
	third, err := s.RunInto(b, x)
	if err != nil {
		t.Fatal(err)
	}
	sameTensor(t, "z", third["z"], onnxio.NewTensor([]int64{1, 3}, []float32{2, 3, 4}))
}

func TestRunIntoErrors(t *testing.T) {
	s := newSession(t, addModel(t), Options{})
	other := newSession(t, addModel(t), Options{})
	good := map[string]*onnxio.Tensor{
		"x": onnxio.NewTensor([]int64{2, 3}, make([]float32, 6)),
		"y": onnxio.NewTensor([]int64{2, 3}, make([]float32, 6)),
	}
	for _, tc := range []struct {
		name string
		b    func() *Buffers
		want string
	}{
		{"nil", func() *Buffers { return nil }, "another session"},
		{"other session", other.NewBuffers, "another session"},
		{"in use", func() *Buffers { b := s.NewBuffers(); b.mu.Lock(); return b }, "in use"},
		{"released", func() *Buffers { b := s.NewBuffers(); b.Release(); return b }, "released"},
	} {
		_, err := s.RunInto(tc.b(), good)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one that says %q", tc.name, err, tc.want)
		}
	}
	// Run's own checks still apply, and a failed call keeps the buffers usable.
	b := s.NewBuffers()
	defer b.Release()
	if _, err := s.RunInto(b, good, "nope"); err == nil {
		t.Error("unknown output: no error")
	}
	if _, err := s.RunInto(b, map[string]*onnxio.Tensor{"x": good["x"]}); err == nil {
		t.Error("missing input: no error")
	}
	if _, err := s.RunInto(b, good); err != nil {
		t.Errorf("after errors: %v", err)
	}
}

func TestRunIntoNoValueLeak(t *testing.T) {
	s := newSession(t, reuseModel(t), Options{})
	b := s.NewBuffers()
	for i := range 4 {
		x := onnxio.NewTensor([]int64{int64(2 + i%2), 3}, seq(3*(2+i%2), func(j int) float32 { return float32(j - i) }))
		if _, err := s.RunInto(b, map[string]*onnxio.Tensor{"x": x}); err != nil {
			t.Fatal(err)
		}
	}
	if liveValues.Load() == 0 {
		t.Error("the buffers keep no onnxruntime values")
	}
	b.Release()
	b.Release()
	if n := liveValues.Load(); n != 0 {
		t.Errorf("%d onnxruntime values left alive after Release", n)
	}
}

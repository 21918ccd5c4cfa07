package ort

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// openBoth opens model the direct way and the two-session way and returns both.
func openBoth(t *testing.T, model []byte) (direct, long *Session, temp int64) {
	t.Helper()
	before := tempSessions.Load()
	direct = newSession(t, model, Options{})
	temp = tempSessions.Load() - before
	directOpen = false
	defer func() { directOpen = true }()
	long = newSession(t, model, Options{})
	return direct, long, temp
}

// A model whose protobuf names its inputs and outputs opens in one session, reporting the
// same inputs and outputs (types, shapes, names of dimensions) and giving the same
// results as the two-session way; so does one whose outputs include a value it declares
// by name only. Models whose declared outputs need fetch nodes (float16 and scalar
// outputs: the model is rewritten) and models without inputs (a dummy input is added)
// take the two-session way.
func TestOpenDirect(t *testing.T) {
	initORT(t)
	fixture, err := os.ReadFile("../testdata/models/resnet_small.onnx")
	if err != nil {
		t.Fatal(err)
	}
	pixels := make([]float32, 2*3*32*32)
	for i := range pixels {
		pixels[i] = float32(i%97)/48 - 1
	}
	x := onnxio.NewTensor([]int64{2, 3, 32, 32}, pixels)
	// Identity with a second output declared by name only (as calibration adds them).
	byName := graph(t, 17,
		[]*onnxpb.NodeProto{node("Relu", []string{"x"}, []string{"r"}), node("Identity", []string{"r"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, "N", 3)},
		[]*onnxpb.ValueInfoProto{vi("y", onnxio.TypeFloat, "N", 3), {Name: proto.String("r")}})
	value := &onnxpb.TensorProto{Dims: []int64{2}, DataType: proto.Int32(int32(onnxio.TypeFloat)), FloatData: []float32{1, 2}}
	noInputs := graph(t, 17, []*onnxpb.NodeProto{node("Constant", nil, []string{"c"}, attrTensor("value", value))},
		nil, []*onnxpb.ValueInfoProto{vi("c", onnxio.TypeFloat, 2)})
	// The same with float16 values: the direct session learns that the output needs a
	// fetch node, closes, and the rewritten model opens (still no temporary session).
	byName16 := graph(t, 17,
		[]*onnxpb.NodeProto{node("Identity", []string{"x"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat16, "N")},
		[]*onnxpb.ValueInfoProto{{Name: proto.String("y")}})
	small := onnxio.NewTensor([]int64{2, 3}, []float32{-1, 2, -3, 4, -5, 6})
	for _, tc := range []struct {
		name  string
		model []byte
		feed  map[string]*onnxio.Tensor
		temp  int64
	}{
		{"resnet_small", fixture, map[string]*onnxio.Tensor{"input": x}, 0},
		{"output declared by name", byName, map[string]*onnxio.Tensor{"x": small}, 0},
		{"float16 output", identityModel(t, onnxio.TypeFloat16, []any{"N"}), map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{2}, []float16.Float16{float16.Fromfloat32(1.5), float16.Fromfloat32(-2)})}, 1},
		{"scalar output", identityModel(t, onnxio.TypeFloat, []any{}), map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{}, []float32{2.5})}, 1},
		{"no inputs", noInputs, nil, 1},
		{"float16 output declared by name", byName16, map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{2}, []float16.Float16{float16.Fromfloat32(0.25), float16.Fromfloat32(-8)})}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, l, temp := openBoth(t, tc.model)
			if temp != tc.temp {
				t.Errorf("temporary sessions: %d, want %d", temp, tc.temp)
			}
			if fmt.Sprint(d.Inputs()) != fmt.Sprint(l.Inputs()) || fmt.Sprint(d.Outputs()) != fmt.Sprint(l.Outputs()) {
				t.Errorf("inputs/outputs: direct %v %v, two sessions %v %v", d.Inputs(), d.Outputs(), l.Inputs(), l.Outputs())
			}
			got, want := run(t, d, tc.feed), run(t, l, tc.feed)
			for name, w := range want {
				sameTensor(t, name, got[name], w)
			}
		})
	}
}

// BenchmarkNewSession opens the residual-net fixture in one session (openDirect) and
// the two-session way, side by side.
func BenchmarkNewSession(b *testing.B) {
	initORT(b)
	model, err := os.ReadFile("../testdata/models/resnet_small.onnx")
	if err != nil {
		b.Fatal(err)
	}
	for _, direct := range []bool{true, false} {
		b.Run(map[bool]string{true: "direct", false: "two-sessions"}[direct], func(b *testing.B) {
			directOpen = direct
			defer func() { directOpen = true }()
			for b.Loop() {
				s, err := NewSession(model, Options{})
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}

// openDirect reaches into onnxruntime_go (a linkname'd function, a field read by
// reflection) as v1.27.0 has them; moving go.mod to another release must come with a
// look at both and a new directVersion.
func TestDirectVersionPinned(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/yalue/onnxruntime_go " + directVersion; !strings.Contains(string(mod), want) {
		t.Errorf("go.mod does not require %s: check getInputOutputInfoFromCSession's signature and DynamicAdvancedSession's layout in the new release (ort/direct.go), then update directVersion", want)
	}
	if !directOpen {
		t.Error("the direct way is off in the test binary")
	}
}

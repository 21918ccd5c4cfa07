package fp16

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

type fixture struct {
	name    string
	shape   []int64
	uniform bool // uniform [0,1) inputs, else normal(0,1)
	// maxRatio is the size bound (converted / float32 serialized bytes). 0.51 where the
	// float weights dominate the file; resnet_small and tiny_transformer carry more
	// bytes float16 cannot shrink (names, int64 shape constants: 2.2% and 34% of the
	// file), so their bound is that floor plus 0.5% (see TestFixtures' weight check).
	maxRatio float64
}

var fixtures = []fixture{
	{"mnist_cnn", []int64{4, 1, 28, 28}, true, 0.51},
	{"resnet_small", []int64{4, 3, 32, 32}, false, 0.515},
	{"tiny_transformer", []int64{4, 16, 32}, false, 0.67},
}

func (f fixture) load(t testing.TB) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(filepath.Join("..", "..", "testdata", "models", f.name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// input returns a random input batch (not rounded: the conversion's input Cast rounds
// it like any real input).
func (f fixture) input(seed uint64) *onnxio.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := make([]float32, numel(f.shape))
	for i := range d {
		if f.uniform {
			d[i] = float32(rng.Float64())
		} else {
			d[i] = float32(rng.NormFloat64())
		}
	}
	return onnxio.NewTensor(f.shape, d)
}

// floatBytes sums the data bytes of the model's float32, float16 and bfloat16 tensors.
func floatBytes(m *onnxio.Model) (f32, low, other int64) {
	onnxio.WalkTensors(m.Proto, func(tp *onnxpb.TensorProto, _ string) bool {
		n := int64(len(tp.GetRawData()) + 4*len(tp.GetFloatData()))
		switch onnxio.DataType(tp.GetDataType()) {
		case onnxio.TypeFloat:
			f32 += n
		case onnxio.TypeFloat16, onnxio.TypeBFloat16:
			low += n
		default:
			other += int64(proto.Size(tp))
		}
		return true
	})
	return f32, low, other
}

// toType converts a float32 tensor to float16 or bfloat16.
func toType(t *onnxio.Tensor, dt onnxio.DataType) *onnxio.Tensor {
	src, ok := t.Data.([]float32)
	if !ok {
		return t
	}
	switch dt {
	case onnxio.TypeFloat16:
		d := make([]float16.Float16, len(src))
		for i, v := range src {
			d[i] = float16.Fromfloat32(v)
		}
		return onnxio.NewTensor(t.Shape, d)
	case onnxio.TypeBFloat16:
		d := make([]onnxio.BFloat16, len(src))
		for i, v := range src {
			d[i] = onnxio.BFloat16FromFloat32(v)
		}
		return onnxio.NewTensor(t.Shape, d)
	}
	return t
}

func TestFixtures(t *testing.T) {
	initORT(t)
	type variant struct {
		dt     onnxio.DataType
		keepIO bool
		force  bool
	}
	variants := []variant{
		{onnxio.TypeFloat16, true, false},
		{onnxio.TypeFloat16, false, false},
		{onnxio.TypeBFloat16, true, false},
		{onnxio.TypeBFloat16, true, true},
	}
	for _, f := range fixtures {
		orig := f.load(t)
		feeds := map[string]*onnxio.Tensor{"input": f.input(42)}
		ref, err := runModel(orig, feeds, ort.Options{})
		if err != nil {
			t.Fatalf("%s: float32 model: %v", f.name, err)
		}
		f32Before, _, _ := floatBytes(orig)
		for _, v := range variants {
			m := orig.Clone()
			rep, err := Convert(m, Options{Type: v.dt, KeepIOTypes: v.keepIO, ForceInitializers: v.force})
			if err != nil {
				t.Fatalf("%s %+v: %v", f.name, v, err)
			}
			mustCheck(t, m)
			data, _ := m.Bytes()
			if int64(len(data)) != rep.BytesAfter {
				t.Errorf("%s: report says %d bytes, the model has %d", f.name, rep.BytesAfter, len(data))
			}
			in := feeds
			if !v.keepIO {
				in = map[string]*onnxio.Tensor{"input": toType(feeds["input"], v.dt)}
				if got := elemType(m.Graph().Input[0]); got != v.dt {
					t.Errorf("%s: KeepIOTypes false: graph input is %s, want %s", f.name, got, v.dt)
				}
				if got := elemType(m.Graph().Output[0]); got != v.dt {
					t.Errorf("%s: KeepIOTypes false: graph output is %s, want %s", f.name, got, v.dt)
				}
			}
			got, err := runModel(m, in, ort.Options{})
			if err != nil {
				t.Fatalf("%s %+v: onnxruntime: %v", f.name, v, err)
			}
			s, err := compareOutputs(ref, got)
			if err != nil {
				t.Fatalf("%s %+v: %v", f.name, v, err)
			}
			t.Logf("%-16s %-8s keepIO=%-5v force=%-5v SQNR %5.1f dB  %s", f.name, v.dt, v.keepIO, v.force, s, rep)
			f32After, low, _ := floatBytes(m)
			switch {
			case v.dt == onnxio.TypeFloat16:
				if s < 40 {
					t.Errorf("%s float16: SQNR %.1f dB < 40", f.name, s)
				}
				if rep.Ratio() > f.maxRatio {
					t.Errorf("%s float16: size ratio %.4f > %.3f", f.name, rep.Ratio(), f.maxRatio)
				}
				// Every float32 weight byte halves.
				if f32After != 0 || low*2 != f32Before {
					t.Errorf("%s float16: float32 data %d -> %d float32 + %d float16 bytes, want all halved", f.name, f32Before, f32After, low)
				}
				if len(rep.Kept) != 0 {
					t.Errorf("%s float16: kept %v in float32; the cpu block list has none of its ops", f.name, rep.Kept)
				}
			case v.force:
				if f32After != 0 || low*2 != f32Before {
					t.Errorf("%s bfloat16 with ForceInitializers: float32 data %d -> %d float32 + %d bfloat16 bytes, want all halved", f.name, f32Before, f32After, low)
				}
			}
			if v.dt == onnxio.TypeBFloat16 && (math.IsNaN(s) || s < 30) {
				// Not a target (bfloat16 keeps 8 significant bits), a sanity floor.
				t.Errorf("%s bfloat16: SQNR %.1f dB: the conversion is broken", f.name, s)
			}
		}
	}
}

package ort

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestAddDynamicBatch(t *testing.T) {
	s := newSession(t, addModel(t), Options{})
	wantIn := []ValueInfo{
		{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}, DimNames: []string{"N", ""}},
		{Name: "y", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}, DimNames: []string{"N", ""}},
	}
	if got := s.Inputs(); !reflect.DeepEqual(got, wantIn) {
		t.Errorf("Inputs() = %+v, want %+v", got, wantIn)
	}
	wantOut := []ValueInfo{{Name: "z", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}, DimNames: []string{"N", ""}}}
	if got := s.Outputs(); !reflect.DeepEqual(got, wantOut) {
		t.Errorf("Outputs() = %+v, want %+v", got, wantOut)
	}
	if got := s.Inputs()[0].String(); got != "x: float[N,3]" {
		t.Errorf("String() = %q", got)
	}
	for _, batch := range []int{1, 5} {
		n := batch * 3
		x := seq(n, func(i int) float32 { return float32(i) })
		y := seq(n, func(i int) float32 { return 0.5 * float32(i) })
		out := run(t, s, map[string]*onnxio.Tensor{
			"x": onnxio.NewTensor([]int64{int64(batch), 3}, x),
			"y": onnxio.NewTensor([]int64{int64(batch), 3}, y),
		})
		want := onnxio.NewTensor([]int64{int64(batch), 3}, seq(n, func(i int) float32 { return 1.5 * float32(i) }))
		sameTensor(t, fmt.Sprintf("batch %d", batch), out["z"], want)
		if len(out) != 1 {
			t.Errorf("batch %d: %d outputs, want 1", batch, len(out))
		}
	}
}

func TestInputErrors(t *testing.T) {
	s := newSession(t, addModel(t), Options{})
	good := func() *onnxio.Tensor { return onnxio.NewTensor([]int64{2, 3}, make([]float32, 6)) }
	cases := []struct {
		name   string
		inputs map[string]*onnxio.Tensor
		want   []string
	}{
		{"unknown name", map[string]*onnxio.Tensor{"x": good(), "y": good(), "w": good()},
			[]string{`unknown input "w"`, `"x", "y"`}},
		{"missing name", map[string]*onnxio.Tensor{"x": good()},
			[]string{`missing input "y"`}},
		{"wrong type", map[string]*onnxio.Tensor{"x": good(), "y": onnxio.NewTensor([]int64{2, 3}, make([]int64, 6))},
			[]string{`input "y"`, "element type is int64", "wants float"}},
		{"wrong rank", map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{6}, make([]float32, 6)), "y": good()},
			[]string{`input "x"`, "rank is 1", "wants rank 2"}},
		{"wrong fixed dim", map[string]*onnxio.Tensor{"x": good(), "y": onnxio.NewTensor([]int64{3, 2}, make([]float32, 6))},
			[]string{`input "y"`, "dimension 1 is 2", "fixes it at 3"}},
		{"data does not match type", map[string]*onnxio.Tensor{"x": good(), "y": {Type: onnxio.TypeFloat, Shape: []int64{2, 3}, Data: make([]float64, 6)}},
			[]string{`input "y"`, "[]float32", "[]float64"}},
		{"data does not match shape", map[string]*onnxio.Tensor{"x": good(), "y": onnxio.NewTensor([]int64{2, 3}, make([]float32, 5))},
			[]string{`input "y"`, "needs 6 elements", "has 5"}},
		{"nil tensor", map[string]*onnxio.Tensor{"x": good(), "y": nil},
			[]string{`input "y" is nil`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Run(c.inputs)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
	// The session still works after refused inputs.
	run(t, s, map[string]*onnxio.Tensor{"x": good(), "y": good()})
}

func TestOutputSelection(t *testing.T) {
	// z = x + y and w = x * y.
	model := graph(t, 17,
		[]*onnxpb.NodeProto{node("Add", []string{"x", "y"}, []string{"z"}), node("Mul", []string{"x", "y"}, []string{"w"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, 2), vi("y", onnxio.TypeFloat, 2)},
		[]*onnxpb.ValueInfoProto{vi("z", onnxio.TypeFloat, 2), vi("w", onnxio.TypeFloat, 2)})
	s := newSession(t, model, Options{})
	in := map[string]*onnxio.Tensor{
		"x": onnxio.NewTensor([]int64{2}, []float32{2, 3}),
		"y": onnxio.NewTensor([]int64{2}, []float32{4, 5}),
	}
	out := run(t, s, in, "w")
	if len(out) != 1 {
		t.Fatalf("got %d outputs, want only w", len(out))
	}
	sameTensor(t, "w", out["w"], onnxio.NewTensor([]int64{2}, []float32{8, 15}))
	out = run(t, s, in)
	sameTensor(t, "z", out["z"], onnxio.NewTensor([]int64{2}, []float32{6, 8}))
	sameTensor(t, "w", out["w"], onnxio.NewTensor([]int64{2}, []float32{8, 15}))
	_, err := s.Run(in, "v")
	if err == nil || !strings.Contains(err.Error(), `unknown output "v"`) || !strings.Contains(err.Error(), `"z", "w"`) {
		t.Errorf("unknown output: error %v", err)
	}
}

func TestIntegerInputs(t *testing.T) {
	// c = Cast(a to int64) + b, with a uint8 [N] and b int64 [N].
	model := graph(t, 17,
		[]*onnxpb.NodeProto{
			node("Cast", []string{"a"}, []string{"a64"}, attrInt("to", int64(onnxio.TypeInt64))),
			node("Add", []string{"a64", "b"}, []string{"c"}),
		},
		[]*onnxpb.ValueInfoProto{vi("a", onnxio.TypeUint8, "N"), vi("b", onnxio.TypeInt64, "N")},
		[]*onnxpb.ValueInfoProto{vi("c", onnxio.TypeInt64, "N")})
	s := newSession(t, model, Options{})
	out := run(t, s, map[string]*onnxio.Tensor{
		"a": onnxio.NewTensor([]int64{4}, []uint8{0, 1, 200, 255}),
		"b": onnxio.NewTensor([]int64{4}, []int64{-1, 1 << 40, 55, -255}),
	})
	sameTensor(t, "c", out["c"], onnxio.NewTensor([]int64{4}, []int64{-1, 1<<40 + 1, 255, 0}))
	_, err := s.Run(map[string]*onnxio.Tensor{
		"a": onnxio.NewTensor([]int64{4}, []int8{0, 1, 2, 3}),
		"b": onnxio.NewTensor([]int64{4}, []int64{0, 0, 0, 0}),
	})
	if err == nil || !strings.Contains(err.Error(), `input "a": element type is int8, the model wants uint8`) {
		t.Errorf("int8 for uint8: error %v", err)
	}
}

// roundTrip lists one tensor per supported element type, shaped [3, 2].
func roundTrip() []*onnxio.Tensor {
	shape := []int64{3, 2}
	return []*onnxio.Tensor{
		onnxio.NewTensor(shape, []float32{0, -1.5, float32(math.Inf(1)), 3.25, 1e-30, -0}),
		onnxio.NewTensor(shape, []float64{0, -1.5, math.MaxFloat64, 3.25, 1e-300, 7}),
		onnxio.NewTensor(shape, []int8{-128, -1, 0, 1, 2, 127}),
		onnxio.NewTensor(shape, []uint8{0, 1, 2, 128, 254, 255}),
		onnxio.NewTensor(shape, []int16{-32768, -1, 0, 1, 2, 32767}),
		onnxio.NewTensor(shape, []uint16{0, 1, 2, 32768, 65534, 65535}),
		onnxio.NewTensor(shape, []int32{math.MinInt32, -1, 0, 1, 2, math.MaxInt32}),
		onnxio.NewTensor(shape, []uint32{0, 1, 2, 1 << 31, math.MaxUint32 - 1, math.MaxUint32}),
		onnxio.NewTensor(shape, []int64{math.MinInt64, -1, 0, 1, 2, math.MaxInt64}),
		onnxio.NewTensor(shape, []uint64{0, 1, 2, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}),
		onnxio.NewTensor(shape, []bool{true, false, false, true, true, false}),
		onnxio.NewTensor(shape, []float16.Float16{float16.Fromfloat32(0), float16.Fromfloat32(-1.5), float16.Inf(1),
			float16.Fromfloat32(65504), float16.Frombits(0x0001), float16.Frombits(0x8000)}),
		onnxio.NewTensor(shape, []onnxio.BFloat16{onnxio.BFloat16FromFloat32(0), onnxio.BFloat16FromFloat32(-1.5),
			onnxio.BFloat16FromFloat32(float32(math.Inf(-1))), onnxio.BFloat16FromFloat32(3e38), 0x0001, 0x8000}),
		onnxio.NewTensor(shape, []string{"", "a", "héllo", "with space", "x", "last"}),
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	for _, in := range roundTrip() {
		t.Run(in.Type.String(), func(t *testing.T) {
			s := newSession(t, identityModel(t, in.Type, []any{"N", 2}), Options{})
			if got := s.Outputs(); len(got) != 1 || got[0].Type != in.Type || !reflect.DeepEqual(got[0].Shape, []int64{-1, 2}) {
				t.Errorf("Outputs() = %+v", got)
			}
			sameTensor(t, "y", run(t, s, map[string]*onnxio.Tensor{"x": in})["y"], in)

			// The same rows, two of them: a different batch on the same session.
			two := &onnxio.Tensor{Type: in.Type, Shape: []int64{2, 2}, Data: reflect.ValueOf(in.Data).Slice(0, 4).Interface()}
			sameTensor(t, "y[2]", run(t, s, map[string]*onnxio.Tensor{"x": two})["y"], two)

			// No rows at all.
			zero := &onnxio.Tensor{Type: in.Type, Shape: []int64{0, 2}, Data: reflect.ValueOf(in.Data).Slice(0, 0).Interface()}
			sameTensor(t, "y[0]", run(t, s, map[string]*onnxio.Tensor{"x": zero})["y"], zero)
		})
	}
}

func TestFloat16NaNRoundTrip(t *testing.T) {
	s := newSession(t, identityModel(t, onnxio.TypeFloat16, []any{"N"}), Options{})
	in := onnxio.NewTensor([]int64{2}, []float16.Float16{float16.NaN(), float16.Inf(-1)})
	got := run(t, s, map[string]*onnxio.Tensor{"x": in})["y"].Data.([]float16.Float16)
	if !got[0].IsNaN() || !got[1].IsInf(-1) {
		t.Errorf("got %v, want [NaN -Inf]", got)
	}
}

func TestScalarOutputs(t *testing.T) {
	// Identity of scalars: onnxruntime_go cannot fetch rank-0 outputs by itself.
	for _, in := range []*onnxio.Tensor{
		onnxio.NewTensor([]int64{}, []float32{2.5}),
		onnxio.NewTensor([]int64{}, []int64{-7}),
		onnxio.NewTensor([]int64{}, []bool{true}),
	} {
		t.Run(in.Type.String(), func(t *testing.T) {
			s := newSession(t, identityModel(t, in.Type, []any{}), Options{})
			if got := s.Outputs(); len(got) != 1 || len(got[0].Shape) != 0 {
				t.Errorf("Outputs() = %+v", got)
			}
			sameTensor(t, "y", run(t, s, map[string]*onnxio.Tensor{"x": in})["y"], in)
		})
	}

	// A float16 scalar computed from a float16 vector: s = ReduceSum(x, keepdims=0).
	model := graph(t, 17,
		[]*onnxpb.NodeProto{node("ReduceSum", []string{"x"}, []string{"s"}, attrInt("keepdims", 0))},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat16, "N")},
		[]*onnxpb.ValueInfoProto{vi("s", onnxio.TypeFloat16)})
	s := newSession(t, model, Options{})
	x := onnxio.NewTensor([]int64{3}, []float16.Float16{float16.Fromfloat32(1), float16.Fromfloat32(2), float16.Fromfloat32(0.5)})
	sameTensor(t, "s", run(t, s, map[string]*onnxio.Tensor{"x": x})["s"],
		onnxio.NewTensor([]int64{}, []float16.Float16{float16.Fromfloat32(3.5)}))
}

func TestUnknownRank(t *testing.T) {
	// x and y declare no shape, so any rank goes, and the output's shape comes from the run.
	s := newSession(t, identityModel(t, onnxio.TypeFloat, nil), Options{})
	if got := s.Inputs(); len(got) != 1 || len(got[0].Shape) != 0 {
		t.Errorf("Inputs() = %+v", got)
	}
	for _, in := range []*onnxio.Tensor{
		onnxio.NewTensor([]int64{2, 3}, seq(6, func(i int) float32 { return float32(i) })),
		onnxio.NewTensor([]int64{}, []float32{4}),
		onnxio.NewTensor([]int64{1, 0, 2}, []float32{}),
	} {
		sameTensor(t, fmt.Sprint(in.Shape), run(t, s, map[string]*onnxio.Tensor{"x": in})["y"], in)
	}
}

func TestModelWithoutInputs(t *testing.T) {
	value := &onnxpb.TensorProto{Dims: []int64{2}, DataType: proto.Int32(int32(onnxio.TypeFloat)), FloatData: []float32{1, 2}}
	model := graph(t, 17,
		[]*onnxpb.NodeProto{node("Constant", nil, []string{"c"}, attrTensor("value", value))},
		nil, []*onnxpb.ValueInfoProto{vi("c", onnxio.TypeFloat, 2)})
	s := newSession(t, model, Options{})
	if len(s.Inputs()) != 0 {
		t.Errorf("Inputs() = %+v, want none", s.Inputs())
	}
	sameTensor(t, "c", run(t, s, nil)["c"], onnxio.NewTensor([]int64{2}, []float32{1, 2}))
	if _, err := s.Run(map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{1}, []float32{1})}); err == nil {
		t.Error("Run with an input the model does not have succeeded")
	}
}

func TestGPUProvidersUnavailable(t *testing.T) {
	initORT(t)
	avail, err := AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p       Provider
		ortName string
		opts    map[string]string
	}{
		{CUDA, cudaProviderName, nil},
		{CUDA, cudaProviderName, map[string]string{"device_id": "0"}},
		{TensorRT, tensorRTProviderName, nil},
		{TensorRT, tensorRTProviderName, map[string]string{"trt_fp16_enable": "1"}},
	} {
		t.Run(fmt.Sprintf("%s%v", c.p, c.opts), func(t *testing.T) {
			s, err := NewSession(addModel(t), Options{Provider: c.p, ProviderOptions: c.opts, DisableCPUFallback: true})
			if err == nil {
				s.Close()
				if !contains(avail, c.ortName) {
					t.Fatalf("%s session created though AvailableProviders = %v", c.p, avail)
				}
				return // a machine with a usable GPU
			}
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T) is not an *UnavailableError", err, err)
			}
			if ue.Provider != c.p || !strings.HasPrefix(err.Error(), string(c.p)+" unavailable: ") {
				t.Errorf("error %q, provider %q", err, ue.Provider)
			}
			if strings.Contains(err.Error(), "\n") || ue.Reason == "" {
				t.Errorf("error %q should be one non-empty line", err)
			}
			t.Log(err)
		})
	}
	// The failed attempts leave the CPU path working.
	s := newSession(t, addModel(t), Options{Provider: CPU})
	one := onnxio.NewTensor([]int64{1, 3}, []float32{1, 2, 3})
	run(t, s, map[string]*onnxio.Tensor{"x": one, "y": one})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestInvalidModels(t *testing.T) {
	initORT(t)
	good := addModel(t)
	noOutputs := graph(t, 17, nil, []*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, 1)}, nil)
	unknownOp := graph(t, 17, []*onnxpb.NodeProto{node("NoSuchOp", []string{"x"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, 1)}, []*onnxpb.ValueInfoProto{vi("y", onnxio.TypeFloat, 1)})
	for name, model := range map[string][]byte{
		"nil":        nil,
		"empty":      {},
		"garbage":    []byte("this is not an onnx model"),
		"truncated":  good[:len(good)/2],
		"no outputs": noOutputs,
		"unknown op": unknownOp,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := NewSession(model, Options{})
			if err == nil {
				s.Close()
				t.Fatal("NewSession succeeded")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			t.Log(err)
		})
	}
}

func TestOptionErrors(t *testing.T) {
	initORT(t)
	for name, c := range map[string]struct {
		opts Options
		want string
	}{
		"optimization": {Options{Optimization: "max"}, "none, basic, extended, all"},
		"threads":      {Options{Threads: -1}, "threads is -1"},
		"inter-op":     {Options{InterOpThreads: -2}, "inter-op threads is -2"},
		"provider":     {Options{Provider: "rocm"}, "cpu, cuda, tensorrt"},
		"optimized":    {Options{OptimizedModelPath: filepath.Join(t.TempDir(), "no", "such", "m.onnx")}, "does not exist"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := NewSession(addModel(t), c.opts)
			if err == nil {
				s.Close()
				t.Fatal("NewSession succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestOptionVariants(t *testing.T) {
	x := onnxio.NewTensor([]int64{2, 3}, seq(6, func(i int) float32 { return float32(i) }))
	want := onnxio.NewTensor([]int64{2, 3}, seq(6, func(i int) float32 { return 2 * float32(i) }))
	for _, opts := range []Options{
		{Optimization: "none", Threads: 1},
		{Optimization: "basic", Threads: 2},
		{Optimization: "Extended", InterOpThreads: 2},
		{Threads: 2, InterOpThreads: 2, NoSpinning: true},
		{Optimization: "all", Provider: "CPU", ProviderOptions: map[string]string{"ignored": "yes"}},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			s := newSession(t, addModel(t), opts)
			sameTensor(t, "z", run(t, s, map[string]*onnxio.Tensor{"x": x, "y": x})["z"], want)
		})
	}
}

func TestOptimizedModelPath(t *testing.T) {
	check := func(t *testing.T, path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("optimized model not written: %v", err)
		}
		var m onnxpb.ModelProto
		if err := proto.Unmarshal(b, &m); err != nil || m.GetGraph() == nil {
			t.Fatalf("optimized model does not parse: %v", err)
		}
		for _, n := range m.GetGraph().GetNode() {
			for _, o := range n.GetOutput() {
				if strings.HasPrefix(o, "onnxpipe_ort/") {
					t.Errorf("optimized model has the bridge's fetch node %s", o)
				}
			}
		}
		for _, o := range m.GetGraph().GetOutput() {
			if strings.HasPrefix(o.GetName(), "onnxpipe_ort/") {
				t.Errorf("optimized model has the bridge's output %s", o.GetName())
			}
		}
	}
	t.Run("float", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "opt.onnx")
		s := newSession(t, addModel(t), Options{OptimizedModelPath: path, Optimization: "basic"})
		check(t, path)
		one := onnxio.NewTensor([]int64{1, 3}, []float32{1, 2, 3})
		run(t, s, map[string]*onnxio.Tensor{"x": one, "y": one})
	})
	t.Run("float16 output", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "opt16.onnx")
		s := newSession(t, identityModel(t, onnxio.TypeFloat16, []any{"N"}), Options{OptimizedModelPath: path})
		check(t, path)
		x := onnxio.NewTensor([]int64{1}, []float16.Float16{float16.Fromfloat32(1)})
		sameTensor(t, "y", run(t, s, map[string]*onnxio.Tensor{"x": x})["y"], x)
	})
}

func TestConcurrentRun(t *testing.T) {
	s := newSession(t, addModel(t), Options{})
	const workers, iterations = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for it := 0; it < iterations; it++ {
				batch := 1 + (w+it)%4
				base := float32(w*1000 + it)
				x := seq(3*batch, func(i int) float32 { return base + float32(i) })
				y := seq(3*batch, func(i int) float32 { return float32(w) })
				out, err := s.Run(map[string]*onnxio.Tensor{
					"x": onnxio.NewTensor([]int64{int64(batch), 3}, x),
					"y": onnxio.NewTensor([]int64{int64(batch), 3}, y),
				})
				if err != nil {
					errs <- err
					return
				}
				z := out["z"]
				got := z.Data.([]float32)
				if !reflect.DeepEqual(z.Shape, []int64{int64(batch), 3}) || len(got) != 3*batch {
					errs <- fmt.Errorf("worker %d: shape %v", w, z.Shape)
					return
				}
				for i, v := range got {
					if v != x[i]+y[i] {
						errs <- fmt.Errorf("worker %d iteration %d: z[%d] = %v, want %v", w, it, i, v, x[i]+y[i])
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	initORT(t)
	s, err := NewSession(addModel(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	one := onnxio.NewTensor([]int64{1, 3}, []float32{1, 2, 3})
	if _, err := s.Run(map[string]*onnxio.Tensor{"x": one, "y": one}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Run after Close: %v", err)
	}
}

// TestNoValueLeak checks that Run destroys every onnxruntime value it creates, on
// success and on each kind of failure, and that resident memory stays flat over many
// runs with 4 MiB outputs (leaked onnxruntime buffers would add more than a GiB).
func TestNoValueLeak(t *testing.T) {
	s := newSession(t, addModel(t), Options{})
	good := onnxio.NewTensor([]int64{2, 3}, make([]float32, 6))
	s.Run(map[string]*onnxio.Tensor{"x": good, "y": good})
	s.Run(map[string]*onnxio.Tensor{"x": good, "y": onnxio.NewTensor([]int64{2, 3}, make([]int32, 6))})
	s.Run(map[string]*onnxio.Tensor{"x": good, "y": good}, "nope")
	// x reshaped to y's element count: onnxruntime fails at run time when they differ.
	reshape := graph(t, 17,
		[]*onnxpb.NodeProto{node("Reshape", []string{"x", "shape"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, "N"), vi("shape", onnxio.TypeInt64, 1)},
		[]*onnxpb.ValueInfoProto{vi("y", onnxio.TypeFloat, "M")})
	r := newSession(t, reshape, Options{})
	if _, err := r.Run(map[string]*onnxio.Tensor{
		"x":     onnxio.NewTensor([]int64{4}, make([]float32, 4)),
		"shape": onnxio.NewTensor([]int64{1}, []int64{5}),
	}); err == nil {
		t.Error("Reshape of 4 elements to 5 succeeded")
	} else {
		t.Log(err)
	}
	scalar := newSession(t, identityModel(t, onnxio.TypeFloat, []any{}), Options{})
	run(t, scalar, map[string]*onnxio.Tensor{"x": {Type: onnxio.TypeFloat, Data: []float32{1}}})
	half := newSession(t, identityModel(t, onnxio.TypeFloat16, []any{"N"}), Options{})
	run(t, half, map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{1}, []float16.Float16{1})})
	if n := liveValues.Load(); n != 0 {
		t.Errorf("%d onnxruntime values left alive", n)
	}

	if runtime.GOOS != "linux" || testing.Short() {
		return // the memory check reads /proc/self/statm and takes a few seconds
	}
	f := newSession(t, identityModel(t, onnxio.TypeFloat, []any{"N"}), Options{})
	h := newSession(t, identityModel(t, onnxio.TypeFloat16, []any{"N"}), Options{})
	x := onnxio.NewTensor([]int64{1 << 20}, make([]float32, 1<<20))
	x16 := onnxio.NewTensor([]int64{1 << 21}, make([]float16.Float16, 1<<21))
	runs := func(n int) {
		for i := 0; i < n; i++ {
			run(t, f, map[string]*onnxio.Tensor{"x": x})
			run(t, h, map[string]*onnxio.Tensor{"x": x16})
		}
	}
	runs(20)
	before := rss(t)
	runs(200)
	if grown := rss(t) - before; grown > 256<<20 {
		t.Errorf("resident memory grew by %d MiB over 200 runs", grown>>20)
	}
}

func rss(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		t.Fatal(err)
	}
	return resident * int64(os.Getpagesize())
}

func TestScalarInputsOfUnsupportedKinds(t *testing.T) {
	s := newSession(t, identityModel(t, onnxio.TypeFloat16, []any{}), Options{})
	_, err := s.Run(map[string]*onnxio.Tensor{"x": onnxio.NewTensor([]int64{}, []float16.Float16{1})})
	if err == nil || !strings.Contains(err.Error(), "scalar float16") {
		t.Errorf("scalar float16 input: %v", err)
	}
}

func TestFetchNamesDoNotClash(t *testing.T) {
	// The model already uses the names the bridge would give its Cast and Reshape
	// outputs for y; the bridge must pick others.
	model := graph(t, 17,
		[]*onnxpb.NodeProto{
			node("Identity", []string{"x"}, []string{"onnxpipe_ort/y/Cast"}),
			node("Identity", []string{"onnxpipe_ort/y/Cast"}, []string{"y"}),
			node("ReduceSum", []string{"onnxpipe_ort/y/Cast"}, []string{"onnxpipe_ort/y/Shape"}, attrInt("keepdims", 0)),
		},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat16, "N")},
		[]*onnxpb.ValueInfoProto{vi("y", onnxio.TypeFloat16, "N"), vi("onnxpipe_ort/y/Shape", onnxio.TypeFloat16)})
	s := newSession(t, model, Options{})
	x := onnxio.NewTensor([]int64{2}, []float16.Float16{float16.Fromfloat32(1.5), float16.Fromfloat32(2)})
	out := run(t, s, map[string]*onnxio.Tensor{"x": x})
	sameTensor(t, "y", out["y"], x)
	sameTensor(t, "sum", out["onnxpipe_ort/y/Shape"], onnxio.NewTensor([]int64{}, []float16.Float16{float16.Fromfloat32(3.5)}))
}

func TestNonTensorOutputsAreLeftOut(t *testing.T) {
	// s = SequenceConstruct(x), y = Identity(x).
	seqOut := &onnxpb.ValueInfoProto{Name: proto.String("s"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{
		SequenceType: &onnxpb.TypeProto_Sequence{ElemType: vi("", onnxio.TypeFloat, 2).GetType()}}}}
	model := graph(t, 17,
		[]*onnxpb.NodeProto{node("SequenceConstruct", []string{"x"}, []string{"s"}), node("Identity", []string{"x"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, 2)},
		[]*onnxpb.ValueInfoProto{seqOut, vi("y", onnxio.TypeFloat, 2)})
	s := newSession(t, model, Options{})
	if got := s.Outputs(); len(got) != 1 || got[0].Name != "y" {
		t.Errorf("Outputs() = %+v, want only y", got)
	}
	x := onnxio.NewTensor([]int64{2}, []float32{1, 2})
	out := run(t, s, map[string]*onnxio.Tensor{"x": x})
	sameTensor(t, "y", out["y"], x)
	if _, err := s.Run(map[string]*onnxio.Tensor{"x": x}, "s"); err == nil || !strings.Contains(err.Error(), `output "s" cannot be returned`) {
		t.Errorf("asking for the sequence: %v", err)
	}
}

func TestUnsupportedInputType(t *testing.T) {
	initORT(t)
	model := graph(t, 21,
		[]*onnxpb.NodeProto{node("Identity", []string{"x"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat8E4M3FN, 2)},
		[]*onnxpb.ValueInfoProto{vi("y", onnxio.TypeFloat8E4M3FN, 2)})
	s, err := NewSession(model, Options{})
	if err == nil {
		s.Close()
		t.Fatal("NewSession accepted a float8 input")
	}
	if !strings.Contains(err.Error(), `input "x" has element type float8e4m3fn`) {
		t.Errorf("error %v", err)
	}
}

func TestScanModel(t *testing.T) {
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String("com.microsoft"), Version: proto.Int64(1)}, {Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Node: []*onnxpb.NodeProto{node("Add", []string{"x", "w"}, []string{"y"})},
			Initializer: []*onnxpb.TensorProto{{Name: proto.String("w"), Dims: []int64{2},
				DataType: proto.Int32(int32(onnxio.TypeFloat)), RawData: make([]byte, 8)}},
			Input:  []*onnxpb.ValueInfoProto{vi("x", onnxio.TypeFloat, "B", 2)},
			Output: []*onnxpb.ValueInfoProto{vi("y", onnxio.TypeFloat, "B", 2)},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := scanModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if mi.opset != 13 || !mi.hasGraph || len(mi.outputs) != 1 {
		t.Errorf("opset %d, graph %v, outputs %d", mi.opset, mi.hasGraph, len(mi.outputs))
	}
	for _, n := range []string{"x", "w", "y"} {
		if !mi.names[n] {
			t.Errorf("name %q not seen", n)
		}
	}
	if got := mi.values["x"].GetType().GetTensorType().GetShape().GetDim()[0].GetDimParam(); got != "B" {
		t.Errorf("x's first dim is %q, want B", got)
	}
	if _, err := scanModel([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("scanModel accepted garbage")
	}
}

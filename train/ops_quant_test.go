package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// qTensor makes an integer onnxio tensor of type dt from vals.
func qTensor(dt onnxio.DataType, shape []int, vals []int64) *onnxio.Tensor {
	s := i64s(shape)
	switch dt {
	case onnxio.TypeInt8:
		return onnxio.NewTensor(s, convertSlice(vals, func(v int64) int8 { return int8(v) }))
	case onnxio.TypeUint8:
		return onnxio.NewTensor(s, convertSlice(vals, func(v int64) uint8 { return uint8(v) }))
	case onnxio.TypeInt16:
		return onnxio.NewTensor(s, convertSlice(vals, func(v int64) int16 { return int16(v) }))
	case onnxio.TypeUint16:
		return onnxio.NewTensor(s, convertSlice(vals, func(v int64) uint16 { return uint16(v) }))
	case onnxio.TypeInt32:
		return onnxio.NewTensor(s, convertSlice(vals, func(v int64) int32 { return int32(v) }))
	case onnxio.TypeInt4:
		return &onnxio.Tensor{Type: dt, Shape: s, Data: convertSlice(vals, func(v int64) int8 { return int8(v) })}
	case onnxio.TypeUint4:
		return &onnxio.Tensor{Type: dt, Shape: s, Data: convertSlice(vals, func(v int64) uint8 { return uint8(v) })}
	}
	panic("qTensor: " + dt.String())
}

// qLayoutCase is how the scale lines up with x [2, 3, 4].
type qLayoutCase struct {
	name  string
	shape []int // the scale's shape
	axis  int   // -1 with no axis attribute
	block int
}

var qLayouts = []qLayoutCase{
	{name: "scalar", shape: []int{}},
	{name: "[1]", shape: []int{1}},
	{name: "axis1", shape: []int{3}, axis: 1},
	{name: "axis-1", shape: []int{4}, axis: -1},
	{name: "axis0", shape: []int{2}, axis: 0},
	{name: "blocked", shape: []int{2, 3, 2}, axis: 2, block: 3},
}

// quantModel builds x [2,3,4] → QuantizeLinear(s, zp) → q, with outputs
// DequantizeLinear(q, 1, zp) (the integers minus the zero point, exactly) and
// DequantizeLinear(q, s, zp).
func quantModel(t *testing.T, opset int64, dt onnxio.DataType, lc qLayoutCase, scales []float32, zps []int64, x []float32) (*onnxio.Model, map[string]*Tensor) {
	t.Helper()
	b := onnxio.NewBuilder(opset)
	b.Input("x", onnxio.TypeFloat, []int64{2, 3, 4})
	s := b.Initializer("s", onnxio.NewTensor(i64s(lc.shape), scales))
	ones := make([]float32, len(scales))
	for i := range ones {
		ones[i] = 1
	}
	one := b.Initializer("one", onnxio.NewTensor(i64s(lc.shape), ones))
	zp := b.Initializer("zp", qTensor(dt, lc.shape, zps))
	var at []*onnxpb.AttributeProto
	if lc.axis != 0 || lc.block != 0 || len(lc.shape) == 1 && lc.shape[0] > 1 {
		at = append(at, onnxio.AttrInt("axis", int64(lc.axis)))
	}
	if lc.block != 0 {
		at = append(at, onnxio.AttrInt("block_size", int64(lc.block)))
	}
	q := b.Op("QuantizeLinear", []string{"x", s, zp}, at...)
	ints := b.Op("DequantizeLinear", []string{q, one, zp}, at...)
	y := b.Op("DequantizeLinear", []string{q, s, zp}, at...)
	b.Output(ints, onnxio.TypeFloat, nil)
	b.Output(y, onnxio.TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if opset >= 21 {
		m.Proto.IrVersion = ptrInt64(10)
	}
	return m, map[string]*Tensor{"x": NewTensor([]int{2, 3, 4}, x)}
}

func ptrInt64(v int64) *int64 { return &v }

// TestQuantizeLinearORT compares QuantizeLinear → DequantizeLinear with onnxruntime,
// bit for bit, for every integer type, per tensor, per axis and blocked, on values that
// saturate and on exact ties (x/s = k + 0.5 with power-of-two scales, rounded to even).
func TestQuantizeLinearORT(t *testing.T) {
	types := []struct {
		dt    onnxio.DataType
		opset int64
	}{
		{onnxio.TypeUint8, 10}, {onnxio.TypeInt8, 13}, {onnxio.TypeUint8, 21}, {onnxio.TypeInt8, 21},
		{onnxio.TypeUint16, 21}, {onnxio.TypeInt16, 21}, {onnxio.TypeUint4, 21}, {onnxio.TypeInt4, 21},
	}
	r := rand.New(rand.NewPCG(3, 4))
	checked := 0
	for _, tc := range types {
		qt, _ := qtypeOf(tc.dt)
		for _, lc := range qLayouts {
			if tc.opset < 13 && numel(lc.shape) > 1 || tc.opset < 21 && lc.block > 0 {
				continue
			}
			for _, data := range []string{"ties", "random"} {
				name := fmt.Sprintf("%s/opset%d/%s/%s", tc.dt, tc.opset, lc.name, data)
				t.Run(name, func(t *testing.T) {
					np := numel(lc.shape)
					scales := make([]float32, np)
					zps := make([]int64, np)
					span := float64(qt.max - qt.min)
					for i := range scales {
						zps[i] = qt.min + int64(r.IntN(int(min(span, 40))+1))
						if data == "ties" {
							scales[i] = float32(math.Ldexp(1, -r.IntN(4)))
						} else {
							scales[i] = float32(0.01 + r.Float64()*0.2)
						}
					}
					x := make([]float32, 24)
					for i := range x {
						if data == "ties" {
							// k + 0.5 around the zero point, in range and beyond it.
							k := float64(r.IntN(int(min(span, 60))+6) - int(min(span, 60))/2 - 3)
							x[i] = float32((k + 0.5) * math.Ldexp(1, -r.IntN(4)))
						} else {
							x[i] = float32(r.NormFloat64() * 0.3 * span * 0.1)
							if i%5 == 0 {
								x[i] = float32(1e4 * r.NormFloat64()) // saturates
							}
						}
					}
					m, in := quantModel(t, tc.opset, tc.dt, lc, scales, zps, x)
					g, err := Compile(m, CompileOptions{})
					if err != nil {
						t.Fatal(err)
					}
					tape, err := g.Forward(in, false)
					if err != nil {
						t.Fatal(err)
					}
					ref := runORT(t, m, in)
					for _, out := range g.Outputs() {
						got, want := tape.Output(out).Data, ref[out].Data
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s[%d] (x=%g): engine %g, onnxruntime %g", out, i, x[i], got[i], want[i])
							}
						}
					}
					// The integers saturate at the type's range.
					ints := tape.Output(g.Outputs()[0])
					sat := 0
					for i, v := range ints.Data {
						zp := float32(zps[0])
						if np > 1 {
							continue
						}
						if v+zp < float32(qt.min) || v+zp > float32(qt.max) {
							t.Fatalf("element %d: %g + %g outside [%d, %d]", i, v, zp, qt.min, qt.max)
						}
						if v+zp == float32(qt.min) || v+zp == float32(qt.max) {
							sat++
						}
					}
					if data == "random" && np == 1 && sat == 0 {
						t.Errorf("no element saturated")
					}
					checked++
				})
			}
		}
	}
	if checked < 60 {
		t.Errorf("only %d cases ran", checked)
	}
}

// TestDequantizeLinearORT compares DequantizeLinear of integer initializers (every type,
// int32 biases included) with onnxruntime, bit for bit.
func TestDequantizeLinearORT(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []onnxio.DataType{onnxio.TypeUint8, onnxio.TypeInt8, onnxio.TypeUint16, onnxio.TypeInt16,
		onnxio.TypeUint4, onnxio.TypeInt4, onnxio.TypeInt32} {
		qt, _ := qtypeOf(dt)
		for _, lc := range qLayouts {
			t.Run(fmt.Sprintf("%s/%s", dt, lc.name), func(t *testing.T) {
				np := numel(lc.shape)
				vals := make([]int64, 24)
				for i := range vals {
					switch {
					case i == 0:
						vals[i] = qt.min
					case i == 1:
						vals[i] = qt.max
					case dt == onnxio.TypeInt32:
						vals[i] = r.Int64N(1<<32) - 1<<31
					default:
						vals[i] = qt.min + r.Int64N(qt.max-qt.min+1)
					}
				}
				scales := make([]float32, np)
				zps := make([]int64, np)
				for i := range scales {
					scales[i] = float32(1e-3 + r.Float64()*0.1)
					if dt != onnxio.TypeInt32 {
						zps[i] = qt.min + r.Int64N(qt.max-qt.min+1)
					}
				}
				b := onnxio.NewBuilder(21)
				w := b.Initializer("w", qTensor(dt, []int{2, 3, 4}, vals))
				s := b.Initializer("s", onnxio.NewTensor(i64s(lc.shape), scales))
				zp := b.Initializer("zp", qTensor(dt, lc.shape, zps))
				var at []*onnxpb.AttributeProto
				if np > 1 || lc.block > 0 {
					at = append(at, onnxio.AttrInt("axis", int64(lc.axis)))
				}
				if lc.block != 0 {
					at = append(at, onnxio.AttrInt("block_size", int64(lc.block)))
				}
				y := b.Op("DequantizeLinear", []string{w, s, zp}, at...)
				b.Output(y, onnxio.TypeFloat, nil)
				m, err := b.Model()
				if err != nil {
					t.Fatal(err)
				}
				m.Proto.IrVersion = ptrInt64(10)
				if e := compareORT(t, m, nil); e != 0 {
					t.Errorf("relative error %g, want 0", e)
				}
			})
		}
	}
}

// steModel builds w (a trainable initializer) → QuantizeLinear → DequantizeLinear → y.
func steModel(t *testing.T, dt onnxio.DataType, w []float32, wshape []int, scales []float32, zps []int64, axis int) *onnxio.Model {
	t.Helper()
	b := onnxio.NewBuilder(21)
	b.Input("x", onnxio.TypeFloat, i64s(wshape))
	wn := b.Initializer("w", onnxio.NewTensor(i64s(wshape), w))
	sshape := []int{}
	if len(scales) > 1 {
		sshape = []int{len(scales)}
	}
	s := b.Initializer("s", onnxio.NewTensor(i64s(sshape), scales))
	zp := b.Initializer("zp", qTensor(dt, sshape, zps))
	at := []*onnxpb.AttributeProto{onnxio.AttrInt("axis", int64(axis))}
	q := b.Op("QuantizeLinear", []string{wn, s, zp}, at...)
	dq := b.Op("DequantizeLinear", []string{q, s, zp}, at...)
	xq := b.Op("QuantizeLinear", []string{"x", s, zp}, at...)
	xdq := b.Op("DequantizeLinear", []string{xq, s, zp}, at...)
	y := b.Op("Add", []string{dq, xdq})
	b.Output(y, onnxio.TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	m.Proto.IrVersion = ptrInt64(10)
	return m
}

// TestQuantSTE checks the straight-through estimator: the gradient of a fake-quantized
// weight (and input) is the output's gradient where round(x/s)+zp is inside the type's
// range and zero outside, per tensor and per channel, for int8, uint8, int4 and uint4.
func TestQuantSTE(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dt := range []onnxio.DataType{onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt4, onnxio.TypeUint4} {
		for _, perChannel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/perchannel=%v", dt, perChannel), func(t *testing.T) {
				qt, _ := qtypeOf(dt)
				shape := []int{3, 5}
				np := 1
				if perChannel {
					np = 3
				}
				scales := make([]float32, np)
				zps := make([]int64, np)
				for i := range scales {
					scales[i] = float32(0.05 + 0.1*r.Float64())
					zps[i] = (qt.min + qt.max + 1) / 2
				}
				w := make([]float32, 15)
				for i := range w {
					// ±1.5 ranges: half the int4 values saturate, some int8 ones.
					w[i] = float32(r.NormFloat64() * float64(qt.max-qt.min) * 0.05 * 0.6)
					if i%4 == 0 {
						w[i] *= 40
					}
				}
				m := steModel(t, dt, w, shape, scales, zps, 0)
				g, err := Compile(m, CompileOptions{InputGrads: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(g.Params()) != 1 || g.Params()[0].Name != "w" {
					t.Fatalf("params %v, want only w (scales are constants without LearnScales)", paramNames(g))
				}
				x := NewTensor(shape, slices.Clone(w))
				tape, err := g.Forward(map[string]*Tensor{"x": x}, true)
				if err != nil {
					t.Fatal(err)
				}
				seed := NewTensor(shape, genData(r, normal, 15))
				if err := tape.Backward(map[string]*Tensor{g.Outputs()[0]: seed}); err != nil {
					t.Fatal(err)
				}
				gw, gx := g.Param("w").Grad.Data, tape.Grad("x").Data
				inside, outside := 0, 0
				for i, v := range w {
					c := 0
					if perChannel {
						c = i / 5
					}
					q := math.RoundToEven(float64(v/scales[c])) + float64(zps[c])
					want := float64(seed.Data[i])
					if q < float64(qt.min) || q > float64(qt.max) {
						want = 0
						outside++
					} else {
						inside++
					}
					for name, got := range map[string]float32{"w": gw[i], "x": gx[i]} {
						if math.Abs(float64(got)-want) > 1e-6*math.Abs(want) {
							t.Errorf("grad %s[%d] (%g, q=%g): %g, want %g", name, i, v, q, got, want)
						}
					}
				}
				if inside == 0 || outside == 0 {
					t.Fatalf("%d elements inside the range, %d outside: the test needs both", inside, outside)
				}
			})
		}
	}
}

func paramNames(g *Graph) []string {
	var out []string
	for _, p := range g.Params() {
		out = append(out, p.Name)
	}
	return out
}

// TestQuantLSQ checks learnable scales: a QuantizeLinear → DequantizeLinear pair sharing
// its scale gives LSQ's gradient, Σ g·(round(x/s) − x/s) inside the range and
// Σ g·(qmin or qmax − zp) outside, times 1/sqrt(N·Qp), per tensor and per channel.
func TestQuantLSQ(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, dt := range []onnxio.DataType{onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt4} {
		for _, perChannel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/perchannel=%v", dt, perChannel), func(t *testing.T) {
				qt, _ := qtypeOf(dt)
				np := 1
				sshape := []int{}
				if perChannel {
					np, sshape = 4, []int{4}
				}
				b := onnxio.NewBuilder(21)
				b.Input("x", onnxio.TypeFloat, []int64{6, 4})
				scales := make([]float32, np)
				zps := make([]int64, np)
				for i := range scales {
					scales[i] = float32(0.02 + 0.05*r.Float64())
					if dt == onnxio.TypeUint8 {
						zps[i] = 100 + int64(i)
					}
				}
				s := b.Initializer("s", onnxio.NewTensor(i64s(sshape), scales))
				zp := b.Initializer("zp", qTensor(dt, sshape, zps))
				at := []*onnxpb.AttributeProto{onnxio.AttrInt("axis", 1)}
				q := b.Op("QuantizeLinear", []string{"x", s, zp}, at...)
				y := b.Op("DequantizeLinear", []string{q, s, zp}, at...)
				b.Output(y, onnxio.TypeFloat, nil)
				m, err := b.Model()
				if err != nil {
					t.Fatal(err)
				}
				m.Proto.IrVersion = ptrInt64(10)
				g, err := Compile(m, CompileOptions{LearnScales: func(name string) bool { return name == "s" }})
				if err != nil {
					t.Fatal(err)
				}
				if p := g.Param("s"); p == nil {
					t.Fatalf("s is not trainable; params %v", paramNames(g))
				}
				x := NewTensor([]int{6, 4}, genData(r, normal, 24))
				for i := range x.Data {
					x.Data[i] *= float32(qt.max) * 0.02 // a few saturate
				}
				tape, err := g.Forward(map[string]*Tensor{"x": x}, true)
				if err != nil {
					t.Fatal(err)
				}
				seed := NewTensor([]int{6, 4}, genData(r, normal, 24))
				if err := tape.Backward(map[string]*Tensor{y: seed}); err != nil {
					t.Fatal(err)
				}
				want := make([]float64, np)
				sat := 0
				for i, v := range x.Data {
					c := 0
					if perChannel {
						c = i % 4
					}
					sd := float64(scales[c])
					qv := math.RoundToEven(float64(v/scales[c])) + float64(zps[c])
					var d float64
					switch {
					case qv < float64(qt.min):
						d, sat = float64(qt.min-zps[c]), sat+1
					case qv > float64(qt.max):
						d, sat = float64(qt.max-zps[c]), sat+1
					default:
						d = (qv - float64(zps[c])) - float64(v)/sd
					}
					want[c] += float64(seed.Data[i]) * d
				}
				gs := 1 / math.Sqrt(float64(24/np)*float64(qt.max))
				got := g.Param("s").Grad.Data
				for c := range want {
					w := want[c] * gs
					if math.Abs(float64(got[c])-w) > 1e-4*math.Max(math.Abs(w), 1e-3) {
						t.Errorf("scale %d: gradient %g, LSQ %g", c, got[c], w)
					}
				}
				if sat == 0 {
					t.Errorf("no element saturated")
				}
			})
		}
	}
}

// TestDequantizeScaleFiniteDiff checks the scale gradient of DequantizeLinear of integer
// weights (smooth in the scale) and of a saturated QuantizeLinear → DequantizeLinear
// pair against central finite differences, after undoing LSQ's gradient scale.
func TestDequantizeScaleFiniteDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		name      string
		saturated bool
	}{{"int8 weights", false}, {"saturated pair", true}} {
		t.Run(c.name, func(t *testing.T) {
			b := onnxio.NewBuilder(13)
			b.Input("x", onnxio.TypeFloat, []int64{3, 8})
			scales := []float32{0.03, 0.07, 0.05}
			s := b.Initializer("s", onnxio.NewTensor([]int64{3}, scales))
			zp := b.Initializer("zp", qTensor(onnxio.TypeInt8, []int{3}, []int64{0, 3, -2}))
			at := onnxio.AttrInt("axis", 0)
			var src string
			if c.saturated {
				src = b.Op("QuantizeLinear", []string{"x", s, zp}, at)
			} else {
				vals := make([]int64, 24)
				for i := range vals {
					vals[i] = r.Int64N(256) - 128
				}
				src = b.Initializer("w", qTensor(onnxio.TypeInt8, []int{3, 8}, vals))
			}
			y := b.Op("DequantizeLinear", []string{src, s, zp}, at)
			out := b.Op("Mul", []string{y, "x"})
			b.Output(out, onnxio.TypeFloat, nil)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			g, err := Compile(m, CompileOptions{LearnScales: func(string) bool { return true }})
			if err != nil {
				t.Fatal(err)
			}
			x := NewTensor([]int{3, 8}, genData(r, awayZero, 24))
			if c.saturated {
				for i := range x.Data {
					x.Data[i] *= 100
				}
			}
			in := map[string]*Tensor{"x": x}
			seed := NewTensor([]int{3, 8}, genData(r, normal, 24))
			tape, err := g.Forward(in, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := tape.Backward(map[string]*Tensor{out: seed}); err != nil {
				t.Fatal(err)
			}
			p := g.Param("s")
			loss := func() float64 {
				tp, err := g.Forward(in, false)
				if err != nil {
					t.Fatal(err)
				}
				var l float64
				for i, v := range tp.Output(out).Data {
					l += float64(v) * float64(seed.Data[i])
				}
				return l
			}
			gscale := 1 / math.Sqrt(8*127)
			for k := range scales {
				orig := p.Value.Data[k]
				const eps = 1e-4
				p.Value.Data[k] = orig + eps
				lp := loss()
				p.Value.Data[k] = orig - eps
				lm := loss()
				p.Value.Data[k] = orig
				h := float64(orig+eps) - float64(orig-eps)
				fd := (lp - lm) / h
				an := float64(p.Grad.Data[k]) / gscale
				if math.Abs(fd-an) > 2e-3*math.Max(math.Abs(fd), 1) {
					t.Errorf("scale %d: gradient %g (unscaled), finite difference %g", k, an, fd)
				}
			}
		})
	}
}

// TestQuantCompileErrors checks the forms the engine refuses.
func TestQuantCompileErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		opset int64
		dt    onnxio.DataType
		want  string
	}{
		{"int4 before opset 21", 13, onnxio.TypeInt4, "needs opset 21"},
		{"float8", 21, onnxio.TypeFloat8E4M3FN, "not supported"},
		{"int32 output", 21, onnxio.TypeInt32, "not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := onnxio.NewBuilder(c.opset)
			b.Input("x", onnxio.TypeFloat, []int64{2})
			s := b.Initializer("s", onnxio.NewTensor([]int64{}, []float32{1}))
			zp := b.Graph()
			_ = zp
			tp, err := onnxio.EncodeTensor("zp", qTensorOrZero(c.dt))
			if err != nil {
				t.Fatal(err)
			}
			b.Graph().Initializer = append(b.Graph().Initializer, tp)
			q := b.Op("QuantizeLinear", []string{"x", s, "zp"})
			b.Output(q, c.dt, nil)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			_, err = Compile(m, CompileOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func qTensorOrZero(dt onnxio.DataType) *onnxio.Tensor {
	if dt == onnxio.TypeFloat8E4M3FN {
		return &onnxio.Tensor{Type: dt, Shape: []int64{}, Data: []uint8{0}}
	}
	return qTensor(dt, []int{}, []int64{0})
}

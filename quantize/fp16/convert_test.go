package fp16

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// graphBuilder builds small test models with named nodes (output "<name>_out").
type graphBuilder struct {
	b     *onnxio.Builder
	g     *onnxpb.GraphProto
	feeds map[string]*onnxio.Tensor
	rng   *rand.Rand
}

func newGraph(opset int64) *graphBuilder {
	b := onnxio.NewBuilder(opset)
	return &graphBuilder{b: b, g: b.Graph(), feeds: map[string]*onnxio.Tensor{}, rng: rand.New(rand.NewPCG(3, 4))}
}

// input adds a float32 graph input with normal(0,1) values (rounded to float16).
func (gb *graphBuilder) input(name string, shape ...int64) string {
	gb.b.Input(name, onnxio.TypeFloat, shape)
	gb.feeds[name] = onnxio.NewTensor(shape, normalData(gb.rng, numel(shape)))
	return name
}

func (gb *graphBuilder) init(name string, shape []int64, v []float32) string {
	return gb.b.Initializer(name, onnxio.NewTensor(shape, v))
}

func (gb *graphBuilder) node(name, op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := name + "_out"
	gb.g.Node = append(gb.g.Node, &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

func (gb *graphBuilder) output(name string) { gb.b.Output(name, onnxio.TypeFloat, nil) }

func (gb *graphBuilder) model(t testing.TB) *onnxio.Model {
	t.Helper()
	m, err := gb.b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runBoth runs the float32 model and the converted one (float16 feeds when the
// converted model's inputs are float16) and returns the worst SQNR.
func runBoth(t *testing.T, orig, conv *onnxio.Model, feeds map[string]*onnxio.Tensor) float64 {
	t.Helper()
	initORT(t)
	ref, err := runModel(orig, feeds, ort.Options{})
	if err != nil {
		t.Fatalf("float32 model: %v", err)
	}
	in := map[string]*onnxio.Tensor{}
	for _, vi := range conv.Graph().GetInput() {
		if f, ok := feeds[vi.GetName()]; ok {
			in[vi.GetName()] = toType(f, elemType(vi))
		}
	}
	got, err := runModel(conv, in, ort.Options{})
	if err != nil {
		t.Fatalf("converted model: %v", err)
	}
	for name, g := range got {
		if g.Type != onnxio.TypeFloat && g.Type.IsFloat() {
			f, _ := g.Float32s()
			got[name] = onnxio.NewTensor(g.Shape, f)
		}
	}
	s, err := compareOutputs(ref, got)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t testing.TB, tp *onnxpb.TensorProto) []float32 {
	t.Helper()
	v, err := onnxio.TensorFloat32s(tp)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func initializer(g *onnxpb.GraphProto, name string) *onnxpb.TensorProto {
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

func nodeNamed(g *onnxpb.GraphProto, name string) *onnxpb.NodeProto {
	for _, n := range g.GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}

func keptNames(r *Report) []string {
	var s []string
	for _, k := range r.Kept {
		s = append(s, k.Name)
	}
	return s
}

func TestClampAndFlush(t *testing.T) {
	const maxF16 = 65504
	minF16 := float32(float16MinPositive)
	inf := float32(math.Inf(1))
	vals := []float32{70000, -1e6, 65519, 65504, 1e-9, -1e-10, 3e-8, minF16, 0, inf, -inf, float32(math.NaN()), 1.5, -2.25}
	tests := []struct {
		name             string
		opts             Options
		clamped, flushed int64
		want             []float32 // NaN compares as NaN
	}{
		{
			name: "float16 defaults", opts: Options{}, clamped: 3, flushed: 3,
			want: []float32{maxF16, -maxF16, maxF16, maxF16, minF16, -minF16, minF16, minF16, 0, inf, -inf, float32(math.NaN()), 1.5, -2.25},
		},
		{
			name: "float16 narrower range", opts: Options{MaxFinite: 1e4, MinPositive: 1e-7}, clamped: 4, flushed: 4,
			want: []float32{float16.Fromfloat32(1e4).Float32(), -float16.Fromfloat32(1e4).Float32(), float16.Fromfloat32(1e4).Float32(), float16.Fromfloat32(1e4).Float32(),
				float16.Fromfloat32(1e-7).Float32(), -float16.Fromfloat32(1e-7).Float32(), float16.Fromfloat32(1e-7).Float32(), float16.Fromfloat32(1e-7).Float32(), 0, inf, -inf, float32(math.NaN()), 1.5, -2.25},
		},
		{
			// Add has no bfloat16 CPU kernel: it stays float32 and reads the bfloat16
			// constants through Casts.
			name: "bfloat16", opts: Options{Type: onnxio.TypeBFloat16, ForceInitializers: true}, clamped: 0, flushed: 0,
			want: []float32{onnxio.BFloat16FromFloat32(70000).Float32(), -onnxio.BFloat16FromFloat32(1e6).Float32(), onnxio.BFloat16FromFloat32(65519).Float32(), 65536,
				onnxio.BFloat16FromFloat32(1e-9).Float32(), onnxio.BFloat16FromFloat32(-1e-10).Float32(), onnxio.BFloat16FromFloat32(3e-8).Float32(), onnxio.BFloat16FromFloat32(minF16).Float32(), 0, inf, -inf, float32(math.NaN()), 1.5, -2.25},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gb := newGraph(17)
			x := gb.input("x", int64(len(vals)))
			w := gb.init("w", []int64{int64(len(vals))}, vals)
			// A Constant with value_floats and a ConstantOfShape value count too.
			k := gb.node("k", "Constant", nil, onnxio.AttrFloats("value_floats", 1e5, 1e-12))
			cv, _ := onnxio.EncodeTensor("v", onnxio.NewTensor([]int64{1}, []float32{-7e4}))
			shape := gb.b.Initializer("shape", onnxio.NewTensor([]int64{1}, []int64{2}))
			cs := gb.node("cs", "ConstantOfShape", []string{shape}, onnxio.AttrTensor("value", cv))
			gb.output(gb.node("add", "Add", []string{x, w}))
			gb.output(gb.node("kc", "Add", []string{k, cs}))
			orig := gb.model(t)
			m := orig.Clone()
			rep, err := Convert(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, m)
			extraC, extraF := int64(2), int64(1) // 1e5 and -7e4 clamped, 1e-12 flushed
			if tc.opts.Type == onnxio.TypeBFloat16 {
				extraC, extraF = 0, 0
			}
			if rep.Clamped != tc.clamped+extraC || rep.Flushed != tc.flushed+extraF {
				t.Errorf("clamped %d flushed %d, want %d and %d", rep.Clamped, rep.Flushed, tc.clamped+extraC, tc.flushed+extraF)
			}
			got := decode(t, initializer(m.Graph(), "w"))
			for i := range vals {
				if !(got[i] == tc.want[i] || math.IsNaN(float64(got[i])) && math.IsNaN(float64(tc.want[i]))) {
					t.Errorf("value %g became %g, want %g", vals[i], got[i], tc.want[i])
				}
			}
			if rep.InitializersConverted != 1 || rep.ConstantsConverted != 2 {
				t.Errorf("converted %d initializers and %d constants, want 1 and 2", rep.InitializersConverted, rep.ConstantsConverted)
			}
			kt, _ := onnxio.ConstantNodeTensor(nodeNamed(m.Graph(), "k"))
			if onnxio.DataType(kt.GetDataType()) != rep.Type {
				t.Errorf("Constant value_floats became %s, want %s", onnxio.DataType(kt.GetDataType()), rep.Type)
			}
			runBoth(t, orig, m, gb.feeds) // runs; the clamped values differ on purpose
		})
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Type: onnxio.TypeDouble}, "target type"},
		{Options{MaxFinite: 70000}, "MaxFinite"},
		{Options{MinPositive: 1e-9}, "MinPositive"},
		{Options{Type: onnxio.TypeBFloat16, MaxFinite: 1e4, MinPositive: 1e5}, "MinPositive"},
		{Options{Target: "tpu"}, "unknown target"},
	} {
		gb := newGraph(17)
		gb.output(gb.node("r", "Relu", []string{gb.input("x", 2)}))
		if _, err := Convert(gb.model(t), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.opts, err, tc.want)
		}
	}
}

func TestDefaultBlockOps(t *testing.T) {
	cpu, err := DefaultBlockOps("cpu")
	if err != nil || !slices.Equal(cpu, cpuBlockOpsFloat16) {
		t.Errorf("cpu: %v %v", cpu, err)
	}
	cpu[0] = "changed" // a copy
	if again, _ := DefaultBlockOps(""); !slices.Equal(again, cpuBlockOpsFloat16) {
		t.Error("DefaultBlockOps returned the package's slice")
	}
	bf, _ := DefaultBlockOpsFor("cpu", onnxio.TypeBFloat16)
	if !slices.Equal(bf, cpuBlockOpsBFloat16) {
		t.Errorf("cpu bfloat16: %v", bf)
	}
	cuda, err := DefaultBlockOps("cuda")
	if err != nil || !slices.Contains(cuda, "Resize") || !slices.Contains(cuda, "TopK") {
		t.Errorf("cuda: %v %v", cuda, err)
	}
	if _, err := DefaultBlockOps("rocm"); err == nil {
		t.Error("unknown target accepted")
	}
}

// TestBlockedOps converts a model of every op in the default cpu block lists: the op
// must stay float32 with Casts around it (its float inputs float32, its float outputs
// cast to the target type when the graph outputs are), and onnxruntime must run it.
func TestBlockedOps(t *testing.T) {
	initORT(t)
	cases := map[string]opCase{}
	for _, c := range opCases {
		cases[c.op] = c
	}
	for _, dt := range []onnxio.DataType{onnxio.TypeFloat16, onnxio.TypeBFloat16} {
		list, _ := DefaultBlockOpsFor("cpu", dt)
		for _, op := range list {
			c, ok := cases[op]
			if !ok {
				t.Errorf("%s: no op case for blocked op %s", dt, op)
				continue
			}
			for _, v := range c.versions() {
				for _, keepIO := range []bool{true, false} {
					orig, feeds, err := buildOpModel(c, v)
					if err != nil {
						t.Fatal(err)
					}
					if !keepIO && slices.ContainsFunc(orig.Graph().Input, func(vi *onnxpb.ValueInfoProto) bool {
						f := feeds[vi.GetName()]
						return f.Type == onnxio.TypeFloat && len(f.Shape) == 0
					}) {
						continue // onnxruntime_go cannot pass scalar float16 inputs
					}
					m := orig.Clone()
					rep, err := Convert(m, Options{Type: dt, KeepIOTypes: keepIO})
					if dt == onnxio.TypeBFloat16 && v < 13 {
						if err == nil {
							t.Errorf("%s opset %d: converted to bfloat16, which Cast supports from opset 13", op, v)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s %s opset %d: %v", dt, op, v, err)
					}
					mustCheck(t, m)
					if !slices.ContainsFunc(rep.Kept, func(k KeptNode) bool { return k.OpType == op && k.Reason == ReasonBlockedOp }) {
						t.Errorf("%s %s opset %d: not kept in float32: %v", dt, op, v, rep.Kept)
					}
					g := m.Graph()
					n := findNode(g, op)
					origIn, origOut := nodeTypes(orig, op)
					for i, in := range n.GetInput() {
						if in == "" || origIn[i] != onnxio.TypeFloat {
							continue
						}
						if vt := valueType(g, in); vt != onnxio.TypeFloat {
							t.Errorf("%s %s opset %d keepIO=%v: input %d (%s) is %s, want float", dt, op, v, keepIO, i, in, vt)
						}
					}
					// Its float outputs reach converted readers only through Casts to dt,
					// and a graph output only when that output stays float32.
					for k, o := range n.GetOutput() {
						if origOut[k] != onnxio.TypeFloat {
							continue
						}
						for _, r := range g.GetNode() {
							if !slices.Contains(r.GetInput(), o) {
								continue
							}
							isCast := r.GetOpType() == "Cast" && attrInt(r, "to", 0) == int64(dt)
							if !isCast && !slices.ContainsFunc(rep.Kept, func(k KeptNode) bool { return k.Name == r.GetName() }) {
								t.Errorf("%s %s opset %d keepIO=%v: converted node %s reads float32 %s", dt, op, v, keepIO, r.GetName(), o)
							}
						}
						for _, vi := range g.GetOutput() {
							if vi.GetName() == o && elemType(vi) != onnxio.TypeFloat {
								t.Errorf("%s %s opset %d keepIO=%v: graph output %s declared %s", dt, op, v, keepIO, o, elemType(vi))
							}
						}
					}
					// Run it (skip the opsets where even float32 fails: none today).
					s := runBoth(t, orig, m, feeds)
					if !c.random && s < 30 {
						t.Errorf("%s %s opset %d: SQNR %.1f dB", dt, op, v, s)
					}
				}
			}
		}
	}
}

// nodeTypes returns the original element types of the inputs and outputs of the first
// node of type op in m.
func nodeTypes(m *onnxio.Model, op string) (in, out []onnxio.DataType) {
	c := newConverter(m.Clone(), Options{}, &Report{})
	sc := newScopeOf(nil, m.Graph())
	for _, vi := range m.Graph().GetInput() {
		sc.orig[vi.GetName()] = elemType(vi)
	}
	for _, t := range m.Graph().GetInitializer() {
		sc.orig[t.GetName()] = onnxio.DataType(t.GetDataType())
	}
	c.inferOrig(sc)
	return sc.origTypes(findNode(m.Graph(), op))
}

func TestCastPairs(t *testing.T) {
	tests := []struct {
		name       string
		build      func(gb *graphBuilder)
		opts       Options
		wantCasts  int // Cast nodes left in the main graph
		wantRemove int
		check      func(t *testing.T, m *onnxio.Model)
	}{
		{
			// The blocked Cast "widen" is an identity; Relu (float16) -> widen (float32)
			// -> Sigmoid (float16) gives f16 -> f32 -> f16, which is exact: no Cast left
			// between Relu and Sigmoid.
			name: "f16-f32-f16 exact",
			build: func(gb *graphBuilder) {
				r := gb.node("relu", "Relu", []string{gb.input("x", 2, 3)})
				w := gb.node("widen", "Cast", []string{r}, onnxio.AttrInt("to", 1))
				gb.output(gb.node("sig", "Sigmoid", []string{w}))
			},
			opts:      Options{KeepIOTypes: true, BlockNodes: []string{"widen"}},
			wantCasts: 2, wantRemove: 3, // the IO casts stay; the inserted pair and widen go
			check: func(t *testing.T, m *onnxio.Model) {
				if in := nodeNamed(m.Graph(), "sig").Input[0]; in != "relu_out" {
					t.Errorf("Sigmoid reads %s, want relu_out", in)
				}
			},
		},
		{
			// An autocast-style float32 model: narrow (to float16) -> back (to float) ->
			// blocked Relu. Nothing else reads narrow's output: the pair goes and Relu
			// reads x.
			name: "f32-f16-f32 removed",
			build: func(gb *graphBuilder) {
				n := gb.node("narrow", "Cast", []string{gb.input("x", 2, 3)}, onnxio.AttrInt("to", 10))
				b := gb.node("back", "Cast", []string{n}, onnxio.AttrInt("to", 1))
				gb.output(gb.node("relu", "Relu", []string{b}))
			},
			opts:      Options{KeepIOTypes: true, BlockNodes: []string{"back", "relu"}},
			wantCasts: 0, wantRemove: 2,
			check: func(t *testing.T, m *onnxio.Model) {
				if in := nodeNamed(m.Graph(), "relu").Input[0]; in != "x" {
					t.Errorf("Relu reads %s, want x", in)
				}
			},
		},
		{
			name: "f32-f16-f32 kept with KeepRoundingCasts",
			build: func(gb *graphBuilder) {
				n := gb.node("narrow", "Cast", []string{gb.input("x", 2, 3)}, onnxio.AttrInt("to", 10))
				b := gb.node("back", "Cast", []string{n}, onnxio.AttrInt("to", 1))
				gb.output(gb.node("relu", "Relu", []string{b}))
			},
			opts:      Options{KeepIOTypes: true, BlockNodes: []string{"back", "relu"}, KeepRoundingCasts: true},
			wantCasts: 2, wantRemove: 0,
		},
		{
			// Another node reads the float16 value in the middle: the pair stays.
			name: "f32-f16-f32 kept when the middle is read",
			build: func(gb *graphBuilder) {
				n := gb.node("narrow", "Cast", []string{gb.input("x", 2, 3)}, onnxio.AttrInt("to", 10))
				b := gb.node("back", "Cast", []string{n}, onnxio.AttrInt("to", 1))
				gb.output(gb.node("relu", "Relu", []string{b}))
				gb.b.Output(gb.node("neg", "Neg", []string{n}), onnxio.TypeFloat16, nil)
			},
			opts:      Options{KeepIOTypes: true, BlockNodes: []string{"back", "relu"}},
			wantCasts: 2, wantRemove: 0,
		},
		{
			// int64 -> float (converted to float16) -> blocked Sqrt: the inserted Cast to
			// float32 reads the int64 value directly, so 3001 stays 3001.
			name: "int-f16-f32 skipped",
			build: func(gb *graphBuilder) {
				gb.b.Input("i", onnxio.TypeInt64, []int64{3})
				gb.feeds["i"] = onnxio.NewTensor([]int64{3}, []int64{3001, 4097, 5})
				c := gb.node("tofloat", "Cast", []string{"i"}, onnxio.AttrInt("to", 1))
				gb.output(gb.node("sqrt", "Sqrt", []string{c}))
			},
			opts:      Options{KeepIOTypes: true, BlockNodes: []string{"sqrt"}},
			wantCasts: 1, wantRemove: 1,
			check: func(t *testing.T, m *onnxio.Model) {
				c := findNode(m.Graph(), "Cast")
				if c.Input[0] != "i" || attrInt(c, "to", 0) != 1 {
					t.Errorf("the Cast reads %s to %d, want i to float", c.Input[0], attrInt(c, "to", 0))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gb := newGraph(17)
			tc.build(gb)
			orig := gb.model(t)
			m := orig.Clone()
			rep, err := Convert(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, m)
			if n := countOps(m.Graph(), "Cast"); n != tc.wantCasts || rep.CastsRemoved != tc.wantRemove {
				t.Errorf("%d Casts left, %d removed; want %d and %d", n, rep.CastsRemoved, tc.wantCasts, tc.wantRemove)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
			if s := runBoth(t, orig, m, gb.feeds); s < 40 {
				t.Errorf("SQNR %.1f dB", s)
			}
		})
	}
}

func TestSharedConstant(t *testing.T) {
	for _, tc := range []struct {
		name  string
		force bool
	}{{"duplicated", false}, {"ForceInitializers", true}} {
		t.Run(tc.name, func(t *testing.T) {
			gb := newGraph(17)
			x := gb.input("x", 2, 4)
			w := gb.init("w", []int64{4}, []float32{0.1, -0.2, 1.0 / 3, 70000})
			k := gb.node("k", "Constant", nil, onnxio.AttrFloats("value_floats", 0.1, 0.2, 0.3, 1.0/3))
			y1 := gb.node("mul", "Mul", []string{x, w})  // converted
			y2 := gb.node("keep", "Add", []string{x, w}) // blocked: reads float32 w
			y3 := gb.node("keepk", "Sub", []string{y2, k})
			y4 := gb.node("usek", "Add", []string{y1, k})
			gb.output(gb.node("sum", "Add", []string{y3, y4}))
			orig := gb.model(t)
			m := orig.Clone()
			rep, err := Convert(m, Options{KeepIOTypes: true, BlockNodes: []string{"keep", "keepk"}, ForceInitializers: tc.force})
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, m)
			g := m.Graph()
			if vt := valueType(g, nodeNamed(g, "mul").Input[1]); vt != onnxio.TypeFloat16 {
				t.Errorf("Mul reads w as %s", vt)
			}
			for _, name := range []string{"keep", "keepk"} {
				in := nodeNamed(g, name).Input[1]
				if vt := valueType(g, in); vt != onnxio.TypeFloat {
					t.Errorf("%s reads %s as %s, want float", name, in, vt)
				}
			}
			keepW := nodeNamed(g, "keep").Input[1]
			if tc.force {
				if initializer(g, keepW) != nil || rep.ConstantsDuplicated != 0 {
					t.Errorf("ForceInitializers: keep reads %s, %d duplicated; want a Cast, no copy", keepW, rep.ConstantsDuplicated)
				}
			} else {
				w32 := initializer(g, keepW)
				if w32 == nil || rep.ConstantsDuplicated != 2 {
					t.Fatalf("keep reads %s; %d duplicated, want the float32 copy of w and of k", keepW, rep.ConstantsDuplicated)
				}
				if got := decode(t, w32); !slices.Equal(got, []float32{0.1, -0.2, 1.0 / 3, 70000}) {
					t.Errorf("float32 copy holds %v", got)
				}
				if rep.Clamped != 1 {
					t.Errorf("clamped %d, want 1 (70000 in the float16 copy only)", rep.Clamped)
				}
			}
			runBoth(t, orig, m, gb.feeds) // runs; the clamped 70000 differs on purpose
		})
	}
}

func ifModel(t *testing.T) (*graphBuilder, *onnxio.Model) {
	gb := newGraph(17)
	x := gb.input("x", 2, 3)
	gb.b.Input("cond", onnxio.TypeBool, []int64{})
	branch := func(name, op string, k float32, extra bool) *onnxpb.GraphProto {
		g := &onnxpb.GraphProto{Name: proto.String(name)}
		kt, _ := onnxio.EncodeTensor(name+"_k", onnxio.NewTensor([]int64{}, []float32{k}))
		g.Initializer = append(g.Initializer, kt)
		out := name + "_res"
		g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String(name + "_op"), OpType: proto.String(op), Input: []string{x, name + "_k"}, Output: []string{out}})
		if extra {
			g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String(name + "_tanh"), OpType: proto.String("Tanh"), Input: []string{out}, Output: []string{name + "_tanh_out"}})
			out = name + "_tanh_out"
		}
		g.Output = []*onnxpb.ValueInfoProto{onnxio.ValueInfo(out, onnxio.TypeFloat, []int64{2, 3})}
		g.ValueInfo = []*onnxpb.ValueInfoProto{onnxio.ValueInfo(name+"_res", onnxio.TypeFloat, []int64{2, 3})}
		return g
	}
	r := gb.node("if", "If", []string{"cond"},
		onnxio.AttrGraph("then_branch", branch("then", "Add", 1.5, false)),
		onnxio.AttrGraph("else_branch", branch("else", "Mul", 2, true)))
	gb.output(gb.node("relu", "Relu", []string{r}))
	return gb, gb.model(t)
}

func TestIfSubgraph(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		// the element type each branch's result must have, and of its initializer
		branchOut, thenInit, elseInit onnxio.DataType
		kept                          []string
	}{
		{"converted", Options{}, onnxio.TypeFloat16, onnxio.TypeFloat16, onnxio.TypeFloat16, nil},
		{"converted, keep IO", Options{KeepIOTypes: true}, onnxio.TypeFloat16, onnxio.TypeFloat16, onnxio.TypeFloat16, nil},
		// A blocked node inside one branch: its branch casts its result back.
		{"blocked node in a branch", Options{BlockNodes: []string{"else_op"}}, onnxio.TypeFloat16, onnxio.TypeFloat16, onnxio.TypeFloat, []string{"else_op"}},
		// The If blocked: both branches stay float32 and cast the captured float16 x.
		{"blocked If", Options{BlockNodes: []string{"if"}}, onnxio.TypeFloat, onnxio.TypeFloat, onnxio.TypeFloat, []string{"if", "then_op", "else_op", "else_tanh"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gb, orig := ifModel(t)
			m := orig.Clone()
			rep, err := Convert(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, m)
			if got := keptNames(rep); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tc.kept))) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			ifn := nodeNamed(m.Graph(), "if")
			for _, sg := range subgraphsOf(ifn) {
				g := sg.g
				if et := elemType(g.Output[0]); et != tc.branchOut {
					t.Errorf("%s: output declared %s, want %s", sg.attr, et, tc.branchOut)
				}
				want := tc.thenInit
				if sg.attr == "else_branch" {
					want = tc.elseInit
				}
				if dt := onnxio.DataType(g.Initializer[0].GetDataType()); dt != want {
					t.Errorf("%s: initializer is %s, want %s", sg.attr, dt, want)
				}
				for _, vi := range g.ValueInfo {
					if strings.HasSuffix(vi.GetName(), "_res") {
						wantVI := onnxio.TypeFloat16
						if sg.attr == "else_branch" && tc.elseInit == onnxio.TypeFloat || tc.branchOut == onnxio.TypeFloat {
							wantVI = onnxio.TypeFloat
						}
						if et := elemType(vi); et != wantVI {
							t.Errorf("%s: value_info %s is %s, want %s", sg.attr, vi.GetName(), et, wantVI)
						}
					}
				}
			}
			for _, c := range []bool{true, false} {
				feeds := map[string]*onnxio.Tensor{"x": gb.feeds["x"], "cond": onnxio.NewTensor([]int64{}, []bool{c})}
				if s := runBoth(t, orig, m, feeds); s < 40 {
					t.Errorf("cond=%v: SQNR %.1f dB", c, s)
				}
			}
		})
	}
}

func TestLoopBody(t *testing.T) {
	c := opCases[slices.IndexFunc(opCases, func(c opCase) bool { return c.op == "Loop" })]
	orig, feeds, err := buildOpModel(c, 17)
	if err != nil {
		t.Fatal(err)
	}
	// Put arithmetic in the body: v <- v * 0.5 + captured x.
	body := findNode(orig.Graph(), "Loop").Attribute[0].G
	half, _ := onnxio.EncodeTensor("half", onnxio.NewTensor([]int64{}, []float32{0.5}))
	body.Initializer = append(body.Initializer, half)
	id := nodeNamed(body, "body_Identity_1")
	id.OpType = proto.String("Mul")
	id.Input = append(id.Input, "half")
	m := orig.Clone()
	rep, err := Convert(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, m)
	for _, vi := range body.Input[2:] {
		if elemType(vi) != onnxio.TypeFloat {
			t.Fatal("the original model changed")
		}
	}
	cbody := findNode(m.Graph(), "Loop").Attribute[0].G
	if et := elemType(cbody.Input[2]); et != onnxio.TypeFloat16 {
		t.Errorf("carried body input is %s", et)
	}
	if dt := onnxio.DataType(cbody.Initializer[0].GetDataType()); dt != onnxio.TypeFloat16 {
		t.Errorf("body initializer is %s", dt)
	}
	if len(rep.Kept) != 0 {
		t.Errorf("kept %v", rep.Kept)
	}
	if s := runBoth(t, orig, m, feeds); s < 40 {
		t.Errorf("SQNR %.1f dB", s)
	}
}

func TestScanBody(t *testing.T) {
	c := opCases[slices.IndexFunc(opCases, func(c opCase) bool { return c.op == "Scan" })]
	orig, feeds, err := buildOpModel(c, 17)
	if err != nil {
		t.Fatal(err)
	}
	// Put arithmetic in the body: s' = s + x_t * 0.5.
	body := findNode(orig.Graph(), "Scan").Attribute[1].G
	half, _ := onnxio.EncodeTensor("half", onnxio.NewTensor([]int64{}, []float32{0.5}))
	body.Initializer = append(body.Initializer, half)
	id := findNode(body, "Identity")
	id.OpType = proto.String("Mul")
	id.Input = append(id.Input, "half")
	body.Node = append(body.Node, &onnxpb.NodeProto{Name: proto.String("scan_add"), OpType: proto.String("Add"), Input: []string{"s", id.Output[0]}, Output: []string{"scan_sum"}})
	body.Output[0].Name = proto.String("scan_sum")
	for _, blocked := range []bool{false, true} {
		m := orig.Clone()
		opts := Options{}
		if blocked {
			opts.BlockNodes = []string{"scan_add"}
		}
		rep, err := Convert(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		mustCheck(t, m)
		cbody := findNode(m.Graph(), "Scan").Attribute[1].G
		for _, vi := range append(slices.Clone(cbody.Input), cbody.Output...) {
			if et := elemType(vi); et != onnxio.TypeFloat16 {
				t.Errorf("blocked=%v: body value %s is %s", blocked, vi.GetName(), et)
			}
		}
		if got := keptNames(rep); blocked != slices.Equal(got, []string{"scan_add"}) || !blocked && len(got) != 0 {
			t.Errorf("blocked=%v: kept %v", blocked, got)
		}
		if s := runBoth(t, orig, m, feeds); s < 40 {
			t.Errorf("blocked=%v: SQNR %.1f dB", blocked, s)
		}
	}
}

// TestAttributes checks the float dtype attributes and the inputs that stay float32.
func TestAttributes(t *testing.T) {
	gb := newGraph(17)
	x := gb.input("x", 1, 2, 3, 3)
	scales := gb.init("scales", []int64{4}, []float32{1, 1, 2, 2})
	shape := gb.b.Initializer("shape", onnxio.NewTensor([]int64{1}, []int64{3}))
	// Resize's scales stay float32; Mul reads the same initializer as float16.
	gb.output(gb.node("resize", "Resize", []string{x, "", scales}))
	gb.output(gb.node("mul", "Mul", []string{scales, scales}))
	gb.output(gb.node("cos", "ConstantOfShape", []string{shape})) // float zero, no value
	gb.output(gb.node("eye", "EyeLike", []string{gb.node("sq", "Squeeze", []string{gb.node("sl", "Slice", []string{x, gb.b.Initializer("s0", onnxio.NewTensor([]int64{2}, []int64{0, 0})), gb.b.Initializer("s1", onnxio.NewTensor([]int64{2}, []int64{1, 1})), gb.b.Initializer("ax", onnxio.NewTensor([]int64{2}, []int64{0, 1}))}), gb.b.Initializer("ax2", onnxio.NewTensor([]int64{2}, []int64{0, 1}))})}, onnxio.AttrInt("dtype", 1)))
	rn := gb.node("rn", "RandomNormal", nil, onnxio.AttrInts("shape", 2, 2))
	gb.output(gb.node("rnadd", "Add", []string{rn, gb.node("c", "Cast", []string{shape}, onnxio.AttrInt("to", 1))}))
	orig := gb.model(t)
	m := orig.Clone()
	rep, err := Convert(m, Options{BlockOps: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, m)
	g := m.Graph()
	if vt := valueType(g, nodeNamed(g, "resize").Input[2]); vt != onnxio.TypeFloat {
		t.Errorf("Resize scales are %s, want float", vt)
	}
	if vt := valueType(g, nodeNamed(g, "mul").Input[0]); vt != onnxio.TypeFloat16 {
		t.Errorf("Mul reads scales as %s", vt)
	}
	for name, attr := range map[string]string{"eye": "dtype", "rn": "dtype", "c": "to"} {
		if v := attrInt(nodeNamed(g, name), attr, 0); v != int64(onnxio.TypeFloat16) {
			t.Errorf("%s.%s = %d, want float16", name, attr, v)
		}
	}
	cv := onnxio.Attr(nodeNamed(g, "cos"), "value")
	if cv == nil || onnxio.DataType(cv.T.GetDataType()) != onnxio.TypeFloat16 {
		t.Errorf("ConstantOfShape has no float16 value: %v", cv)
	}
	if rep.CastTargetsChanged != 3 {
		t.Errorf("CastTargetsChanged %d, want 3", rep.CastTargetsChanged)
	}
	// onnxruntime's CPU provider has no float16 RandomNormal: with the default block
	// list it stays float32 and the model runs.
	m = orig.Clone()
	if _, err := Convert(m, Options{}); err != nil {
		t.Fatal(err)
	}
	initORT(t)
	in := map[string]*onnxio.Tensor{"x": toType(gb.feeds["x"], onnxio.TypeFloat16)}
	got, err := runModel(m, in, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range g.Output {
		if got[vi.GetName()].Type != onnxio.TypeFloat16 {
			t.Errorf("output %s is %s", vi.GetName(), got[vi.GetName()].Type)
		}
	}
}

// TestIsolated checks that data movement between two blocked nodes stays float32.
func TestIsolated(t *testing.T) {
	build := func() (*graphBuilder, *onnxio.Model) {
		gb := newGraph(17)
		axis := gb.b.Initializer("axis", onnxio.NewTensor([]int64{}, []int64{1}))
		c1 := gb.node("cum1", "CumSum", []string{gb.input("x", 2, 6), axis})
		r := gb.node("reshape", "Reshape", []string{c1, gb.b.Initializer("shape", onnxio.NewTensor([]int64{2}, []int64{3, 4}))})
		c2 := gb.node("cum2", "CumSum", []string{r, axis})
		gb.output(gb.node("relu", "Relu", []string{c2}))
		return gb, gb.model(t)
	}
	for _, isolated := range []bool{false, true} {
		gb, orig := build()
		m := orig.Clone()
		rep, err := Convert(m, Options{KeepIOTypes: true, ConvertIsolated: isolated})
		if err != nil {
			t.Fatal(err)
		}
		mustCheck(t, m)
		kept := slices.ContainsFunc(rep.Kept, func(k KeptNode) bool { return k.Name == "reshape" && k.Reason == ReasonIsolated })
		casts := countOps(m.Graph(), "Cast")
		// Not isolated: Relu's input Cast and the output Cast. Converted Reshape: 2 more.
		if kept == isolated || casts != map[bool]int{false: 2, true: 4}[isolated] {
			t.Errorf("ConvertIsolated=%v: Reshape kept=%v, %d Casts; kept %v", isolated, kept, casts, rep.Kept)
		}
		if s := runBoth(t, orig, m, gb.feeds); s < 40 {
			t.Errorf("SQNR %.1f dB", s)
		}
	}
}

func TestUnknownOp(t *testing.T) {
	gb := newGraph(17)
	gb.b.Graph().Node = nil
	x := gb.input("x", 2, 3)
	r := gb.node("relu", "Relu", []string{x})
	custom := gb.node("custom", "MyOp", []string{r})
	gb.g.Node[len(gb.g.Node)-1].Domain = proto.String("example.com")
	gb.output(gb.node("neg", "Neg", []string{custom}))
	m := gb.model(t)
	m.SetOpset("example.com", 1)
	rep, err := Convert(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, m)
	if got := keptNames(rep); !slices.Equal(got, []string{"custom", "neg"}) {
		t.Errorf("kept %v, want custom (no rule) and neg (reads an unknown type)", got)
	}
	if len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "example.com.MyOp") {
		t.Errorf("warnings %v", rep.Warnings)
	}
	if vt := valueType(m.Graph(), nodeNamed(m.Graph(), "custom").Input[0]); vt != onnxio.TypeFloat {
		t.Errorf("the unknown op reads %s", vt)
	}
}

func TestKeepIOTypesFalse(t *testing.T) {
	gb := newGraph(17)
	x := gb.input("x", 2, 3)
	gb.output(gb.node("sig", "Sigmoid", []string{gb.node("mm", "MatMul", []string{x, gb.init("w", []int64{3, 4}, normalData(gb.rng, 12))})}))
	orig := gb.model(t)
	m := orig.Clone()
	rep, err := Convert(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, m)
	g := m.Graph()
	if elemType(g.Input[0]) != onnxio.TypeFloat16 || elemType(g.Output[0]) != onnxio.TypeFloat16 {
		t.Errorf("graph input %s, output %s, want float16", elemType(g.Input[0]), elemType(g.Output[0]))
	}
	if countOps(g, "Cast") != 0 || rep.CastsInserted != 0 || rep.ValuesConverted != 2 {
		t.Errorf("%d Casts, report %s, values %d", countOps(g, "Cast"), rep, rep.ValuesConverted)
	}
	if s := runBoth(t, orig, m, gb.feeds); s < 40 {
		t.Errorf("SQNR %.1f dB", s)
	}
}

// TestCUDABlockedOps converts a model of every op in the cuda block list with Target
// "cuda": the op stays float32, and onnxruntime's CPU provider runs the result (no GPU
// here: the list itself is not measured).
func TestCUDABlockedOps(t *testing.T) {
	initORT(t)
	cases := map[string]opCase{}
	for _, c := range opCases {
		cases[c.op] = c
	}
	list, err := DefaultBlockOps("cuda")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range list {
		c, ok := cases[op]
		if !ok {
			t.Errorf("no op case for cuda-blocked op %s", op)
			continue
		}
		for _, v := range c.versions() {
			orig, feeds, err := buildOpModel(c, v)
			if err != nil {
				t.Fatal(err)
			}
			m := orig.Clone()
			rep, err := Convert(m, Options{Target: "cuda", KeepIOTypes: true})
			if err != nil {
				t.Fatalf("%s opset %d: %v", op, v, err)
			}
			mustCheck(t, m)
			if !slices.ContainsFunc(rep.Kept, func(k KeptNode) bool { return k.OpType == op && k.Reason == ReasonBlockedOp }) {
				t.Errorf("%s opset %d: not kept in float32 for cuda: %v", op, v, rep.Kept)
			}
			if s := runBoth(t, orig, m, feeds); !c.random && s < 30 {
				t.Errorf("%s opset %d: SQNR %.1f dB", op, v, s)
			}
		}
	}
}

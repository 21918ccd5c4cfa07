package quantize

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// The quantize fuzz targets decode the fuzz bytes into a small random graph built from
// an op set (fzGraph), structurally plausible: shapes are tracked so that most graphs are
// valid ONNX that onnxruntime runs, and a few choices in each node break it on purpose
// (an input too few or too many, a wrong attribute type, an initializer of the wrong
// length, type or shape, NaN and infinity in the weights). Every byte is a choice; past
// the end of the input every choice is 0, so any input is a graph.

// fzBytes hands out the fuzz input as choices.
type fzBytes struct {
	b []byte
	i int
}

func (f *fzBytes) next() byte {
	if f.i >= len(f.b) {
		return 0
	}
	c := f.b[f.i]
	f.i++
	return c
}

// intn is a choice in [0, n) (n at most 256).
func (f *fzBytes) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(f.next()) % n
}

func (f *fzBytes) bit() bool { return f.next()&1 == 1 }

// rare is true for about one byte value in 16: a corruption.
func (f *fzBytes) rare() bool { return f.next() >= 240 }

// fzValue is a float tensor of the graph with its shape (batch dimension included, at
// the size the feed gives it).
type fzValue struct {
	name  string
	shape []int64
}

// fzGen builds one graph.
type fzGen struct {
	f      *fzBytes
	rng    *rand.Rand
	b      *onnxio.Builder
	opset  int64
	dyn    bool // the batch dimension is declared dynamic
	vals   []fzValue
	shared map[string]string // a weight shape -> an initializer of it, for shared weights
	n      int
	// broken is set when a choice made the graph structurally invalid (an input
	// dropped, a shape that does not fit): the targets do not run such graphs on
	// onnxruntime, which dies of SIGFPE on some (empty tensors where a shape was wrong).
	broken bool
}

// fzOps is the op set, some ops listed twice to come up more often; "ConvBN" and the
// like are the op followed by a BatchNormalization (what FoldBatchNorm folds).
var fzOps = []string{
	"Conv", "ConvBN", "ConvBN", "ConvBN", "ConvTranspose", "ConvTransposeBN", "ConvTransposeBN",
	"Gemm", "GemmBN", "GemmBN", "MatMul",
	"BatchNormalization", "Relu", "Relu", "Clip", "Clip", "Add", "Mul", "Sub", "Div",
	"Reshape", "Transpose", "Concat", "Slice", "Slice", "Squeeze", "Unsqueeze", "Unsqueeze",
	"Softmax", "Softmax", "LogSoftmax", "Constant", "Identity", "Dropout", "Dropout", "Flatten",
	"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pad", "Pad", "TopK",
	"ReduceSum", "ReduceMean", "Split", "Sigmoid", "Tanh", "LeakyRelu", "Gather",
	"LayerNormalization", "Resize", "Upsample",
}

// fzGraph builds a graph from the choices in f; it returns the model, a random feed of
// its inputs, and whether a choice broke the graph's structure on purpose.
func fzGraph(f *fzBytes) (*onnxio.Model, map[string]*onnxio.Tensor, bool) {
	g := &fzGen{f: f, opset: 7 + int64(f.intn(15)), shared: map[string]string{}}
	g.rng = rand.New(rand.NewPCG(uint64(f.next())<<8|uint64(f.next()), 7))
	g.b = onnxio.NewBuilder(g.opset)
	var shape []int64
	n := int64(1 + f.intn(2))
	switch f.intn(3) {
	case 0:
		shape = []int64{n, int64(1 + f.intn(4)), int64(1 + f.intn(6)), int64(1 + f.intn(6))}
	case 1:
		shape = []int64{n, int64(1 + f.intn(8))}
	default:
		shape = []int64{n, int64(1 + f.intn(4)), int64(1 + f.intn(6))}
	}
	g.dyn = f.bit()
	feeds := map[string]*onnxio.Tensor{}
	inputs := 1 + f.intn(4)/3
	for i := range inputs {
		name := fmt.Sprintf("x%d", i)
		g.b.Input(name, onnxio.TypeFloat, g.declared(shape))
		feeds[name] = onnxio.NewTensor(shape, g.floats(numel(shape), -2, 2))
		g.vals = append(g.vals, fzValue{name, shape})
	}
	for range 1 + f.intn(10) {
		g.op(fzOps[f.intn(len(fzOps))])
	}
	last := g.vals[len(g.vals)-1]
	outs := []fzValue{last}
	for _, v := range g.vals[min(inputs, len(g.vals)-1) : len(g.vals)-1] {
		if f.intn(6) == 0 {
			outs = append(outs, v)
		}
	}
	for _, v := range outs {
		if v.name == "x0" && len(outs) == 1 && f.bit() {
			continue // a graph without outputs
		}
		if f.rare() {
			g.b.Output(v.name, onnxio.TypeFloat, nil)
		} else {
			g.b.Output(v.name, onnxio.TypeFloat, g.declared(v.shape))
		}
	}
	m, err := g.b.Model()
	if err != nil {
		panic(err) // the generator encodes only valid tensors; corrupt ones are edited after
	}
	return m, feeds, g.broken
}

// declared is the shape a value info declares: dim 0 dynamic when the batch is.
func (g *fzGen) declared(shape []int64) []int64 {
	d := slices.Clone(shape)
	if g.dyn && len(d) > 0 {
		d[0] = -1
	}
	return d
}

func numel(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

func (g *fzGen) floats(n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*g.rng.Float32()
	}
	return v
}

func (g *fzGen) name(what string) string {
	g.n++
	return fmt.Sprintf("%s%d", what, g.n)
}

// pick is one of the last few values.
func (g *fzGen) pick() fzValue {
	return g.vals[len(g.vals)-1-g.f.intn(min(3, len(g.vals)))]
}

func (g *fzGen) push(name string, shape []int64) fzValue {
	v := fzValue{name, shape}
	g.vals = append(g.vals, v)
	return v
}

// corrupt damages an initializer now and then: a NaN or infinity, a value short, a
// wrong shape, the wrong type, all zeros.
func (g *fzGen) corrupt(tp *onnxpb.TensorProto) {
	if !g.f.rare() {
		return
	}
	raw := tp.GetRawData()
	isFloat := tp.GetDataType() == int32(onnxio.TypeFloat)
	switch g.f.intn(6) {
	case 0:
		if len(raw) >= 4 && isFloat {
			copy(raw[4*g.rng.IntN(len(raw)/4):], []byte{0, 0, 0xc0, 0x7f}) // NaN
		}
	case 1:
		if len(raw) >= 4 && isFloat {
			copy(raw[4*g.rng.IntN(len(raw)/4):], []byte{0, 0, 0x80, 0xff}) // -Inf
		}
	case 2:
		if len(raw) >= 4 {
			tp.RawData = raw[:len(raw)-4]
			g.broken = true
		}
	case 3:
		tp.Dims = append(tp.Dims, 2)
		g.broken = true
	case 4:
		g.broken = true
		if isFloat {
			tp.DataType = proto.Int32(int32(onnxio.TypeInt32))
		} else {
			tp.DataType = proto.Int32(int32(onnxio.TypeFloat))
		}
	default:
		if isFloat {
			clear(raw) // not integers: onnxruntime 1.30 dies of SIGFPE on a Slice step of 0
		}
	}
}

// floatConst is a float constant of shape with values in [lo, hi]: an initializer,
// sometimes a Constant node.
func (g *fzGen) floatConst(shape []int64, lo, hi float32) string {
	t := onnxio.NewTensor(shape, g.floats(numel(shape), lo, hi))
	if g.f.intn(8) == 0 {
		tp, err := onnxio.EncodeTensor("", t)
		if err != nil {
			panic(err)
		}
		g.corrupt(tp)
		return g.node("Constant", nil, 1, onnxio.AttrTensor("value", tp))[0]
	}
	name := g.b.Initializer(g.name("w"), t)
	g.corrupt(g.b.Graph().Initializer[len(g.b.Graph().Initializer)-1])
	return name
}

// weight is a float constant for a weight: sometimes shared with an earlier one of the
// same shape, sometimes read through an Identity (as PyTorch writes shared weights).
func (g *fzGen) weight(shape []int64) string {
	key := fmt.Sprint(shape)
	if w, ok := g.shared[key]; ok && g.f.intn(4) == 0 {
		return w
	}
	w := g.floatConst(shape, -1, 1)
	g.shared[key] = w
	if g.f.intn(8) == 0 {
		return g.node("Identity", []string{w}, 1)[0]
	}
	return w
}

func (g *fzGen) ints(v ...int64) string {
	name := g.b.Initializer(g.name("i"), onnxio.NewTensor([]int64{int64(len(v))}, v))
	g.corrupt(g.b.Graph().Initializer[len(g.b.Graph().Initializer)-1])
	return name
}

func (g *fzGen) scalar(v float32) string {
	name := g.b.Initializer(g.name("s"), onnxio.NewTensor([]int64{}, []float32{v}))
	g.corrupt(g.b.Graph().Initializer[len(g.b.Graph().Initializer)-1])
	return name
}

// node adds a node, now and then damaged: an input dropped, added or emptied, an
// attribute of the wrong type, no name.
func (g *fzGen) node(op string, inputs []string, nOut int, attrs ...*onnxpb.AttributeProto) []string {
	inputs = slices.Clone(inputs)
	if g.f.rare() {
		g.broken = true
		switch g.f.intn(4) {
		case 0:
			if len(inputs) > 0 {
				inputs = inputs[:len(inputs)-1]
			}
		case 1:
			inputs = append(inputs, g.vals[g.f.intn(len(g.vals))].name)
		case 2:
			if len(inputs) > 0 {
				inputs[g.f.intn(len(inputs))] = ""
			}
		default:
			if len(attrs) > 0 {
				i := g.f.intn(len(attrs))
				attrs = slices.Clone(attrs)
				attrs[i] = onnxio.AttrString(attrs[i].GetName(), "x")
			}
		}
	}
	outs := g.b.Node(op, inputs, nOut, attrs...)
	if g.f.rare() {
		g.b.Graph().Node[len(g.b.Graph().Node)-1].Name = nil
	}
	return outs
}

// to4D reshapes x to rank 4 ([N, C, 1, rest]) when its rank is below 3.
func (g *fzGen) to4D(x fzValue) fzValue {
	if len(x.shape) >= 3 {
		return x
	}
	if len(x.shape) == 0 {
		x = g.push(g.node("Reshape", []string{x.name, g.ints(1, 1)}, 1)[0], []int64{1, 1})
	}
	c := int64(1)
	if len(x.shape) == 2 {
		c = x.shape[1]
	}
	shape := []int64{x.shape[0], c, 1, 1}
	return g.push(g.node("Reshape", []string{x.name, g.ints(0, c, 1, 1)}, 1)[0], shape)
}

// to2D flattens x to [N, rest].
func (g *fzGen) to2D(x fzValue) fzValue {
	if len(x.shape) == 2 {
		return x
	}
	if len(x.shape) < 2 {
		return g.push(g.node("Reshape", []string{x.name, g.ints(1, -1)}, 1)[0], []int64{1, int64(numel(x.shape))})
	}
	return g.push(g.node("Flatten", []string{x.name}, 1)[0], []int64{x.shape[0], int64(numel(x.shape[1:]))})
}

// axis is a random axis of rank r, negative now and then where the opset allows it.
func (g *fzGen) axis(r int) (int64, int) {
	a := g.f.intn(r)
	if g.opset >= 11 && g.f.bit() {
		return int64(a - r), a
	}
	return int64(a), a
}

// op appends one op of the set to the graph.
func (g *fzGen) op(op string) {
	f := g.f
	x := g.pick()
	r := len(x.shape)
	switch op {
	case "Conv", "ConvBN", "ConvTranspose", "ConvTransposeBN":
		y := g.conv(g.to4D(x), strings.HasPrefix(op, "ConvTranspose"))
		if strings.HasSuffix(op, "BN") {
			g.batchNorm(y)
		}
	case "Gemm", "GemmBN":
		y := g.gemm(g.to2D(x))
		if op == "GemmBN" {
			g.batchNorm(y)
		}
	case "MatMul":
		if r == 0 {
			return
		}
		k := x.shape[r-1]
		switch f.intn(6) {
		case 0: // a 1-D weight: the last dimension goes
			g.push(g.node("MatMul", []string{x.name, g.weight([]int64{k})}, 1)[0], slices.Clone(x.shape[:r-1]))
		case 1: // the constant first: [.., P, R] x [.., R, Q]
			if r < 2 {
				return
			}
			lead := slices.Clone(x.shape)
			lead[r-1], lead[r-2] = x.shape[r-2], int64(1+f.intn(3))
			out := slices.Clone(x.shape)
			out[r-2] = lead[r-2]
			g.push(g.node("MatMul", []string{g.weight(lead), x.name}, 1)[0], out)
		default:
			m := int64(1 + f.intn(6))
			g.push(g.node("MatMul", []string{x.name, g.weight([]int64{k, m})}, 1)[0], append(slices.Clone(x.shape[:r-1]), m))
		}
	case "BatchNormalization":
		g.batchNorm(x)
	case "Relu", "Sigmoid", "Tanh":
		g.push(g.node(op, []string{x.name}, 1)[0], x.shape)
	case "LeakyRelu":
		g.push(g.node(op, []string{x.name}, 1, onnxio.AttrFloat("alpha", []float32{0.01, 0.2, -1, 0}[f.intn(4)]))[0], x.shape)
	case "Clip":
		lo, hi := -g.rng.Float32()*2, g.rng.Float32()*2
		if f.rare() {
			lo, hi = hi, lo
		}
		if g.opset < 11 {
			var attrs []*onnxpb.AttributeProto
			if f.intn(4) != 0 {
				attrs = append(attrs, onnxio.AttrFloat("min", lo))
			}
			if f.intn(4) != 0 {
				attrs = append(attrs, onnxio.AttrFloat("max", hi))
			}
			g.push(g.node("Clip", []string{x.name}, 1, attrs...)[0], x.shape)
			return
		}
		ins := []string{x.name, "", ""}
		if f.intn(4) != 0 {
			ins[1] = g.scalar(lo)
		}
		if f.intn(4) != 0 {
			ins[2] = g.scalar(hi)
		}
		for len(ins) > 1 && ins[len(ins)-1] == "" {
			ins = ins[:len(ins)-1]
		}
		g.push(g.node("Clip", ins, 1)[0], x.shape)
	case "Add", "Mul", "Sub", "Div":
		o := g.operand(x, op == "Div")
		ins := []string{x.name, o}
		if f.bit() {
			ins[0], ins[1] = o, x.name
		}
		g.push(g.node(op, ins, 1)[0], x.shape)
	case "Reshape":
		g.reshape(x)
	case "Transpose":
		perm := make([]int64, r)
		for i := range perm {
			perm[i] = int64(i)
		}
		for i := r - 1; i > 0; i-- {
			j := f.intn(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		if f.intn(4) == 0 {
			slices.Reverse(perm)
			out := slices.Clone(x.shape)
			slices.Reverse(out)
			g.push(g.node("Transpose", []string{x.name}, 1)[0], out)
			return
		}
		out := make([]int64, r)
		for i, p := range perm {
			out[i] = x.shape[p]
		}
		if f.rare() {
			perm = perm[:max(0, r-1)]
			g.broken = true
		}
		g.push(g.node("Transpose", []string{x.name}, 1, onnxio.AttrInts("perm", perm...))[0], out)
	case "Concat":
		if r == 0 {
			return
		}
		a, ai := g.axis(r)
		ins := []string{x.name}
		out := slices.Clone(x.shape)
		for range f.intn(3) {
			if f.bit() {
				ins = append(ins, x.name)
				out[ai] += x.shape[ai]
				continue
			}
			s := slices.Clone(x.shape)
			s[ai] = int64(1 + f.intn(3))
			ins = append(ins, g.floatConst(s, -1, 1))
			out[ai] += s[ai]
		}
		g.push(g.node("Concat", ins, 1, onnxio.AttrInt("axis", a))[0], out)
	case "Slice":
		g.slice(x)
	case "Squeeze":
		var ones []int
		for i, d := range x.shape {
			if d == 1 {
				ones = append(ones, i)
			}
		}
		if len(ones) == 0 {
			g.unsqueeze(x)
			return
		}
		var out []int64
		var axes []int64
		if f.intn(3) == 0 {
			for _, d := range x.shape {
				if d != 1 {
					out = append(out, d)
				}
			}
		} else {
			a := ones[f.intn(len(ones))]
			if f.rare() {
				a = f.intn(r)
				g.broken = true
			}
			out = slices.Delete(slices.Clone(x.shape), a, a+1)
			if g.opset >= 11 && f.bit() {
				axes = []int64{int64(a - r)}
			} else {
				axes = []int64{int64(a)}
			}
		}
		switch {
		case axes == nil:
			g.push(g.node("Squeeze", []string{x.name}, 1)[0], out)
		case g.opset < 13:
			g.push(g.node("Squeeze", []string{x.name}, 1, onnxio.AttrInts("axes", axes...))[0], out)
		default:
			g.push(g.node("Squeeze", []string{x.name, g.ints(axes...)}, 1)[0], out)
		}
	case "Unsqueeze":
		g.unsqueeze(x)
	case "Softmax", "LogSoftmax":
		var attrs []*onnxpb.AttributeProto
		switch f.intn(4) {
		case 0:
		case 1:
			attrs = append(attrs, onnxio.AttrInt("axis", -1))
		case 2:
			attrs = append(attrs, onnxio.AttrInt("axis", int64(r-1)))
		default:
			a, _ := g.axis(max(r, 1))
			attrs = append(attrs, onnxio.AttrInt("axis", a))
		}
		g.push(g.node(op, []string{x.name}, 1, attrs...)[0], x.shape)
	case "Constant":
		// A Constant read by a Mul, or now and then a graph output of its own.
		c := g.floatConstNode(x.shape[min(1, r):])
		if f.intn(6) == 0 {
			g.push(c, x.shape[min(1, r):])
			return
		}
		g.push(g.node("Mul", []string{x.name, c}, 1)[0], x.shape)
	case "Identity":
		g.push(g.node("Identity", []string{x.name}, 1)[0], x.shape)
	case "Dropout":
		var attrs []*onnxpb.AttributeProto
		ins := []string{x.name}
		if g.opset < 12 {
			if f.bit() {
				attrs = append(attrs, onnxio.AttrFloat("ratio", 0.3))
			}
		} else if f.bit() {
			ins = append(ins, g.scalar(0.25))
			if f.intn(4) == 0 {
				ins = append(ins, g.b.Initializer(g.name("t"), onnxio.NewTensor([]int64{}, []bool{false})))
			}
		}
		g.push(g.node("Dropout", ins, 1+f.intn(2), attrs...)[0], x.shape)
	case "Flatten":
		lo := 0
		if g.opset >= 11 {
			lo = -r
		}
		a := int64(lo + f.intn(r+1-lo))
		ai := int(a)
		if a < 0 {
			ai += r
		}
		out := []int64{int64(numel(x.shape[:ai])), int64(numel(x.shape[ai:]))}
		if f.intn(3) == 0 {
			out = []int64{int64(numel(x.shape[:min(1, r)])), int64(numel(x.shape[min(1, r):]))}
			g.push(g.node("Flatten", []string{x.name}, 1)[0], out)
			return
		}
		g.push(g.node("Flatten", []string{x.name}, 1, onnxio.AttrInt("axis", a))[0], out)
	case "MaxPool", "AveragePool":
		g.pool(g.to4D(x), op)
	case "GlobalAveragePool", "GlobalMaxPool":
		x = g.to4D(x)
		out := slices.Clone(x.shape)
		for i := 2; i < len(out); i++ {
			out[i] = 1
		}
		g.push(g.node(op, []string{x.name}, 1)[0], out)
	case "Pad":
		g.pad(x)
	case "TopK":
		if r == 0 || x.shape[r-1] == 0 {
			return
		}
		k := int64(1 + f.intn(int(min(x.shape[r-1], 200))))
		out := slices.Clone(x.shape)
		out[r-1] = k
		var outs []string
		if g.opset < 10 {
			outs = g.node("TopK", []string{x.name}, 2, onnxio.AttrInt("k", k))
		} else {
			var attrs []*onnxpb.AttributeProto
			if g.opset >= 11 && f.bit() {
				attrs = append(attrs, onnxio.AttrInt("largest", int64(f.intn(2))))
			}
			outs = g.node("TopK", []string{x.name, g.ints(k)}, 2, attrs...)
		}
		g.push(outs[0], out)
	case "ReduceSum", "ReduceMean":
		if r == 0 {
			return
		}
		a, ai := g.axis(r)
		keep := f.bit()
		out := slices.Clone(x.shape)
		if keep {
			out[ai] = 1
		} else {
			out = slices.Delete(out, ai, ai+1)
		}
		attrs := []*onnxpb.AttributeProto{onnxio.AttrInt("keepdims", map[bool]int64{true: 1, false: 0}[keep])}
		if op == "ReduceSum" && g.opset >= 13 || op == "ReduceMean" && g.opset >= 18 {
			g.push(g.node(op, []string{x.name, g.ints(a)}, 1, attrs...)[0], out)
			return
		}
		g.push(g.node(op, []string{x.name}, 1, append(attrs, onnxio.AttrInts("axes", a))...)[0], out)
	case "Split":
		if r == 0 {
			return
		}
		a, ai := g.axis(r)
		d := x.shape[ai]
		if d < 2 {
			return
		}
		s1 := int64(1 + f.intn(int(min(d-1, 200))))
		parts := []int64{s1, d - s1}
		attrs := []*onnxpb.AttributeProto{onnxio.AttrInt("axis", a)}
		ins := []string{x.name}
		if g.opset < 13 {
			attrs = append(attrs, onnxio.AttrInts("split", parts...))
		} else {
			ins = append(ins, g.ints(parts...))
		}
		outs := g.node("Split", ins, 2, attrs...)
		for i := range outs {
			s := slices.Clone(x.shape)
			s[ai] = parts[i]
			g.push(outs[i], s)
		}
	case "Gather":
		if r == 0 || x.shape[0] == 0 {
			return
		}
		a, ai := g.axis(r)
		d := x.shape[ai]
		if d == 0 {
			return
		}
		idx := make([]int64, 1+f.intn(3))
		for i := range idx {
			idx[i] = int64(f.intn(int(min(2*d, 200)))) - d
			if f.rare() {
				idx[i] = d
				g.broken = true
			}
		}
		out := slices.Concat(x.shape[:ai], []int64{int64(len(idx))}, x.shape[ai+1:])
		g.push(g.node("Gather", []string{x.name, g.ints(idx...)}, 1, onnxio.AttrInt("axis", a))[0], out)
	case "LayerNormalization":
		if g.opset < 17 || r == 0 {
			return
		}
		c := x.shape[r-1]
		ins := []string{x.name, g.floatConst([]int64{c}, 0.5, 2)}
		if f.bit() {
			ins = append(ins, g.floatConst([]int64{c}, -1, 1))
		}
		g.push(g.node("LayerNormalization", ins, 1, onnxio.AttrInt("axis", -1))[0], x.shape)
	case "Resize", "Upsample":
		x = g.to4D(x)
		if len(x.shape) != 4 {
			return
		}
		sh, sw := float32(1+f.intn(2)), float32(1+f.intn(3))
		scales := onnxio.NewTensor([]int64{4}, []float32{1, 1, sh, sw})
		out := []int64{x.shape[0], x.shape[1], x.shape[2] * int64(sh), x.shape[3] * int64(sw)}
		mode := onnxio.AttrString("mode", []string{"nearest", "linear"}[f.intn(2)])
		switch {
		case op == "Upsample" && g.opset < 9:
			g.push(g.node("Upsample", []string{x.name}, 1, mode, onnxio.AttrFloats("scales", 1, 1, sh, sw))[0], out)
		case op == "Upsample" && g.opset == 9:
			g.push(g.node("Upsample", []string{x.name, g.b.Initializer(g.name("sc"), scales)}, 1, mode)[0], out)
		case op == "Upsample" || g.opset < 10:
			return
		case g.opset == 10:
			g.push(g.node("Resize", []string{x.name, g.b.Initializer(g.name("sc"), scales)}, 1, mode)[0], out)
		case g.opset < 13:
			roi := g.b.Initializer(g.name("roi"), onnxio.NewTensor([]int64{0}, []float32{}))
			g.push(g.node("Resize", []string{x.name, roi, g.b.Initializer(g.name("sc"), scales)}, 1, mode)[0], out)
		default:
			g.push(g.node("Resize", []string{x.name, "", g.b.Initializer(g.name("sc"), scales)}, 1, mode)[0], out)
		}
	}
}

// floatConstNode is a Constant node of a float tensor of shape.
func (g *fzGen) floatConstNode(shape []int64) string {
	tp, err := onnxio.EncodeTensor("", onnxio.NewTensor(shape, g.floats(numel(shape), -1, 1)))
	if err != nil {
		panic(err)
	}
	g.corrupt(tp)
	return g.node("Constant", nil, 1, onnxio.AttrTensor("value", tp))[0]
}

// operand is a second operand for an elementwise op on x: a constant that broadcasts to
// x's shape, or another value of its shape.
func (g *fzGen) operand(x fzValue, div bool) string {
	lo, hi := float32(-1), float32(1)
	if div {
		lo, hi = 0.5, 2
	}
	r := len(x.shape)
	switch g.f.intn(6) {
	case 0:
		return g.floatConst(x.shape, lo, hi)
	case 1:
		return g.floatConst(x.shape[min(1, r):], lo, hi)
	case 2:
		return g.floatConst([]int64{}, lo, hi)
	case 3:
		if r >= 3 {
			s := make([]int64, r-1)
			for i := range s {
				s[i] = 1
			}
			s[0] = x.shape[1]
			return g.floatConst(s, lo, hi)
		}
		return g.floatConst(x.shape[max(r-1, 0):], lo, hi)
	case 4:
		if !div {
			for i := len(g.vals) - 1; i >= 0; i-- {
				if v := g.vals[i]; v.name != x.name && slices.Equal(v.shape, x.shape) {
					return v.name
				}
			}
		}
		return g.floatConst(x.shape, lo, hi)
	default:
		return g.floatConstNode(x.shape[min(1, r):])
	}
}

// conv adds a Conv or ConvTranspose on the rank-4 (or 3+) x.
func (g *fzGen) conv(x fzValue, transpose bool) fzValue {
	f := g.f
	c, sd := x.shape[1], len(x.shape)-2
	group, m := int64(1), int64(1+f.intn(4))
	if c > 1 && f.intn(3) == 0 && (!transpose || f.intn(3) == 0) {
		group = c
		m = c * int64(1+f.intn(2))
	}
	k, s, p, d := int64(1+f.intn(3)), int64(1+f.intn(2)), int64(f.intn(2)), int64(1+f.intn(2))
	autoPad := ""
	if !transpose && f.intn(8) == 0 {
		autoPad = []string{"SAME_UPPER", "SAME_LOWER", "VALID"}[f.intn(3)]
		if autoPad != "VALID" {
			d = 1 // onnxruntime has no dilated SAME convolution
		}
	}
	outPad := int64(0)
	if transpose && s > 1 {
		outPad = int64(f.intn(int(s)))
	}
	out := []int64{x.shape[0], m}
	for i := range sd {
		h := x.shape[2+i]
		var o int64
		switch {
		case transpose:
			o = s*(h-1) + outPad + d*(k-1) + 1 - 2*p
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			o = (h + s - 1) / s
		case autoPad == "VALID":
			o = (h-d*(k-1)-1)/s + 1
			if h-d*(k-1)-1 < 0 {
				o = 0
			}
		default:
			o = (h+2*p-d*(k-1)-1)/s + 1
			if h+2*p-d*(k-1)-1 < 0 {
				o = 0
			}
		}
		if o <= 0 { // the kernel does not fit: a 1x1 kernel always does
			k, d, autoPad = 1, 1, ""
			return g.conv1(x, transpose, group, m, s, p, outPad)
		}
		out = append(out, o)
	}
	return g.convNode(x, transpose, group, m, k, s, p, d, outPad, autoPad, out)
}

// conv1 is conv with a 1x1 kernel.
func (g *fzGen) conv1(x fzValue, transpose bool, group, m, s, p, outPad int64) fzValue {
	out := []int64{x.shape[0], m}
	for _, h := range x.shape[2:] {
		if transpose {
			o := s*(h-1) + outPad + 1 - 2*p
			if o <= 0 {
				p = 0
				return g.conv1(x, transpose, group, m, s, p, outPad)
			}
			out = append(out, o)
		} else {
			out = append(out, (h+2*p-1)/s+1)
		}
	}
	return g.convNode(x, transpose, group, m, 1, s, p, 1, outPad, "", out)
}

func (g *fzGen) convNode(x fzValue, transpose bool, group, m, k, s, p, d, outPad int64, autoPad string, out []int64) fzValue {
	f := g.f
	c, sd := x.shape[1], len(x.shape)-2
	rep := func(v int64, n int) []int64 { return slices.Repeat([]int64{v}, n) }
	var attrs []*onnxpb.AttributeProto
	if f.intn(4) != 0 {
		attrs = append(attrs, onnxio.AttrInts("kernel_shape", rep(k, sd)...))
	}
	if s != 1 || f.bit() {
		attrs = append(attrs, onnxio.AttrInts("strides", rep(s, sd)...))
	}
	if autoPad != "" {
		attrs = append(attrs, onnxio.AttrString("auto_pad", autoPad))
	} else if p != 0 || f.bit() {
		attrs = append(attrs, onnxio.AttrInts("pads", rep(p, 2*sd)...))
	}
	if d != 1 || f.bit() {
		attrs = append(attrs, onnxio.AttrInts("dilations", rep(d, sd)...))
	}
	if group != 1 || f.bit() {
		attrs = append(attrs, onnxio.AttrInt("group", group))
	}
	if outPad != 0 {
		attrs = append(attrs, onnxio.AttrInts("output_padding", rep(outPad, sd)...))
	}
	wshape := append([]int64{m, c / group}, rep(k, sd)...)
	op := "Conv"
	if transpose {
		op = "ConvTranspose"
		wshape = append([]int64{c, m / group}, rep(k, sd)...)
	}
	ins := []string{x.name, g.weight(wshape)}
	if f.intn(3) != 0 {
		bl := m
		if f.rare() {
			bl++
			g.broken = true
		}
		ins = append(ins, g.floatConst([]int64{bl}, -1, 1))
	}
	return g.push(g.node(op, ins, 1, attrs...)[0], out)
}

// gemm adds a Gemm on the rank-2 x.
func (g *fzGen) gemm(x fzValue) fzValue {
	f := g.f
	rows, inner := x.shape[0], x.shape[1]
	var attrs []*onnxpb.AttributeProto
	if f.intn(8) == 0 {
		attrs = append(attrs, onnxio.AttrInt("transA", 1))
		rows, inner = inner, rows
	}
	m := int64(1 + f.intn(6))
	w := []int64{inner, m}
	if f.bit() {
		attrs = append(attrs, onnxio.AttrInt("transB", 1))
		w = []int64{m, inner}
	}
	if f.bit() {
		attrs = append(attrs, onnxio.AttrFloat("alpha", []float32{1, 0.5, 2, -1}[f.intn(4)]))
	}
	if f.bit() {
		attrs = append(attrs, onnxio.AttrFloat("beta", []float32{1, 0.5, 2, -1}[f.intn(4)]))
	}
	ins := []string{x.name, g.weight(w)}
	if g.opset < 11 || f.intn(3) != 0 {
		switch f.intn(4) {
		case 0:
			ins = append(ins, g.floatConst([]int64{m}, -1, 1))
		case 1:
			ins = append(ins, g.floatConst([]int64{1, m}, -1, 1))
		case 2:
			ins = append(ins, g.floatConst([]int64{}, -1, 1))
		default:
			ins = append(ins, g.floatConst([]int64{rows, m}, -1, 1))
		}
	}
	return g.push(g.node("Gemm", ins, 1, attrs...)[0], []int64{rows, m})
}

// batchNorm adds an inference BatchNormalization on x (channels on dim 1).
func (g *fzGen) batchNorm(x fzValue) {
	f := g.f
	if len(x.shape) < 2 {
		return
	}
	c := []int64{x.shape[1]}
	if f.rare() {
		c[0]++
		g.broken = true
	}
	ins := []string{x.name, g.floatConst(c, 0.5, 2), g.floatConst(c, -1, 1), g.floatConst(c, -1, 1), g.floatConst(c, 0.1, 3)}
	var attrs []*onnxpb.AttributeProto
	if f.bit() {
		attrs = append(attrs, onnxio.AttrFloat("epsilon", []float32{1e-5, 1e-3, 0, 0.1}[f.intn(4)]))
	}
	if g.opset < 9 && f.intn(4) == 0 {
		spatial := int64(1)
		if f.rare() {
			spatial = 0
		}
		attrs = append(attrs, onnxio.AttrInt("spatial", spatial))
	}
	if g.opset >= 14 && f.intn(4) == 0 {
		attrs = append(attrs, onnxio.AttrInt("training_mode", 0))
	}
	g.push(g.node("BatchNormalization", ins, 1, attrs...)[0], x.shape)
}

// reshape adds a Reshape of x to another shape of its elements.
func (g *fzGen) reshape(x fzValue) {
	f := g.f
	n := int64(numel(x.shape))
	var target, out []int64
	lead := int64(1)
	if len(x.shape) > 0 {
		lead = x.shape[0]
	}
	rest := int64(0)
	if lead != 0 {
		rest = n / lead
	}
	switch f.intn(4) {
	case 0:
		target, out = []int64{0, -1}, []int64{lead, rest}
	case 1:
		target, out = []int64{-1}, []int64{n}
	case 2:
		target, out = []int64{lead, rest}, []int64{lead, rest}
	default:
		target, out = []int64{0, 1, -1}, []int64{lead, 1, rest}
	}
	if len(x.shape) == 0 && target[0] == 0 {
		target, out = []int64{1}, []int64{1}
	}
	if f.rare() {
		target = append(slices.Clone(target), 2)
		g.broken = true
	}
	g.push(g.node("Reshape", []string{x.name, g.ints(target...)}, 1)[0], out)
}

// unsqueeze adds an Unsqueeze of x at a random position.
func (g *fzGen) unsqueeze(x fzValue) {
	r := len(x.shape)
	pos := g.f.intn(r + 1)
	a := int64(pos)
	if g.opset >= 11 && g.f.bit() {
		a = int64(pos - r - 1)
	}
	out := slices.Insert(slices.Clone(x.shape), pos, 1)
	if g.opset < 13 {
		g.push(g.node("Unsqueeze", []string{x.name}, 1, onnxio.AttrInts("axes", a))[0], out)
		return
	}
	g.push(g.node("Unsqueeze", []string{x.name, g.ints(a)}, 1)[0], out)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// sliceLen is the length of dim d sliced from start to end by step, as ONNX clamps them.
func sliceLen(d, start, end, step int64) int64 {
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	if step > 0 {
		start, end = max(0, min(start, d)), max(0, min(end, d))
		return max(0, (end-start+step-1)/step)
	}
	start, end = max(0, min(start, d-1)), max(-1, min(end, d-1))
	return max(0, (start-end-step-1)/-step)
}

// slice adds a Slice of x along one axis.
func (g *fzGen) slice(x fzValue) {
	f := g.f
	r := len(x.shape)
	if r == 0 {
		return
	}
	a, ai := g.axis(r)
	if g.opset < 11 {
		a = int64(ai)
	}
	d := x.shape[ai]
	step := int64(1)
	if g.opset >= 10 {
		step = []int64{1, 1, 1, 2, -1, -2}[f.intn(6)]
	}
	start := int64(f.intn(int(2*d+3))) - d - 1
	var end int64
	switch f.intn(5) {
	case 0:
		end = d
	case 1:
		end = math.MaxInt64
	case 2:
		end = start + int64(1+f.intn(int(d+1)))
	case 3:
		end = -1
	default:
		end = -d - 5
	}
	if step < 0 && f.bit() {
		start, end = -1, math.MinInt64
	}
	out := slices.Clone(x.shape)
	out[ai] = sliceLen(d, start, end, step)
	if out[ai] == 0 {
		// No empty tensors: onnxruntime 1.30 dies of SIGFPE on some ops given one.
		start, end, out[ai] = 0, d, (d+abs(step)-1)/abs(step)
		if step < 0 {
			start, end = d-1, math.MinInt64
		}
	}
	omitAxes := ai == 0 && f.bit()
	if g.opset < 10 {
		attrs := []*onnxpb.AttributeProto{onnxio.AttrInts("starts", start), onnxio.AttrInts("ends", end)}
		if !omitAxes {
			attrs = append(attrs, onnxio.AttrInts("axes", a))
		}
		g.push(g.node("Slice", []string{x.name}, 1, attrs...)[0], out)
		return
	}
	ins := []string{x.name, g.ints(start), g.ints(end)}
	if !omitAxes || step != 1 {
		ins = append(ins, g.ints(a))
	}
	if step != 1 || f.intn(4) == 0 {
		ins = append(ins, g.ints(step))
	}
	g.push(g.node("Slice", ins, 1)[0], out)
}

// pool adds a MaxPool or AveragePool on the rank-4 (or 3+) x.
func (g *fzGen) pool(x fzValue, op string) {
	f := g.f
	sd := len(x.shape) - 2
	k, s := int64(1+f.intn(3)), int64(1+f.intn(2))
	p := int64(f.intn(int(k)))
	d := int64(1)
	if op == "MaxPool" && g.opset >= 10 && f.intn(4) == 0 {
		d = 2
	}
	ceil := g.opset >= 10 && f.intn(4) == 0
	out := slices.Clone(x.shape[:2])
	for _, h := range x.shape[2:] {
		span := h + 2*p - d*(k-1) - 1
		if span < 0 {
			k, p, d, ceil = 1, 0, 1, false
			g.pool1(x, op)
			return
		}
		o := span/s + 1
		if ceil && span%s != 0 {
			o++
			if (o-1)*s >= h+p { // the last window must start inside the input
				o--
			}
		}
		out = append(out, o)
	}
	rep := func(v int64, n int) []int64 { return slices.Repeat([]int64{v}, n) }
	attrs := []*onnxpb.AttributeProto{onnxio.AttrInts("kernel_shape", rep(k, sd)...)}
	if s != 1 || f.bit() {
		attrs = append(attrs, onnxio.AttrInts("strides", rep(s, sd)...))
	}
	if p != 0 || f.bit() {
		attrs = append(attrs, onnxio.AttrInts("pads", rep(p, 2*sd)...))
	}
	if d != 1 {
		attrs = append(attrs, onnxio.AttrInts("dilations", rep(d, sd)...))
	}
	if ceil {
		attrs = append(attrs, onnxio.AttrInt("ceil_mode", 1))
	}
	nOut := 1
	if op == "AveragePool" && f.bit() {
		attrs = append(attrs, onnxio.AttrInt("count_include_pad", 1))
	}
	if op == "MaxPool" && g.opset >= 8 && f.intn(4) == 0 {
		nOut = 2
	}
	g.push(g.node(op, []string{x.name}, nOut, attrs...)[0], out)
}

func (g *fzGen) pool1(x fzValue, op string) {
	sd := len(x.shape) - 2
	g.push(g.node(op, []string{x.name}, 1, onnxio.AttrInts("kernel_shape", slices.Repeat([]int64{1}, sd)...))[0], x.shape)
}

// pad adds a Pad of x.
func (g *fzGen) pad(x fzValue) {
	f := g.f
	r := len(x.shape)
	mode := []string{"constant", "constant", "edge", "reflect"}[f.intn(4)]
	if mode != "constant" && slices.Min(append([]int64{2}, x.shape...)) < 2 {
		mode = "constant" // onnxruntime wants 2 elements on every axis to reflect or extend
	}
	pads := make([]int64, 2*r)
	out := slices.Clone(x.shape)
	for i := range pads {
		ax := i % r
		v := int64(f.intn(3))
		if mode == "reflect" {
			v = min(v, x.shape[ax]-1)
		}
		if mode != "constant" && x.shape[ax] == 0 {
			v = 0
		}
		if f.rare() && out[ax] > 1 {
			v = -1 // crops
		}
		pads[i] = v
		out[ax] += v
	}
	value := float32(g.rng.NormFloat64())
	attrs := []*onnxpb.AttributeProto{onnxio.AttrString("mode", mode)}
	if g.opset < 11 {
		attrs = append(attrs, onnxio.AttrInts("pads", pads...))
		if mode == "constant" && f.bit() {
			attrs = append(attrs, onnxio.AttrFloat("value", value))
		}
		g.push(g.node("Pad", []string{x.name}, 1, attrs...)[0], out)
		return
	}
	ins := []string{x.name, g.ints(pads...)}
	if mode == "constant" && f.bit() {
		ins = append(ins, g.scalar(value))
	}
	g.push(g.node("Pad", ins, 1, attrs...)[0], out)
}

// fzORT is whether onnxruntime loads here; the targets then also run the models.
var fzORT = sync.OnceValue(func() bool { return ort.Init("") == nil })

// fzRun runs m on the feed with onnxruntime (no graph optimization, one thread).
func fzRun(m *onnxio.Model, feed map[string]*onnxio.Tensor) (map[string]*onnxio.Tensor, error) {
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(data, ort.Options{Optimization: "none", Threads: 1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	in := map[string]*onnxio.Tensor{}
	for _, v := range s.Inputs() {
		t, ok := feed[v.Name]
		if !ok {
			return nil, fmt.Errorf("no feed for input %q", v.Name)
		}
		in[v.Name] = t
	}
	return s.Run(in)
}

// fzSame reports how got differs from ref beyond float rounding: every output, of the
// same type and shape, NaN and infinities in the same places, the rest exact or within
// 80 dB SQNR.
func fzSame(ref, got map[string]*onnxio.Tensor) error {
	for name, a := range ref {
		b, ok := got[name]
		if !ok {
			return fmt.Errorf("output %q is missing", name)
		}
		if a.Type != b.Type || !slices.Equal(a.Shape, b.Shape) {
			return fmt.Errorf("output %q: %s%v, was %s%v", name, b.Type, b.Shape, a.Type, a.Shape)
		}
		da, ok1 := a.Data.([]float32)
		db, ok2 := b.Data.([]float32)
		if !ok1 || !ok2 {
			if fmt.Sprint(a.Data) != fmt.Sprint(b.Data) {
				return fmt.Errorf("output %q: %v, was %v", name, b.Data, a.Data)
			}
			continue
		}
		var sig, noise float64
		for i := range da {
			x, y := float64(da[i]), float64(db[i])
			if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
				if !(math.IsNaN(x) && math.IsNaN(y)) && x != y {
					return fmt.Errorf("output %q element %d: %v, was %v", name, i, y, x)
				}
				continue
			}
			sig += x * x
			noise += (x - y) * (x - y)
		}
		if noise > 0 && 10*math.Log10(sig/noise) < 80 {
			return fmt.Errorf("output %q: SQNR %.1f dB (got %v, was %v)", name, 10*math.Log10(sig/noise), db[:min(len(db), 8)], da[:min(len(da), 8)])
		}
	}
	return nil
}

// fzPrepareSeeds are inputs that give graphs of the ops Prepare rewrites (found by a
// search over random inputs; every one runs on onnxruntime, before and after Prepare).
var fzPrepareSeeds = []struct{ what, hex string }{
	{"empty: a Conv on x0 at opset 7", ""},
	{"BN folded into Conv", "f11f315bc4d3e921d1587ea90033cf102035365ae5e1c992e0f537bda8bf9df3ddf1084b3bee69cbd3c90c72a8ce5a1b318557117fc417e7393439790977"},
	{"BN folded into Gemm", "a6f18358aec4738b4172e0a57fdc0844d4871e2841db24071ea3a5449a5921b4a04d2723e5be55d1c46bc9dc8824d157c1781214f55957"},
	{"BN folded into ConvTranspose", "cd8fc2ad621fcaab0b8a67d50c00a5e5d15e492b320f8a6248ba49dacf16b37fe37d149a7b919f93e7a89329c8bc473c589986df2145c3423dca62bf5c7c"},
	{"opset 7: Slice, Squeeze and Softmax upgraded", "7378b955892b487b02e9c7fe0691bc59b149eb33362b8a691f4eed634a726c27439bc671550e4d519ac2"},
	{"Clip, Dropout and Pad upgraded", "3f0f62b24b4d39063004ad7eb77a48e22514010177c0ea768bb812c70c722d33fab5753946c6ffd3348a0a6abb98656fe6"},
	{"opset 9: TopK and Dropout upgraded", "0bf0c129f111f5a45348fc626044f29111efd112aa9c3a63e0021e804b6afa9eb93aba66135fdeedf38b93cf5deb8c7deb187a0c6414bb4ed5585643cc34"},
	{"Resize upgraded from opset 10", "c8b70e263001d11ef9aee87735a0a407248f45646b9427f65e88628ae44dc8d03304d11f526d61ba33323ac771f9f40685a1ccd2163da6541bb5bc"},
	{"Unsqueeze, ReduceSum and Split upgraded", "561d266814dee0d14dc61a4f435852cb017592cc466f9214f6acca334f4ff70e3809f2ffdb6982253fe476fc4abe2a"},
	{"Constants to initializers, MaxPool, Concat, Transpose", "02ff011e2962a1ba6352f2681e4ec7eaa6be029c16c0b40f6208c3146046ed2a9c6dafb13eceb3f82a5da7a0b074625fc2b49f3c824232"},
	{"MatMul and LayerNormalization at opset 17+", "ab3d2deccd1a9c62303acd1904faf43296fa05edb2af3b31ded09e93be"},
	{"Gather, AveragePool, GlobalAveragePool", "5e9a112b0c12b3ad1bcb2cc49c196d86f6dd98ce263c275a66ab85e327ab285831442e4ed872da574bcac55c"},
	{"every choice a corruption", strings.Repeat("ff", 40)},
}

func fzSeed(tb testing.TB, h string) []byte {
	b, err := hex.DecodeString(h)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fzPrepareOptions draws Prepare's options (FoldConstants stays off: it needs
// onnxruntime as its evaluator).
func fzPrepareOptions(f *fzBytes) PrepareOptions {
	o := PrepareOptions{FoldBatchNorm: f.next()%4 != 0, ConstantsToInitializers: f.next()%4 != 0}
	switch f.intn(4) {
	case 1, 2:
		o.MinOpset = 7 + int64(f.intn(15))
	case 3:
		o.MinOpset = []int64{-1, 6, 22, 25}[f.intn(4)]
	}
	return o
}

// FuzzPrepare: Prepare on a random graph never panics, a graph it accepts passes
// onnxio.Check, and where onnxruntime runs the original graph the prepared one computes
// the same outputs (within float rounding: folding a BatchNormalization rounds
// differently).
func FuzzPrepare(f *testing.F) {
	for _, s := range fzPrepareSeeds {
		f.Add(fzSeed(f, s.hex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			t.Skip()
		}
		fb := &fzBytes{b: data}
		opts := fzPrepareOptions(fb)
		m, feed, broken := fzGraph(fb)
		orig := m.Clone()
		_, err := Prepare(m, opts)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Prepare returned an empty error")
			}
			return
		}
		if err := onnxio.Check(m); err != nil {
			t.Fatalf("Prepare(%+v) returned a model that fails onnxio.Check: %v", opts, err)
		}
		if broken || !fzORT() {
			return
		}
		ref, err := fzRun(orig, feed)
		if err != nil {
			return // onnxruntime does not take the original: nothing to compare
		}
		got, err := fzRun(m, feed)
		if err != nil {
			t.Fatalf("Prepare(%+v): onnxruntime ran the original model but not the prepared one: %v", opts, err)
		}
		if err := fzSame(ref, got); err != nil {
			t.Fatalf("Prepare(%+v) changed what the model computes: %v", opts, err)
		}
	})
}

// fzRange is a calibrated range for FuzzStatic: mostly plausible, sometimes NaN,
// infinite, empty, inverted, huge or tiny.
func fzRange(f *fzBytes, rng *rand.Rand) *calibrate.TensorRange {
	lo, hi := -rng.Float32()*4, rng.Float32()*4
	switch f.intn(24) {
	case 1:
		lo = float32(math.NaN())
	case 2:
		hi = float32(math.Inf(1))
	case 3:
		lo = float32(math.Inf(-1))
	case 4:
		lo, hi = hi, lo
	case 5:
		lo, hi = 0, 0
	case 6:
		lo, hi = 1.5, 1.5
	case 7:
		lo, hi = -3e38, 3e38
	case 8:
		lo, hi = 0, 1e-40
	case 9:
		lo = 0.5 // min above zero
	case 10:
		hi = -0.5 // max below zero
	case 11:
		r := &calibrate.TensorRange{Min: lo, Max: hi} // Count 0: never calibrated
		return r
	}
	r := &calibrate.TensorRange{Min: lo, Max: hi, ObservedMin: lo, ObservedMax: hi, Count: 10}
	return r
}

// fzOptions draws quantization options, now and then invalid ones.
func fzOptions(f *fzBytes, names []string) Options {
	o := Options{
		ActivationType: []onnxio.DataType{onnxio.TypeUint8, onnxio.TypeInt8, onnxio.TypeUint16, onnxio.TypeInt16, onnxio.TypeUndefined, onnxio.TypeUint8}[f.intn(6)],
		WeightType:     []onnxio.DataType{onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeUndefined, onnxio.TypeInt8}[f.intn(4)],
		Profile:        []string{"", ProfileCPU, ProfileTensorRT}[f.intn(3)],
	}
	if f.rare() {
		switch f.intn(3) {
		case 0:
			o.ActivationType = onnxio.TypeFloat
		case 1:
			o.WeightType = onnxio.TypeInt16
		default:
			o.Profile = "gpu"
		}
	}
	bits := f.next()
	o.ActivationSymmetric, o.WeightSymmetric, o.PerChannel, o.ReduceRange = bits&1 != 0, bits&2 != 0, bits&4 != 0, bits&8 != 0
	if f.intn(4) == 3 {
		ops := SupportedOps()
		for range 1 + f.intn(3) {
			o.OpTypes = append(o.OpTypes, ops[f.intn(len(ops))])
		}
		if f.rare() {
			o.OpTypes = append(o.OpTypes, "Foo")
		}
	}
	if f.intn(4) == 3 && len(names) > 0 {
		switch f.intn(4) {
		case 0:
			o.ExcludeNodes = []string{names[f.intn(len(names))]}
		case 1:
			o.ExcludeNodes = []string{"Conv*", "*Gemm*"}
		case 2:
			o.ExcludeNodes = []string{"*"}
		default:
			if f.rare() {
				o.ExcludeNodes = []string{"["}
			}
		}
	}
	return o
}

// fzOverrides draws overrides for some of the tensors.
func fzOverrides(f *fzBytes, tensors []string) map[string]Override {
	if f.intn(4) != 3 || len(tensors) == 0 {
		return nil
	}
	out := map[string]Override{}
	for range 1 + f.intn(2) {
		var ov Override
		ov.Type = []string{"", "", "int8", "uint8", "int16", "uint16"}[f.intn(6)]
		if f.rare() {
			ov.Type = []string{"float", "bogus"}[f.intn(2)]
		}
		if f.bit() {
			s := f.bit()
			ov.Symmetric = &s
		}
		if f.bit() {
			lo, hi := float32(-1), float32(f.intn(4))
			if f.rare() {
				lo = float32(math.NaN())
			}
			ov.Min, ov.Max = &lo, &hi
		}
		out[tensors[f.intn(len(tensors))]] = ov
	}
	return out
}

// fzStaticChoices seed FuzzStatic's choices, one byte each: [0] Prepare first (3:
// not), [1] the ranges' random seed, [2] activation type (0 uint8, 1 int8, 2 uint16,
// 3 int16), [3] weight type (0 int8, 1 uint8), [4] profile (1 cpu, 2 tensorrt), [5] an
// invalid option (240 and up), [6] bits: 1 activations symmetric, 2 weights symmetric,
// 4 per channel, 8 reduce range; then op types, excluded nodes, one or two bytes per
// tensor's range, overrides. 0 is the default everywhere.
var fzStaticChoices = []string{
	"",                            // the defaults: every tensor a plausible range
	"00000000000006",              // symmetric per-channel weights
	"0007010002000f",              // int8 activations, tensorrt, every bit
	"00030300000004",              // int16 activations, per channel
	"0300000000000003" + "000000", // Static without Prepare, op types chosen
	"0005000000f001" + strings.Repeat("0102030405060708090a0b", 3), // an invalid option, odd ranges
}

// FuzzStatic: Static on a random (prepared) graph with a random calibration table and
// random options never panics, a model it returns without error passes onnxio.Check,
// and where onnxruntime runs the graph before Static (one not broken on purpose) it runs
// the quantized one too.
func FuzzStatic(f *testing.F) {
	for _, s := range fzPrepareSeeds {
		for _, c := range fzStaticChoices {
			f.Add(fzSeed(f, s.hex), fzSeed(f, c))
		}
	}
	f.Fuzz(func(t *testing.T, graph, choices []byte) {
		if len(graph) > 4096 || len(choices) > 4096 {
			t.Skip()
		}
		gb := &fzBytes{b: graph}
		popts := fzPrepareOptions(gb) // as FuzzPrepare reads them: the seeds are the same graphs
		popts.MinOpset = max(popts.MinOpset, 13)
		m, feed, broken := fzGraph(gb)
		fb := &fzBytes{b: choices}
		if fb.intn(4) != 3 {
			_, _ = Prepare(m, popts)
		}
		before := m.Clone()
		var tensors, nodes []string
		for _, vi := range m.Graph().GetInput() {
			tensors = append(tensors, vi.GetName())
		}
		for _, n := range m.Graph().GetNode() {
			nodes = append(nodes, n.GetName())
			tensors = append(tensors, n.GetOutput()...)
		}
		rng := rand.New(rand.NewPCG(uint64(fb.next()), 3))
		opts := fzOptions(fb, nodes)
		table := &calibrate.Table{SchemaVersion: calibrate.SchemaVersion, Method: "minmax", Tensors: map[string]*calibrate.TensorRange{}}
		for _, name := range tensors {
			if name != "" && fb.intn(8) != 7 {
				table.Tensors[name] = fzRange(fb, rng)
			}
		}
		opts.Overrides = fzOverrides(fb, tensors)
		res, err := Static(m, table, opts)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Static returned an empty error")
			}
			return
		}
		if res == nil {
			t.Fatal("Static returned neither a result nor an error")
		}
		if err := onnxio.Check(m); err != nil {
			t.Fatalf("Static(%+v) returned a model that fails onnxio.Check: %v", opts, err)
		}
		if broken || !fzORT() {
			return
		}
		if _, err := fzRun(before, feed); err != nil {
			return
		}
		if _, err := fzRun(m, feed); err != nil {
			t.Fatalf("Static(%+v): onnxruntime ran the model but not the quantized one: %v", opts, err)
		}
	})
}

package fp16

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// FoldReport says what FoldShapes did.
type FoldReport struct {
	// ValuesFolded counts int64/int32 values computed from shapes that the declared
	// shapes make constant, now initializers.
	ValuesFolded int `json:"values_folded"`
	// ReshapesFolded counts Reshape nodes whose shape input, computed from shapes with one
	// element depending on a dynamic dimension, became a constant with -1 there.
	ReshapesFolded int `json:"reshapes_folded"`
	// NodesRemoved counts the nodes removed (the folded ones and the shape arithmetic
	// nothing reads any more).
	NodesRemoved int `json:"nodes_removed"`
	// BytesBefore and BytesAfter are the serialized model sizes.
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
}

func (r *FoldReport) String() string {
	return fmt.Sprintf("%d shape values and %d Reshape targets folded, %d nodes removed, %d -> %d bytes",
		r.ValuesFolded, r.ReshapesFolded, r.NodesRemoved, r.BytesBefore, r.BytesAfter)
}

// FoldShapes folds the shape arithmetic of m's main graph that the graph's declared
// shapes make constant, in place. Exporters that keep a dynamic axis (PyTorch's
// multi-head attention, for one) compute Reshape targets at run time:
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, with int64 Constants between. With
// the graph inputs' declared shapes, most of those numbers are known: FoldShapes
// propagates shapes through the ops it has rules for (elementwise and broadcasting ops,
// MatMul, Gemm, Transpose, Reshape, Slice, Gather, Concat, (Un)Squeeze, Flatten,
// reductions), tracks small int64/int32 vectors element by element, and
//
//   - replaces every such value that is fully known by an initializer;
//   - gives a Reshape whose target has exactly one unknown element (the one that
//     depends on the dynamic axis) a constant target with -1 there. This is exact: a
//     Reshape that runs keeps the element count, so the one unknown entry can only be
//     what -1 infers;
//   - removes the nodes nothing reads any more.
//
// An op without a rule makes its outputs' shapes unknown, so nothing is folded from
// them: the pass only uses what it can prove from the declared shapes (onnxruntime
// rejects inputs that contradict them). Subgraphs are left alone. Models of IR < 4
// (initializers must be graph inputs there) are returned unchanged.
func FoldShapes(m *onnxio.Model) (*FoldReport, error) {
	if m == nil || m.Proto == nil || m.Proto.Graph == nil {
		return nil, fmt.Errorf("fp16: the model has no graph")
	}
	rep := &FoldReport{BytesBefore: int64(proto.Size(m.Proto))}
	defer func() { rep.BytesAfter = int64(proto.Size(m.Proto)) }()
	if m.Proto.GetIrVersion() < 4 {
		return rep, nil
	}
	g := m.Graph()
	if err := onnxio.TopoSort(g); err != nil {
		return nil, fmt.Errorf("fp16: %w", err)
	}
	f := newGraphShapeFolder(g, m.Opset(""))
	outputs := map[string]bool{}
	for _, vi := range g.GetOutput() {
		outputs[vi.GetName()] = true
	}
	declared := declaredShapes(g)
	namer := onnxio.NewNamer(g)
	remove := map[*onnxpb.NodeProto]bool{}
	var newInits []*onnxpb.TensorProto
	for _, n := range g.GetNode() {
		if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" || len(onnxio.Subgraphs(n)) > 0 {
			continue
		}
		f.learn(n, declared)
		if p := f.foldableValue(n, outputs); p != nil {
			newInits = append(newInits, p.tensor(n.GetOutput()[0]))
			remove[n] = true
			rep.ValuesFolded++
			continue
		}
		if q := f.reshapeTarget(n); q != nil {
			name := namer.Name(n.GetInput()[1] + "_folded")
			newInits = append(newInits, q.tensor(name))
			n.Input[1] = name
			rep.ReshapesFolded++
		}
	}
	if len(newInits) == 0 {
		return rep, nil
	}
	before := len(g.GetNode())
	onnxio.RemoveNodes(g, remove)
	g.Initializer = append(g.Initializer, newInits...)
	onnxio.RemoveDeadNodes(g)
	onnxio.RemoveUnusedInitializers(g)
	rep.NodesRemoved = before - len(g.GetNode())
	if err := onnxio.Check(m); err != nil {
		return nil, fmt.Errorf("fp16: FoldShapes left an invalid graph (a bug): %w", err)
	}
	return rep, nil
}

// newGraphShapeFolder returns a shapeFolder that knows the shapes of g's initializers
// and the declared shapes of its other inputs, and the values of its small integer
// initializers.
func newGraphShapeFolder(g *onnxpb.GraphProto, opset int64) *shapeFolder {
	f := &shapeFolder{shapes: map[string][]int64{}, vals: map[string]*partial{}, opset: opset}
	for _, t := range g.GetInitializer() {
		f.shapes[t.GetName()] = append([]int64{}, t.GetDims()...)
		if p := constPartial(t); p != nil {
			f.vals[t.GetName()] = p
		}
	}
	for _, vi := range g.GetInput() {
		if _, ok := f.shapes[vi.GetName()]; ok {
			continue // an initializer's default
		}
		if dims, _, ok := onnxio.ValueShape(vi); ok {
			f.shapes[vi.GetName()] = append([]int64{}, dims...)
		}
	}
	return f
}

// declaredShapes returns the shapes g's value_info declares, by value name.
func declaredShapes(g *onnxpb.GraphProto) map[string][]int64 {
	declared := map[string][]int64{}
	for _, vi := range g.GetValueInfo() {
		if dims, _, ok := onnxio.ValueShape(vi); ok {
			declared[vi.GetName()] = append([]int64{}, dims...)
		}
	}
	return declared
}

// learn records the output shapes (else the declared ones) and partial values that n's
// rule gives.
func (f *shapeFolder) learn(n *onnxpb.NodeProto, declared map[string][]int64) {
	shapes, vals := f.node(n)
	for i, out := range n.GetOutput() {
		if out == "" {
			continue
		}
		if i < len(shapes) && shapes[i] != nil {
			f.shapes[out] = shapes[i]
		} else if d, ok := declared[out]; ok {
			f.shapes[out] = d
		}
		if i < len(vals) && vals[i] != nil {
			f.vals[out] = vals[i]
		}
	}
}

// foldableValue returns the value of n's single output when it is fully known, n is not
// a Constant and the output is not a graph output; else nil.
func (f *shapeFolder) foldableValue(n *onnxpb.NodeProto, outputs map[string]bool) *partial {
	if n.GetOpType() == "Constant" || len(n.GetOutput()) != 1 || outputs[n.GetOutput()[0]] {
		return nil
	}
	if p := f.vals[n.GetOutput()[0]]; p != nil && p.known() {
		return p
	}
	return nil
}

// reshapeTarget returns, for a Reshape whose target has exactly one unknown element
// and known elements that are dimensions (or 0), that target with -1 in the unknown
// place; else nil.
func (f *shapeFolder) reshapeTarget(n *onnxpb.NodeProto) *partial {
	if n.GetOpType() != "Reshape" || len(n.GetInput()) != 2 {
		return nil
	}
	p := f.vals[n.GetInput()[1]]
	if p == nil || p.scalar || p.unknown() != 1 || attrInt(n, "allowzero", 0) != 0 {
		return nil
	}
	// The known elements must be dimensions (or 0: copy the input's); a known -1 would
	// leave two to infer.
	if slices.ContainsFunc(p.v, func(v int64) bool { return v < 0 }) {
		return nil
	}
	q := p.clone()
	for i := range q.v {
		if !q.ok[i] {
			q.v[i], q.ok[i] = -1, true
		}
	}
	return q
}

// partial is a small integer vector (or scalar) with some elements known.
type partial struct {
	dt     onnxio.DataType // TypeInt64 or TypeInt32
	scalar bool
	v      []int64
	ok     []bool
}

const maxPartial = 64

func (p *partial) known() bool { return p.unknown() == 0 }

func (p *partial) unknown() int {
	n := 0
	for _, k := range p.ok {
		if !k {
			n++
		}
	}
	return n
}

func (p *partial) clone() *partial {
	return &partial{dt: p.dt, scalar: p.scalar, v: slices.Clone(p.v), ok: slices.Clone(p.ok)}
}

// tensor encodes a fully known p as an initializer.
func (p *partial) tensor(name string) *onnxpb.TensorProto {
	var shape []int64
	if !p.scalar {
		shape = []int64{int64(len(p.v))}
	}
	var t *onnxio.Tensor
	if p.dt == onnxio.TypeInt32 {
		d := make([]int32, len(p.v))
		for i, v := range p.v {
			d[i] = int32(v)
		}
		t = onnxio.NewTensor(shape, d)
	} else {
		t = onnxio.NewTensor(shape, slices.Clone(p.v))
	}
	tp, err := onnxio.EncodeTensor(name, t)
	if err != nil {
		panic("fp16: encoding an int tensor: " + err.Error()) // cannot happen for int32/int64
	}
	return tp
}

// constPartial reads a small int64/int32 tensor of rank 0 or 1.
func constPartial(t *onnxpb.TensorProto) *partial {
	dt := onnxio.DataType(t.GetDataType())
	if dt != onnxio.TypeInt64 && dt != onnxio.TypeInt32 || len(t.GetDims()) > 1 || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil
	}
	if len(t.GetDims()) == 1 && t.GetDims()[0] > maxPartial {
		return nil
	}
	x, err := onnxio.DecodeTensor(t)
	if err != nil {
		return nil
	}
	p := &partial{dt: dt, scalar: len(t.GetDims()) == 0}
	switch d := x.Data.(type) {
	case []int64:
		p.v = slices.Clone(d)
	case []int32:
		for _, v := range d {
			p.v = append(p.v, int64(v))
		}
	default:
		return nil
	}
	p.ok = make([]bool, len(p.v))
	for i := range p.ok {
		p.ok[i] = true
	}
	return p
}

type shapeFolder struct {
	shapes map[string][]int64 // known rank; -1 for an unknown dimension
	vals   map[string]*partial
	opset  int64
}

func (f *shapeFolder) shape(name string) []int64 {
	if name == "" {
		return nil
	}
	return f.shapes[name]
}

// ints returns the fully known values of input i of n (nil when absent or not known).
func (f *shapeFolder) ints(n *onnxpb.NodeProto, i int) []int64 {
	if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
		return nil
	}
	p := f.vals[n.GetInput()[i]]
	if p == nil || !p.known() {
		return nil
	}
	return p.v
}

func hasInput(n *onnxpb.NodeProto, i int) bool {
	return i < len(n.GetInput()) && n.GetInput()[i] != ""
}

func attrInts(n *onnxpb.NodeProto, name string) ([]int64, bool) {
	a := onnxio.Attr(n, name)
	if a == nil || a.GetType() != onnxpb.AttributeProto_INTS {
		return nil, false
	}
	return a.GetInts(), true
}

// unaryShape lists ops whose first output has the shape of input 0.
var unaryShape = map[string]bool{
	"Abs": true, "Acos": true, "Asin": true, "Atan": true, "Cast": true, "Ceil": true, "Celu": true,
	"Clip": true, "Cos": true, "Dropout": true, "Elu": true, "Erf": true, "Exp": true, "Floor": true,
	"Gelu": true, "HardSigmoid": true, "HardSwish": true, "Identity": true, "IsInf": true,
	"IsNaN": true, "LayerNormalization": true, "LeakyRelu": true, "Log": true, "LogSoftmax": true,
	"Mish": true, "Neg": true, "Not": true, "Reciprocal": true, "Relu": true, "Round": true,
	"Selu": true, "Sigmoid": true, "Sign": true, "Sin": true, "Softmax": true, "Softplus": true,
	"Softsign": true, "Sqrt": true, "Tan": true, "Tanh": true, "ThresholdedRelu": true,
	"BatchNormalization": true, "InstanceNormalization": true, "GroupNormalization": true,
	"RMSNormalization": true, "LpNormalization": true, "CumSum": true, "Hardmax": true,
}

// broadcastShape lists ops whose output is the multidirectional broadcast of the inputs.
var broadcastShape = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Mod": true, "Equal": true,
	"Greater": true, "GreaterOrEqual": true, "Less": true, "LessOrEqual": true, "And": true,
	"Or": true, "Xor": true, "Where": true, "Max": true, "Min": true, "Sum": true, "Mean": true,
	"PRelu": true, "BitShift": true,
}

// node returns the shapes (nil: unknown) and partial values of n's outputs.
func (f *shapeFolder) node(n *onnxpb.NodeProto) ([][]int64, []*partial) {
	outs := make([][]int64, len(n.GetOutput()))
	vals := make([]*partial, len(n.GetOutput()))
	if len(outs) == 0 {
		return outs, vals
	}
	in := func(i int) []int64 {
		if i >= len(n.GetInput()) {
			return nil
		}
		return f.shape(n.GetInput()[i])
	}
	inVal := func(i int) *partial {
		if !hasInput(n, i) {
			return nil
		}
		return f.vals[n.GetInput()[i]]
	}
	op := n.GetOpType()
	switch {
	case unaryShape[op]:
		if s := in(0); s != nil {
			outs[0] = slices.Clone(s)
		}
		if op == "Identity" {
			vals[0] = inVal(0)
		}
		if op == "Cast" {
			if p := inVal(0); p != nil {
				if to := onnxio.DataType(attrInt(n, "to", 0)); to == onnxio.TypeInt64 || to == onnxio.TypeInt32 && p.dt == onnxio.TypeInt32 {
					q := p.clone()
					q.dt = to
					vals[0] = q
				}
			}
		}
	case broadcastShape[op]:
		var s []int64
		for i := range n.GetInput() {
			si := in(i)
			if si == nil {
				s = nil
				break
			}
			if i == 0 {
				s = slices.Clone(si)
				continue
			}
			if s = broadcast(s, si); s == nil {
				break
			}
		}
		outs[0] = s
		if len(n.GetInput()) == 2 {
			vals[0] = arith(op, inVal(0), inVal(1))
		}
	}
	switch op {
	case "Constant":
		if t, ok := onnxio.ConstantNodeTensor(n); ok {
			outs[0] = append([]int64{}, t.GetDims()...)
			vals[0] = constPartial(t)
		}
	case "Shape":
		s := in(0)
		if s == nil {
			break
		}
		r := int64(len(s))
		start, end := attrInt(n, "start", 0), attrInt(n, "end", r)
		start, end = clampIndex(start, r), clampIndex(end, r)
		p := &partial{dt: onnxio.TypeInt64}
		for i := start; i < end; i++ {
			p.v = append(p.v, max(s[i], 0))
			p.ok = append(p.ok, s[i] >= 0)
		}
		outs[0] = []int64{int64(len(p.v))}
		vals[0] = p
	case "Size":
		outs[0] = []int64{}
	case "Transpose":
		s := in(0)
		if s == nil {
			break
		}
		perm, ok := attrInts(n, "perm")
		if !ok {
			for i := len(s) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != len(s) {
			break
		}
		o := make([]int64, len(s))
		for i, p := range perm {
			if p < 0 || int(p) >= len(s) {
				return outs, vals
			}
			o[i] = s[p]
		}
		outs[0] = o
	case "MatMul":
		outs[0] = matmulShape(in(0), in(1))
	case "Gemm":
		a, b := in(0), in(1)
		if len(a) != 2 || len(b) != 2 {
			break
		}
		m := a[0]
		if attrInt(n, "transA", 0) != 0 {
			m = a[1]
		}
		nn := b[1]
		if attrInt(n, "transB", 0) != 0 {
			nn = b[0]
		}
		outs[0] = []int64{m, nn}
	case "Reshape":
		outs[0] = reshapeShape(in(0), inVal(1), attrInt(n, "allowzero", 0) != 0)
	case "Flatten":
		s := in(0)
		if s == nil {
			break
		}
		axis := attrInt(n, "axis", 1)
		if axis < 0 {
			axis += int64(len(s))
		}
		if axis < 0 || axis > int64(len(s)) {
			break
		}
		outs[0] = []int64{product(s[:axis]), product(s[axis:])}
	case "Unsqueeze", "Squeeze":
		s := in(0)
		if s == nil {
			break
		}
		axes, ok := attrInts(n, "axes")
		if f.opset >= 13 {
			axes, ok = f.ints(n, 1), hasInput(n, 1)
			if ok && axes == nil {
				break // axes computed at run time
			}
		}
		if op == "Unsqueeze" {
			outs[0] = unsqueezeShape(s, axes)
		} else {
			outs[0] = squeezeShape(s, axes, ok)
		}
		if p := inVal(0); p != nil && outs[0] != nil && len(outs[0]) <= 1 && len(p.v) == int(product(outs[0])) {
			q := p.clone()
			q.scalar = len(outs[0]) == 0
			vals[0] = q
		}
	case "Concat":
		var shapes [][]int64
		for i := range n.GetInput() {
			s := in(i)
			if s == nil {
				return outs, vals
			}
			shapes = append(shapes, s)
		}
		outs[0] = concatShape(shapes, attrInt(n, "axis", 0))
		if len(outs[0]) == 1 {
			p := &partial{}
			for i := range n.GetInput() {
				q := inVal(i)
				if q == nil || q.scalar || p.dt != 0 && q.dt != p.dt {
					return outs, vals
				}
				p.dt = q.dt
				p.v = append(p.v, q.v...)
				p.ok = append(p.ok, q.ok...)
			}
			vals[0] = p
		}
	case "Gather":
		data, idx := in(0), in(1)
		if data == nil || idx == nil {
			break
		}
		axis := attrInt(n, "axis", 0)
		if axis < 0 {
			axis += int64(len(data))
		}
		if axis < 0 || axis >= int64(len(data)) {
			break
		}
		o := append(slices.Clone(data[:axis]), idx...)
		outs[0] = append(o, data[axis+1:]...)
		p, ix := inVal(0), f.ints(n, 1)
		if p != nil && !p.scalar && ix != nil && axis == 0 && len(idx) <= 1 {
			q := &partial{dt: p.dt, scalar: len(idx) == 0}
			for _, i := range ix {
				if i < 0 {
					i += int64(len(p.v))
				}
				if i < 0 || i >= int64(len(p.v)) {
					return outs, vals
				}
				q.v, q.ok = append(q.v, p.v[i]), append(q.ok, p.ok[i])
			}
			vals[0] = q
		}
	case "Slice":
		s := in(0)
		if s == nil || f.opset < 10 {
			break
		}
		starts, ends := f.ints(n, 1), f.ints(n, 2)
		if starts == nil || ends == nil || len(starts) != len(ends) {
			break
		}
		axes := f.ints(n, 3)
		if hasInput(n, 3) && axes == nil {
			break
		}
		steps := f.ints(n, 4)
		if hasInput(n, 4) && steps == nil {
			break
		}
		o := slices.Clone(s)
		for i := range starts {
			ax := int64(i)
			if axes != nil {
				ax = axes[i]
			}
			if ax < 0 {
				ax += int64(len(s))
			}
			step := int64(1)
			if steps != nil {
				step = steps[i]
			}
			if ax < 0 || ax >= int64(len(s)) || step == 0 {
				return outs, vals
			}
			if s[ax] < 0 {
				o[ax] = -1
				continue
			}
			o[ax] = sliceLen(s[ax], starts[i], ends[i], step)
		}
		outs[0] = o
		if p := inVal(0); p != nil && !p.scalar && len(s) == 1 && len(starts) == 1 && (axes == nil || axes[0] == 0 || axes[0] == -1) {
			step := int64(1)
			if steps != nil {
				step = steps[0]
			}
			if step == 1 {
				r := int64(len(p.v))
				lo, hi := clampIndex(starts[0], r), clampIndex(ends[0], r)
				q := &partial{dt: p.dt}
				if hi > lo {
					q.v, q.ok = slices.Clone(p.v[lo:hi]), slices.Clone(p.ok[lo:hi])
				}
				vals[0] = q
			}
		}
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare":
		s := in(0)
		if s == nil {
			break
		}
		axes, _ := attrInts(n, "axes")
		if op == "ReduceSum" && f.opset >= 13 || f.opset >= 18 {
			axes = f.ints(n, 1)
			if hasInput(n, 1) && axes == nil {
				break
			}
			if axes == nil && attrInt(n, "noop_with_empty_axes", 0) != 0 {
				outs[0] = slices.Clone(s)
				break
			}
		}
		outs[0] = reduceShape(s, axes, attrInt(n, "keepdims", 1) != 0)
	case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
		s := in(0)
		if len(s) >= 2 {
			o := slices.Clone(s)
			for i := 2; i < len(o); i++ {
				o[i] = 1
			}
			outs[0] = o
		}
	}
	return outs, vals
}

func clampIndex(i, r int64) int64 {
	if i < 0 {
		i += r
	}
	return min(max(i, 0), r)
}

// sliceLen is the length of dimension d sliced by start:end:step (ONNX Slice clamping).
func sliceLen(d, start, end, step int64) int64 {
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	if step > 0 {
		start, end = min(max(start, 0), d), min(max(end, 0), d)
		if end <= start {
			return 0
		}
		return (end - start + step - 1) / step
	}
	start, end = min(max(start, -1), d-1), min(max(end, -1), d-1)
	if start <= end {
		return 0
	}
	return (start - end - step - 1) / -step
}

func product(s []int64) int64 {
	p := int64(1)
	for _, d := range s {
		if d < 0 {
			return -1
		}
		p *= d
	}
	return p
}

// broadcast is the multidirectional broadcast of a and b (nil when they cannot).
func broadcast(a, b []int64) []int64 {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := 0; i < n; i++ {
		x, y := int64(1), int64(1)
		if j := len(a) - n + i; j >= 0 {
			x = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			y = b[j]
		}
		switch {
		case x == y:
			out[i] = x
		case x == 1:
			out[i] = y
		case y == 1:
			out[i] = x
		case x < 0: // x is 1 or y
			out[i] = y
		case y < 0:
			out[i] = x
		default:
			return nil
		}
	}
	return out
}

func matmulShape(a, b []int64) []int64 {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	aa, bb := a, b
	if len(a) == 1 {
		aa = []int64{1, a[0]}
	}
	if len(b) == 1 {
		bb = []int64{b[0], 1}
	}
	batch := broadcast(aa[:len(aa)-2], bb[:len(bb)-2])
	if batch == nil && (len(aa) > 2 || len(bb) > 2) {
		return nil
	}
	out := append(batch, aa[len(aa)-2], bb[len(bb)-1])
	if len(b) == 1 {
		out = out[:len(out)-1]
	}
	if len(a) == 1 {
		out = append(out[:len(out)-2], out[len(out)-1:]...)
	}
	return out
}

// reshapeShape is Reshape's output shape for input shape s and target p.
func reshapeShape(s []int64, p *partial, allowzero bool) []int64 {
	if p == nil || p.scalar {
		return nil
	}
	out := make([]int64, len(p.v))
	infer := -1
	for i, v := range p.v {
		switch {
		case !p.ok[i]:
			out[i] = -1
		case v == -1:
			if infer >= 0 {
				return nil
			}
			infer, out[i] = i, -1
		case v == 0 && !allowzero:
			if s == nil || i >= len(s) {
				return nil
			}
			out[i] = s[i]
		case v < 0:
			return nil
		default:
			out[i] = v
		}
	}
	if infer >= 0 && s != nil {
		total, rest := product(s), product(append(slices.Clone(out[:infer]), out[infer+1:]...))
		if total >= 0 && rest > 0 && total%rest == 0 {
			out[infer] = total / rest
		}
	}
	return out
}

func unsqueezeShape(s, axes []int64) []int64 {
	r := int64(len(s) + len(axes))
	ins := map[int64]bool{}
	for _, a := range axes {
		if a < 0 {
			a += r
		}
		if a < 0 || a >= r || ins[a] {
			return nil
		}
		ins[a] = true
	}
	out := make([]int64, 0, r)
	j := 0
	for i := int64(0); i < r; i++ {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, s[j])
			j++
		}
	}
	return out
}

func squeezeShape(s, axes []int64, given bool) []int64 {
	drop := map[int64]bool{}
	if !given || len(axes) == 0 {
		for i, d := range s {
			if d < 0 {
				return nil // might be 1
			}
			if d == 1 {
				drop[int64(i)] = true
			}
		}
	}
	for _, a := range axes {
		if a < 0 {
			a += int64(len(s))
		}
		if a < 0 || a >= int64(len(s)) {
			return nil
		}
		drop[a] = true
	}
	out := []int64{}
	for i, d := range s {
		if !drop[int64(i)] {
			out = append(out, d)
		}
	}
	return out
}

func concatShape(shapes [][]int64, axis int64) []int64 {
	r := int64(len(shapes[0]))
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nil
	}
	out := slices.Clone(shapes[0])
	for _, s := range shapes[1:] {
		if int64(len(s)) != r {
			return nil
		}
		for i := range s {
			switch {
			case int64(i) == axis:
				if out[i] < 0 || s[i] < 0 {
					out[i] = -1
				} else {
					out[i] += s[i]
				}
			case out[i] < 0:
				out[i] = s[i]
			}
		}
	}
	return out
}

func reduceShape(s, axes []int64, keep bool) []int64 {
	red := map[int64]bool{}
	for _, a := range axes {
		if a < 0 {
			a += int64(len(s))
		}
		if a < 0 || a >= int64(len(s)) {
			return nil
		}
		red[a] = true
	}
	out := []int64{}
	for i, d := range s {
		switch {
		case len(axes) > 0 && !red[int64(i)]:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	return out
}

// arith is Add, Sub, Mul or Div of two partial integer values (a scalar or one-element
// vector broadcasts); Div only for non-negative operands, where truncation and floor
// agree.
func arith(op string, a, b *partial) *partial {
	if a == nil || b == nil || a.dt != b.dt {
		return nil
	}
	switch op {
	case "Add", "Sub", "Mul", "Div":
	default:
		return nil
	}
	n := max(len(a.v), len(b.v))
	if len(a.v) != n && len(a.v) != 1 || len(b.v) != n && len(b.v) != 1 {
		return nil
	}
	p := &partial{dt: a.dt, scalar: a.scalar && b.scalar, v: make([]int64, n), ok: make([]bool, n)}
	for i := 0; i < n; i++ {
		ia, ib := min(i, len(a.v)-1), min(i, len(b.v)-1)
		if !a.ok[ia] || !b.ok[ib] {
			continue
		}
		x, y := a.v[ia], b.v[ib]
		switch op {
		case "Add":
			p.v[i] = x + y
		case "Sub":
			p.v[i] = x - y
		case "Mul":
			p.v[i] = x * y
		case "Div":
			if x < 0 || y <= 0 {
				continue
			}
			p.v[i] = x / y
		}
		if p.dt == onnxio.TypeInt32 && int64(int32(p.v[i])) != p.v[i] {
			continue // would overflow
		}
		p.ok[i] = true
	}
	return p
}

package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// CompileOptions configures Compile.
type CompileOptions struct {
	// Frozen, when set, is asked about each float initializer that would be trainable;
	// those it returns true for are constants instead (never trained, and folded into
	// the nodes that only read constants). nil trains every eligible initializer.
	//
	// By default only weights are trainable: the float initializers that a layer reads as
	// its weight, bias, normalization scale or shift, or embedding table (directly or
	// through Identity, Transpose, Reshape, QuantizeLinear → DequantizeLinear and the
	// like; see weightInputs). Constants of the computation held as initializers (Pow
	// exponents, epsilons, GELU's constants, attention scales, clip bounds) are never
	// trained.
	Frozen func(name string) bool
	// Trainable, when set, replaces that rule: it is asked about each float initializer
	// read by a differentiable input (quantization scales excepted: LearnScales decides
	// those), and those it returns true for are trainable, unless Frozen says otherwise.
	Trainable func(name string) bool
	// InputGrads makes Backward compute gradients for the float graph inputs as well
	// (Tape.Grad), which the parameters alone do not need.
	InputGrads bool
	// Seed seeds the random numbers of Dropout.
	Seed uint64
	// LearnScales, when set, is asked about each float initializer read as the scale of
	// a QuantizeLinear or DequantizeLinear; those it returns true for are trainable
	// (learned step size, LSQ). nil keeps every scale constant.
	LearnScales func(name string) bool
}

// Param is a trainable parameter: a float initializer of the model.
type Param struct {
	Name  string
	Value *Tensor // updated in place by optimizers
	Grad  *Tensor // accumulated by Tape.Backward; cleared by Graph.ZeroGrad
	role  paramRole
	fanIn int
}

// paramRole says how Reinit initializes a parameter.
type paramRole uint8

const (
	roleOther  paramRole = iota // left as it is
	roleWeight                  // Kaiming-uniform over fanIn (PyTorch's Conv/Linear default)
	roleBias                    // zeros
	roleScale                   // ones (normalization scale)
	roleShift                   // zeros (normalization bias)
	roleEmbed                   // N(0, 1) (PyTorch's nn.Embedding default)
)

type valueKind uint8

const (
	vkNode  valueKind = iota // computed by a node on each run
	vkInput                  // a graph input
	vkParam                  // a trainable initializer
	vkState                  // running statistics (BatchNormalization mean and var)
	vkConst                  // known at compile time (initializer, Constant, folded)
)

type value struct {
	name     string
	kind     valueKind
	t        *Tensor // vkConst, vkParam and vkState values
	param    *Param
	needGrad bool
	// declared type and shape of graph inputs (shape nil when undeclared, -1 per
	// symbolic dimension)
	dtype DType
	shape []int
}

type node struct {
	idx      int
	label    string // for errors: `Conv "conv1"`
	op       string
	proto    *onnxpb.NodeProto
	in, out  []int // value ids; -1 for an absent optional input or output
	k        kernel
	needGrad []bool // per input
	anyGrad  bool
}

// Graph is a compiled model that can run forward and backward.
type Graph struct {
	src     *onnxpb.ModelProto // the model as given, for Export
	opset   int64
	vals    []*value
	byName  map[string]int
	nodes   []*node // the nodes left to run after folding, in topological order
	inputs  []int
	outputs []int
	params  []*Param
	states  []int
	opts    CompileOptions
	rng     *rand.Rand

	poolMu sync.Mutex
	pool   map[int][][]float32
}

// Compile builds a Graph from a model. It fails, listing them all, when the model uses
// op types the package does not support, or attributes it does not support.
func Compile(m *onnxio.Model, opts CompileOptions) (*Graph, error) {
	if m == nil || m.Proto == nil || m.Proto.Graph == nil {
		return nil, errors.New("compile: the model has no graph")
	}
	src := proto.Clone(m.Proto).(*onnxpb.ModelProto)
	gp := src.GetGraph()
	opset := defaultOpset(src)
	if opset == 0 {
		return nil, errors.New("compile: the model does not import the default ONNX domain")
	}
	if err := checkOps(gp); err != nil {
		return nil, err
	}
	sorted := &onnxpb.GraphProto{Node: slices.Clone(gp.GetNode())}
	if err := onnxio.TopoSort(sorted); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}

	g := &Graph{src: src, opset: opset, byName: map[string]int{}, opts: opts,
		rng: rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)), pool: map[int][][]float32{}}
	initDType, err := g.addInitializers(gp)
	if err != nil {
		return nil, err
	}
	if err := g.addInputs(gp); err != nil {
		return nil, err
	}
	if err := g.addNodes(sorted.GetNode(), valueTypes(gp)); err != nil {
		return nil, err
	}
	if err := g.addOutputs(gp); err != nil {
		return nil, err
	}
	g.classifyInitializers(initDType)
	if err := g.foldConstants(); err != nil {
		return nil, err
	}
	if err := g.markGradients(); err != nil {
		return nil, err
	}
	g.assignRoles()
	return g, nil
}

// defaultOpset returns the version of the default ONNX domain that m imports, or 0.
func defaultOpset(m *onnxpb.ModelProto) int64 {
	opset := int64(0)
	for _, o := range m.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			opset = o.GetVersion()
		}
	}
	return opset
}

// checkOps fails, listing every unsupported op type (and domain) with up to five of
// its nodes, when gp has nodes the package cannot compile.
func checkOps(gp *onnxpb.GraphProto) error {
	unsupported := map[string][]string{}
	for _, n := range gp.GetNode() {
		d := n.GetDomain()
		if _, ok := registry[n.GetOpType()]; !ok || (d != "" && d != "ai.onnx") {
			key := n.GetOpType()
			if d != "" && d != "ai.onnx" {
				key = d + "." + key
			}
			unsupported[key] = append(unsupported[key], nodeName(n))
		}
	}
	if len(unsupported) == 0 {
		return nil
	}
	keys := make([]string, 0, len(unsupported))
	for k := range unsupported {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		names := unsupported[k]
		if len(names) > 5 {
			names = append(names[:5:5], fmt.Sprintf("and %d more", len(unsupported[k])-5))
		}
		parts[i] = fmt.Sprintf("%s (nodes %s)", k, strings.Join(names, ", "))
	}
	return fmt.Errorf("compile: unsupported ops: %s", strings.Join(parts, "; "))
}

// addValue appends v to the graph's values and returns its id.
func (g *Graph) addValue(v *value) int {
	g.byName[v.name] = len(g.vals)
	g.vals = append(g.vals, v)
	return len(g.vals) - 1
}

// addInitializers adds every initializer of gp as a constant value and returns their
// ONNX element types by name.
func (g *Graph) addInitializers(gp *onnxpb.GraphProto) (map[string]onnxio.DataType, error) {
	initDType := map[string]onnxio.DataType{}
	for _, tp := range gp.GetInitializer() {
		ot, err := onnxio.DecodeTensor(tp)
		if err != nil {
			return nil, fmt.Errorf("compile: initializer %q: %v", tp.GetName(), err)
		}
		t, err := FromONNX(ot)
		if err != nil {
			return nil, fmt.Errorf("compile: initializer %q: %v", tp.GetName(), err)
		}
		initDType[tp.GetName()] = ot.Type
		g.addValue(&value{name: tp.GetName(), kind: vkConst, t: t})
	}
	return initDType, nil
}

// addInputs adds the graph inputs that are not initializers, with their declared type
// and shape; only float and int64 tensors are accepted.
func (g *Graph) addInputs(gp *onnxpb.GraphProto) error {
	for _, vi := range gp.GetInput() {
		if _, ok := g.byName[vi.GetName()]; ok {
			continue // an initializer listed as an input too: the initializer is used
		}
		v := &value{name: vi.GetName(), kind: vkInput}
		tt := vi.GetType().GetTensorType()
		if tt == nil {
			return fmt.Errorf("compile: input %q is not a tensor", vi.GetName())
		}
		switch dt := onnxio.DataType(tt.GetElemType()); dt {
		case onnxio.TypeFloat:
			v.dtype = Float32
		case onnxio.TypeInt64:
			v.dtype = Int64
		default:
			return fmt.Errorf("compile: input %q is %s: only float and int64 inputs are supported", vi.GetName(), dt)
		}
		if dims, _, ok := onnxio.ValueShape(vi); ok {
			v.shape = make([]int, len(dims))
			for i, d := range dims {
				v.shape[i] = int(d)
			}
		}
		g.inputs = append(g.inputs, g.addValue(v))
	}
	return nil
}

// addNodes adds the nodes, in topological order, with their output values and kernels.
// A node reading an undefined value or redefining one fails at once; unsupported
// attributes and outputs are collected and reported together.
func (g *Graph) addNodes(nodes []*onnxpb.NodeProto, types map[string]onnxio.DataType) error {
	var problems []string
	for _, np := range nodes {
		n := &node{idx: len(g.nodes), op: np.GetOpType(), proto: np, label: onnxio.NodeLabel(np)}
		for _, in := range np.GetInput() {
			if in == "" {
				n.in = append(n.in, -1)
				continue
			}
			id, ok := g.byName[in]
			if !ok {
				return fmt.Errorf("compile: %s reads %q, which no node, input or initializer defines", n.label, in)
			}
			n.in = append(n.in, id)
		}
		for _, o := range np.GetOutput() {
			if o == "" {
				n.out = append(n.out, -1)
				continue
			}
			if _, dup := g.byName[o]; dup {
				return fmt.Errorf("compile: value %q is defined twice (%s)", o, n.label)
			}
			n.out = append(n.out, g.addValue(&value{name: o, kind: vkNode}))
		}
		spec := registry[n.op]
		k, err := spec.make(attrs{n: np, opset: g.opset, types: types})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", n.label, err))
		}
		for i, o := range np.GetOutput() {
			if o != "" && i >= max(1, spec.outputs) {
				problems = append(problems, fmt.Sprintf("%s: output %d (%q) is not supported", n.label, i, o))
			}
		}
		n.k = k
		g.nodes = append(g.nodes, n)
	}
	if len(problems) > 0 {
		return fmt.Errorf("compile: unsupported attributes: %s", strings.Join(problems, "; "))
	}
	return nil
}

// addOutputs records the graph outputs, each of which must be a defined value.
func (g *Graph) addOutputs(gp *onnxpb.GraphProto) error {
	for _, vi := range gp.GetOutput() {
		id, ok := g.byName[vi.GetName()]
		if !ok {
			return fmt.Errorf("compile: output %q is not defined by any node", vi.GetName())
		}
		g.outputs = append(g.outputs, id)
	}
	return nil
}

// classifyInitializers makes each float initializer running state (read as a node's
// state input), a trainable parameter (read as a differentiable input, not frozen, and
// a weight (weightInputs) or selected by Trainable, or for a learnable quantization
// scale, selected by LearnScales), or leaves it constant.
func (g *Graph) classifyInitializers(initDType map[string]onnxio.DataType) {
	stateIn := map[int]bool{}
	diffIn := map[int]bool{}
	learned := map[int]bool{} // quantization scales selected by LearnScales
	for _, n := range g.nodes {
		spec := registry[n.op]
		for i, id := range n.in {
			if id < 0 {
				continue
			}
			if slices.Contains(spec.state, i) {
				stateIn[id] = true
			} else if spec.diff != nil && spec.diff(i) {
				if slices.Contains(spec.learnable, i) {
					if g.opts.LearnScales == nil || !g.opts.LearnScales(g.vals[id].name) {
						continue
					}
					learned[id] = true
				}
				diffIn[id] = true
			}
		}
	}
	weights := g.weightInputs()
	trainable := func(id int, name string) bool {
		switch {
		case !diffIn[id] || (g.opts.Frozen != nil && g.opts.Frozen(name)):
			return false
		case learned[id]:
			return true
		case g.opts.Trainable != nil:
			return g.opts.Trainable(name)
		}
		return weights[id]
	}
	for id, v := range g.vals {
		if v.kind != vkConst || initDType[v.name] != onnxio.TypeFloat {
			continue
		}
		switch {
		case stateIn[id]:
			v.kind = vkState
			g.states = append(g.states, id)
		case trainable(id, v.name):
			v.kind = vkParam
			v.param = &Param{Name: v.name, Value: v.t, Grad: NewTensor(v.t.Shape, nil)}
			g.params = append(g.params, v.param)
		}
	}
}

// foldConstants runs the nodes that read only constants, makes their outputs
// constants, and drops them from the nodes run on each Forward.
func (g *Graph) foldConstants() error {
	c := &ctx{g: g}
	kept := g.nodes[:0]
	for _, n := range g.nodes {
		if !g.foldable(n) {
			n.idx = len(kept)
			kept = append(kept, n)
			continue
		}
		c.n = n
		outs, err := g.runNode(c, n, func(id int) *Tensor { return g.vals[id].t })
		if err != nil {
			return fmt.Errorf("compile: folding constants: %w", err)
		}
		for i, id := range n.out {
			if id >= 0 {
				g.vals[id].kind = vkConst
				g.vals[id].t = outs[i]
			}
		}
	}
	g.nodes = kept
	return nil
}

// markGradients marks the values that need gradients (parameters, float inputs with
// InputGrads, and whatever a node computes from them through a differentiable input)
// and each node's inputs that do; it fails when such a node has no gradient.
func (g *Graph) markGradients() error {
	for _, v := range g.vals {
		v.needGrad = v.kind == vkParam || (v.kind == vkInput && g.opts.InputGrads && v.dtype == Float32)
	}
	for _, n := range g.nodes {
		spec := registry[n.op]
		n.needGrad = make([]bool, len(n.in))
		for i, id := range n.in {
			if id >= 0 && spec.diff != nil && spec.diff(i) && g.vals[id].needGrad {
				n.needGrad[i] = true
				n.anyGrad = true
			}
		}
		if n.anyGrad {
			if _, ok := n.k.(gradKernel); !ok {
				return fmt.Errorf("compile: %s has no gradient", n.label)
			}
			for _, id := range n.out {
				if id >= 0 {
					g.vals[id].needGrad = true
				}
			}
		}
	}
	return nil
}

func nodeName(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%q", n.GetName())
	}
	if len(n.GetOutput()) > 0 {
		return fmt.Sprintf("(output %q)", n.GetOutput()[0])
	}
	return "(unnamed)"
}

// foldable reports whether every input of n is a compile-time constant (and n is not
// random or stateful).
func (g *Graph) foldable(n *node) bool {
	if n.op == "Dropout" || n.op == "BatchNormalization" {
		return false
	}
	for _, id := range n.in {
		if id >= 0 && g.vals[id].kind != vkConst {
			return false
		}
	}
	return true
}

// runNode runs one node's forward with inputs fetched by get, checking its outputs.
func (g *Graph) runNode(c *ctx, n *node, get func(int) *Tensor) ([]*Tensor, error) {
	ins := make([]*Tensor, len(n.in))
	for i, id := range n.in {
		if id >= 0 {
			ins[i] = get(id)
		}
	}
	outs, err := n.k.forward(c, ins)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.label, err)
	}
	for i, id := range n.out {
		if id >= 0 && (i >= len(outs) || outs[i] == nil) {
			return nil, fmt.Errorf("%s: output %d (%q) is not supported", n.label, i, g.vals[id].name)
		}
	}
	return outs, nil
}

// Params returns the trainable parameters, in initializer order.
func (g *Graph) Params() []*Param { return g.params }

// Param returns the parameter called name, or nil.
func (g *Graph) Param(name string) *Param {
	if id, ok := g.byName[name]; ok {
		return g.vals[id].param
	}
	return nil
}

// Reseed restarts the random numbers of Dropout from seed, so that a training run that
// reseeds at each epoch (from its seed and the epoch) draws the same masks whether it ran
// through or was resumed from a checkpoint.
func (g *Graph) Reseed(seed uint64) {
	g.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// ZeroGrad clears every parameter's gradient.
func (g *Graph) ZeroGrad() {
	for _, p := range g.params {
		d := p.Grad.Data
		parallelFor(len(d), 1, func(lo, hi int) { clear(d[lo:hi]) })
	}
}

// Inputs returns the names of the graph inputs (initializers excluded).
func (g *Graph) Inputs() []string { return g.names(g.inputs) }

// Outputs returns the names of the graph outputs.
func (g *Graph) Outputs() []string { return g.names(g.outputs) }

func (g *Graph) names(ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = g.vals[id].name
	}
	return out
}

// NumNodes returns the number of nodes that run on each Forward (constant ones folded).
func (g *Graph) NumNodes() int { return len(g.nodes) }

// Export returns the model with the current values of the parameters and of the
// running statistics; the rest of the model is exactly as it was given to Compile.
func (g *Graph) Export() (*onnxio.Model, error) {
	mp := proto.Clone(g.src).(*onnxpb.ModelProto)
	for i, tp := range mp.GetGraph().GetInitializer() {
		id, ok := g.byName[tp.GetName()]
		if !ok {
			continue
		}
		v := g.vals[id]
		if v.kind != vkParam && v.kind != vkState {
			continue
		}
		nt, err := onnxio.EncodeTensor(tp.GetName(), v.t.ONNX())
		if err != nil {
			return nil, fmt.Errorf("export %q: %v", tp.GetName(), err)
		}
		nt.DocString = tp.DocString
		mp.Graph.Initializer[i] = nt
	}
	return &onnxio.Model{Proto: mp}, nil
}

// State returns the running statistics (BatchNormalization mean and variance) by
// initializer name; they change in place during training-mode Forward.
func (g *Graph) State() map[string]*Tensor {
	out := map[string]*Tensor{}
	for _, id := range g.states {
		out[g.vals[id].name] = g.vals[id].t
	}
	return out
}

// getBuf and putBuf recycle float32 buffers between tapes.
func (g *Graph) getBuf(n int) []float32 {
	g.poolMu.Lock()
	defer g.poolMu.Unlock()
	if l := g.pool[n]; len(l) > 0 {
		b := l[len(l)-1]
		g.pool[n] = l[:len(l)-1]
		return b
	}
	return make([]float32, n)
}

func (g *Graph) putBufs(bufs [][]float32) {
	g.poolMu.Lock()
	defer g.poolMu.Unlock()
	for _, b := range bufs {
		g.pool[len(b)] = append(g.pool[len(b)], b)
	}
}

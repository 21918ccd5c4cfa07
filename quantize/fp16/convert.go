package fp16

import (
	"fmt"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// The conversion walks each graph once, in topological order, keeping two element types
// per value: the original one (inferred from the float32 model) and the new one (after
// conversion). For every node it decides whether the node computes in the target type
// or stays float32, states the type each float32 input must have, and meets it: a
// computed value of the wrong type gets a Cast (one per value and type, shared by its
// readers), a constant (initializer or Constant node) is instead bound to a copy of the
// right type, decided once every reader is known. Subgraphs are walked with their node,
// in a scope that sees the enclosing values.

const float32T = onnxio.TypeFloat

// converter holds the state of one Convert call.
type converter struct {
	m          *onnxio.Model
	opts       Options
	target     onnxio.DataType
	rep        *Report
	namer      *onnxio.Namer
	blockOps   map[string]bool
	blockNodes map[string]bool
	sources    []*source
	scopes     []*scope
	unknownOps map[string]bool
	autoNodes  map[string]bool // node names AutoMixed keeps in float32
	converted  []string        // names of the main-graph nodes converted
}

// scope is one graph being converted.
type scope struct {
	parent   *scope
	g        *onnxpb.GraphProto
	main     bool
	orig     map[string]onnxio.DataType // original element type of each value defined here
	typ      map[string]onnxio.DataType // element type after conversion
	consts   map[string]*source         // float32 constants defined here
	casts    map[castKey]string         // Cast outputs made here, by value and type
	declared map[string]onnxio.DataType // types declared by value_info and outputs
	nodes    []*onnxpb.NodeProto        // the rebuilt node list
}

type castKey struct {
	name string
	to   onnxio.DataType
}

// source is a float32 constant: an initializer or a Constant node's value. Its readers
// bind to it at a type; finish gives each type a tensor.
type source struct {
	sc     *scope
	init   *onnxpb.TensorProto
	node   *onnxpb.NodeProto
	name   string
	needs  map[onnxio.DataType]bool
	pinned onnxio.DataType // the type a graph output of the main graph needs under this name
	binds  []bind
}

type bind struct {
	t   onnxio.DataType
	set func(string)
}

func (s *source) bind(t onnxio.DataType, set func(string)) {
	s.needs[t] = true
	s.binds = append(s.binds, bind{t, set})
}

func newConverter(m *onnxio.Model, opts Options, rep *Report) *converter {
	c := &converter{
		m: m, opts: opts, target: opts.Type, rep: rep,
		namer:      onnxio.NewNamer(m.Graph()),
		blockOps:   map[string]bool{},
		blockNodes: map[string]bool{},
		unknownOps: map[string]bool{},
	}
	for _, op := range opts.BlockOps {
		c.blockOps[op] = true
	}
	for _, n := range opts.BlockNodes {
		c.blockNodes[n] = true
	}
	return c
}

func (c *converter) newScope(parent *scope, g *onnxpb.GraphProto) *scope {
	sc := newScopeOf(parent, g)
	c.scopes = append(c.scopes, sc)
	return sc
}

// newScopeOf makes a scope for g without registering it.
func newScopeOf(parent *scope, g *onnxpb.GraphProto) *scope {
	sc := &scope{
		parent: parent, g: g, main: parent == nil,
		orig: map[string]onnxio.DataType{}, typ: map[string]onnxio.DataType{},
		consts: map[string]*source{}, casts: map[castKey]string{}, declared: map[string]onnxio.DataType{},
	}
	for _, vi := range g.GetValueInfo() {
		if t := elemType(vi); t != onnxio.TypeUndefined {
			sc.declared[vi.GetName()] = t
		}
	}
	for _, vi := range g.GetOutput() {
		if t := elemType(vi); t != onnxio.TypeUndefined {
			sc.declared[vi.GetName()] = t
		}
	}
	return sc
}

// lookup returns the scope that defines name (the nearest one), or nil.
func (sc *scope) lookup(name string) *scope {
	for s := sc; s != nil; s = s.parent {
		if _, ok := s.orig[name]; ok {
			return s
		}
	}
	return nil
}

func (sc *scope) origType(name string) onnxio.DataType {
	if s := sc.lookup(name); s != nil {
		return s.orig[name]
	}
	return onnxio.TypeUndefined
}

func (sc *scope) newType(name string) onnxio.DataType {
	if s := sc.lookup(name); s != nil {
		return s.typ[name]
	}
	return onnxio.TypeUndefined
}

func (sc *scope) source(name string) *source {
	if s := sc.lookup(name); s != nil {
		return s.consts[name]
	}
	return nil
}

func (sc *scope) define(name string, orig, typ onnxio.DataType) {
	if name == "" {
		return
	}
	sc.orig[name] = orig
	sc.typ[name] = typ
}

func elemType(vi *onnxpb.ValueInfoProto) onnxio.DataType {
	if tt := vi.GetType().GetTensorType(); tt != nil {
		return onnxio.DataType(tt.GetElemType())
	}
	return onnxio.TypeUndefined
}

// setElemType changes a tensor value's declared element type, counting the change.
func (c *converter) setElemType(vi *onnxpb.ValueInfoProto, t onnxio.DataType) {
	tt := vi.GetType().GetTensorType()
	if tt == nil || t == onnxio.TypeUndefined || onnxio.DataType(tt.GetElemType()) == t {
		return
	}
	tt.ElemType = proto.Int32(int32(t))
	c.rep.ValuesConverted++
}

func suffix(t onnxio.DataType) string {
	switch t {
	case onnxio.TypeFloat16:
		return "fp16"
	case onnxio.TypeBFloat16:
		return "bf16"
	case onnxio.TypeFloat:
		return "fp32"
	}
	return t.String()
}

func isDefaultDomain(n *onnxpb.NodeProto) bool {
	return n.GetDomain() == "" || n.GetDomain() == "ai.onnx"
}

func (c *converter) run() error {
	g := c.m.Graph()
	sc := c.newScope(nil, g)
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, vi := range g.GetInput() {
		if inits[vi.GetName()] {
			continue // an initializer listed as an input (IR < 4): a constant
		}
		t := elemType(vi)
		nt := t
		if t == float32T && !c.opts.KeepIOTypes {
			nt = c.target
			c.setElemType(vi, nt)
		}
		sc.define(vi.GetName(), t, nt)
	}
	c.addInitializers(sc)
	req := c.target
	if c.opts.KeepIOTypes {
		req = float32T
	}
	if _, _, err := c.graph(sc, "", func(int) onnxio.DataType { return req }); err != nil {
		return err
	}
	if err := c.finishSources(); err != nil {
		return err
	}
	for _, s := range c.scopes {
		c.updateValueInfo(s)
	}
	for _, s := range c.scopes {
		c.cleanup(s)
	}
	if len(c.unknownOps) > 0 {
		ops := make([]string, 0, len(c.unknownOps))
		for op := range c.unknownOps {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		c.rep.Warnings = append(c.rep.Warnings, fmt.Sprintf("no type rule for op types %v: nodes touching float values kept float32", ops))
	}
	return nil
}

// addInitializers registers the initializers of sc's graph: float32 ones as constants.
func (c *converter) addInitializers(sc *scope) {
	for _, t := range sc.g.GetInitializer() {
		dt := onnxio.DataType(t.GetDataType())
		if dt == float32T {
			s := &source{sc: sc, init: t, name: t.GetName(), needs: map[onnxio.DataType]bool{}}
			sc.consts[s.name] = s
			c.sources = append(c.sources, s)
		}
		sc.define(t.GetName(), dt, dt)
	}
	for _, sp := range sc.g.GetSparseInitializer() {
		dt := onnxio.DataType(sp.GetValues().GetDataType())
		if dt == float32T {
			c.rep.Warnings = append(c.rep.Warnings, fmt.Sprintf("sparse initializer %q stays float32 (read through Casts)", sp.GetValues().GetName()))
		}
		sc.define(sp.GetValues().GetName(), dt, dt)
	}
}

// graph converts the nodes and outputs of sc's graph. blockedBy names the enclosing
// blocked node ("" when the graph may convert); outReq gives the type each float32
// output must have. It returns the outputs' original and new types.
func (c *converter) graph(sc *scope, blockedBy string, outReq func(j int) onnxio.DataType) (orig, typ []onnxio.DataType, err error) {
	if err := onnxio.TopoSort(sc.g); err != nil {
		return nil, nil, fmt.Errorf("fp16: %w", err)
	}
	c.inferOrig(sc)
	reasons := c.decide(sc, blockedBy, outReq)
	for _, n := range sc.g.GetNode() {
		if err := c.node(sc, n, reasons[n], blockedBy); err != nil {
			return nil, nil, err
		}
	}
	sc.g.Node = sc.nodes
	for j, vi := range sc.g.GetOutput() {
		name := vi.GetName()
		ot := sc.origType(name)
		if ot == onnxio.TypeUndefined {
			ot = elemType(vi)
		}
		orig = append(orig, ot)
		if ot != float32T {
			typ = append(typ, sc.newType(name))
			continue
		}
		req := outReq(j)
		cur := sc.newType(name)
		s := sc.source(name)
		if s == nil && cur == onnxio.TypeUndefined {
			typ = append(typ, cur) // produced by an op of unknown type: left alone
			continue
		}
		typ = append(typ, req)
		c.setElemType(vi, req)
		if s != nil {
			if sc.main {
				s.pinned = req
				s.needs[req] = true
			} else {
				s.bind(req, func(v string) { vi.Name = proto.String(v) })
			}
			continue
		}
		if cur == req {
			continue
		}
		if !sc.main {
			// Subgraph outputs bind to the parent's outputs by position: rename freely.
			vi.Name = proto.String(c.castTo(sc, name, req))
			sc.g.Node = sc.nodes
			continue
		}
		// A main graph output keeps its name: the producer's value is renamed and a Cast
		// makes the output from it.
		var producer *onnxpb.NodeProto
		for _, n := range sc.g.Node {
			if slices.Contains(n.GetOutput(), name) {
				producer = n
			}
		}
		if producer == nil {
			return nil, nil, fmt.Errorf("fp16: graph output %q is %s but must be %s, and no node of the graph produces it", name, cur, req)
		}
		pre := c.namer.Name(name + "_" + suffix(cur))
		onnxio.ReplaceUses(sc.g, name, pre)
		for i, o := range producer.Output {
			if o == name {
				producer.Output[i] = pre
			}
		}
		sc.define(pre, ot, cur)
		for k, v := range sc.casts {
			if k.name == name {
				delete(sc.casts, k)
				sc.casts[castKey{pre, k.to}] = v
			}
		}
		sc.nodes = sc.g.Node
		c.emitCast(sc, pre, name, req)
		sc.typ[name] = req
		sc.g.Node = sc.nodes
	}
	return orig, typ, nil
}

// emitCast appends Cast(from) -> out to sc.
func (c *converter) emitCast(sc *scope, from, out string, to onnxio.DataType) {
	n := &onnxpb.NodeProto{
		Name:      proto.String(c.namer.Name("Cast_" + out)),
		OpType:    proto.String("Cast"),
		Input:     []string{from},
		Output:    []string{out},
		Attribute: []*onnxpb.AttributeProto{onnxio.AttrInt("to", int64(to))},
	}
	sc.nodes = append(sc.nodes, n)
	c.rep.CastsInserted++
}

// castTo returns a value holding name converted to type to: a Cast made earlier in sc or
// an enclosing scope, or a new one appended to sc.
func (c *converter) castTo(sc *scope, name string, to onnxio.DataType) string {
	key := castKey{name, to}
	for s := sc; s != nil; s = s.parent {
		if v, ok := s.casts[key]; ok {
			return v
		}
	}
	out := c.namer.Name(name + "_" + suffix(to))
	c.emitCast(sc, name, out, to)
	sc.casts[key] = out
	sc.define(out, sc.origType(name), to)
	return out
}

// require makes input i of n read a value of type t.
func (c *converter) require(sc *scope, n *onnxpb.NodeProto, i int, t onnxio.DataType) {
	name := n.Input[i]
	if s := sc.source(name); s != nil {
		s.bind(t, func(v string) { n.Input[i] = v })
		return
	}
	cur := sc.newType(name)
	if cur == t || cur == onnxio.TypeUndefined {
		return
	}
	n.Input[i] = c.castTo(sc, name, t)
}

func isControlFlow(n *onnxpb.NodeProto) bool {
	if !isDefaultDomain(n) {
		return false
	}
	switch n.GetOpType() {
	case "If", "Loop", "Scan":
		return true
	}
	return false
}

// node converts one node of sc's graph and appends it (after any Casts it needs).
// reason is why the node stays float32 ("" to convert it).
func (c *converter) node(sc *scope, n *onnxpb.NodeProto, reason, blockedBy string) error {
	if c.addConstantNode(sc, n) {
		return nil
	}
	origIn, origOut := sc.origTypes(n)
	control, known := isControlFlow(n), hasRule(n)
	newIn := c.nodeInputs(sc, n, origIn, reason)
	if reason == "" {
		if err := c.convertAttributes(n, origOut); err != nil {
			return err
		}
	}
	subNew, err := c.nodeSubgraphs(sc, n, origIn, newIn, reason, blockedBy)
	if err != nil {
		return err
	}
	newOut := origOut
	if (reason == "" || control) && known {
		newOut, _ = outputTypes(n, newIn, subNew)
		for k := range newOut {
			if newOut[k] == onnxio.TypeUndefined {
				newOut[k] = origOut[k]
			}
		}
	}
	for k, o := range n.GetOutput() {
		sc.define(o, origOut[k], newOut[k])
	}
	c.count(sc, n, origIn, origOut, reason)
	sc.nodes = append(sc.nodes, n)
	return nil
}

// addConstantNode registers n, when it is a Constant node with a float32 tensor value,
// as a constant source of sc and appends it unchanged; it reports whether it did.
func (c *converter) addConstantNode(sc *scope, n *onnxpb.NodeProto) bool {
	if !isDefaultDomain(n) || n.GetOpType() != "Constant" || len(n.GetOutput()) != 1 {
		return false
	}
	t, ok := onnxio.ConstantNodeTensor(n)
	if !ok || onnxio.DataType(t.GetDataType()) != float32T {
		return false
	}
	s := &source{sc: sc, node: n, name: n.Output[0], needs: map[onnxio.DataType]bool{}}
	sc.consts[s.name] = s
	c.sources = append(c.sources, s)
	sc.define(s.name, float32T, float32T)
	sc.nodes = append(sc.nodes, n)
	return true
}

// nodeInputs makes each float32 input of n read the type n needs there (float32 when
// n stays float32 or the input takes float32 only, the input's current type when the
// input takes any type, else the target type) and returns the new input types.
func (c *converter) nodeInputs(sc *scope, n *onnxpb.NodeProto, origIn []onnxio.DataType, reason string) []onnxio.DataType {
	newIn := make([]onnxio.DataType, len(n.GetInput()))
	for i, in := range n.GetInput() {
		if in == "" {
			continue
		}
		if origIn[i] != float32T {
			newIn[i] = sc.newType(in)
			continue
		}
		var req onnxio.DataType
		switch {
		case reason != "":
			req = float32T
		case isAgnostic(n, i):
			newIn[i] = sc.newType(in)
			continue
		case isAlwaysFloat(n, i):
			req = float32T
		default:
			req = c.target
		}
		c.require(sc, n, i, req)
		newIn[i] = req
	}
	return newIn
}

// nodeSubgraphs converts the subgraphs of n (none: nil), each in a child scope of sc,
// inside a blocked region when n or an enclosing node stays float32, and returns the
// new types of their outputs by attribute name.
func (c *converter) nodeSubgraphs(sc *scope, n *onnxpb.NodeProto, origIn, newIn []onnxio.DataType, reason, blockedBy string) (map[string][]onnxio.DataType, error) {
	subs := subgraphsOf(n)
	if len(subs) == 0 {
		return nil, nil
	}
	subNew := map[string][]onnxio.DataType{}
	inner := blockedBy
	if reason != "" && inner == "" {
		inner = onnxio.NodeLabel(n)
	}
	outT := c.target
	if reason != "" {
		outT = float32T
	}
	for _, sg := range subs {
		child := c.newScope(sc, sg.g)
		c.subgraphInputs(child, n, sg.g, origIn, newIn, outT)
		c.addInitializers(child)
		_, t, err := c.graph(child, inner, func(int) onnxio.DataType { return outT })
		if err != nil {
			return nil, err
		}
		subNew[sg.attr] = t
	}
	return subNew, nil
}

// subgraphInputs defines the inputs of n's subgraph g in child: a body input that
// receives a float32 input of n gets that input's new type, another float32 one gets
// outT; their declared types follow.
func (c *converter) subgraphInputs(child *scope, n *onnxpb.NodeProto, g *onnxpb.GraphProto, origIn, newIn []onnxio.DataType, outT onnxio.DataType) {
	for j, vi := range g.GetInput() {
		ot := elemType(vi)
		k := bodyInputIndex(n, j)
		if k >= 0 && k < len(origIn) && n.Input[k] != "" && (ot == onnxio.TypeUndefined || ot == origIn[k]) && origIn[k] == float32T {
			// the body receives the node's input, already required by nodeInputs
			child.define(vi.GetName(), float32T, newIn[k])
			c.setElemType(vi, newIn[k])
			continue
		}
		nt := ot
		if ot == float32T {
			nt = outT
			c.setElemType(vi, nt)
		}
		child.define(vi.GetName(), ot, nt)
	}
}

// count reports n, when it reads or writes float32 values, as converted (and, in the
// main graph, in c.converted) or as kept for reason.
func (c *converter) count(sc *scope, n *onnxpb.NodeProto, origIn, origOut []onnxio.DataType, reason string) {
	if !involved(origIn, origOut) {
		return
	}
	if reason == "" {
		c.rep.NodesConverted++
		if sc.main {
			c.converted = append(c.converted, n.GetName())
		}
		return
	}
	c.rep.Kept = append(c.rep.Kept, KeptNode{Name: n.GetName(), OpType: qualifiedOp(n), Reason: reason})
}

func allKnown(ts []onnxio.DataType) bool {
	return !slices.Contains(ts, onnxio.TypeUndefined)
}

func qualifiedOp(n *onnxpb.NodeProto) string {
	if isDefaultDomain(n) {
		return n.GetOpType()
	}
	return n.GetDomain() + "." + n.GetOpType()
}

// bodyInputIndex maps input j of a Loop or Scan body to the node input it receives,
// or -1.
func bodyInputIndex(n *onnxpb.NodeProto, j int) int {
	switch n.GetOpType() {
	case "Loop":
		if j >= 2 {
			return j // body (iter, cond, v...) <- node (M, cond, v...)
		}
	case "Scan":
		return j
	}
	return -1
}

type subgraph struct {
	attr string
	g    *onnxpb.GraphProto
}

// subgraphsOf lists n's graph attributes with their names.
func subgraphsOf(n *onnxpb.NodeProto) []subgraph {
	var out []subgraph
	for _, a := range n.GetAttribute() {
		if a.G != nil {
			out = append(out, subgraph{a.GetName(), a.G})
		}
		for _, g := range a.GetGraphs() {
			out = append(out, subgraph{a.GetName(), g})
		}
	}
	return out
}

// convertAttributes retargets the attributes of a converted node that name a float
// type: Cast's to, the dtype of generator ops, ConstantOfShape's value.
func (c *converter) convertAttributes(n *onnxpb.NodeProto, origOut []onnxio.DataType) error {
	if !isDefaultDomain(n) {
		return nil
	}
	retarget := func(name string, addIfMissing bool) {
		a := onnxio.Attr(n, name)
		if a == nil {
			if addIfMissing {
				onnxio.SetAttr(n, onnxio.AttrInt(name, int64(c.target)))
				c.rep.CastTargetsChanged++
			}
			return
		}
		if a.GetType() == onnxpb.AttributeProto_INT && onnxio.DataType(a.GetI()) == float32T {
			a.I = proto.Int64(int64(c.target))
			c.rep.CastTargetsChanged++
		}
	}
	switch n.GetOpType() {
	case "Cast":
		retarget("to", false)
	case "RandomNormal", "RandomUniform":
		retarget("dtype", true)
	case "EyeLike", "RandomNormalLike", "RandomUniformLike", "Bernoulli":
		retarget("dtype", false)
	case "ConstantOfShape":
		if len(origOut) == 0 || origOut[0] != float32T {
			return nil
		}
		a := onnxio.Attr(n, "value")
		if a == nil || a.T == nil {
			tp, err := onnxio.EncodeTensor("", &onnxio.Tensor{Type: float32T, Shape: []int64{1}, Data: []float32{0}})
			if err != nil {
				return err
			}
			a = onnxio.AttrTensor("value", tp)
			onnxio.SetAttr(n, a)
		}
		if err := c.convertTensor(a.T); err != nil {
			return fmt.Errorf("fp16: node %s: %w", onnxio.NodeLabel(n), err)
		}
		c.rep.ConstantsConverted++
	}
	return nil
}

// finishSources gives every float32 constant the types its readers need: the original
// name gets the type a main-graph output pins, else the target type if any reader
// converts, else stays float32; each other type gets a copy under a new name (or, with
// ForceInitializers, a Cast from the converted tensor).
func (c *converter) finishSources() error {
	for _, s := range c.sources {
		primary := float32T
		switch {
		case s.pinned != onnxio.TypeUndefined:
			primary = s.pinned
		case s.needs[c.target]:
			primary = c.target
		case c.opts.ForceInitializers:
			primary = c.target
		}
		var original *onnxpb.TensorProto // the float32 tensor, kept for copies
		if len(s.needs) > 1 || (len(s.needs) == 1 && !s.needs[primary]) {
			t, err := s.tensor()
			if err != nil {
				return err
			}
			original = proto.Clone(t).(*onnxpb.TensorProto)
		}
		if primary == c.target {
			if err := c.convertSource(s); err != nil {
				return err
			}
		}
		s.sc.typ[s.name] = primary
		names := map[onnxio.DataType]string{primary: s.name}
		types := make([]onnxio.DataType, 0, len(s.needs))
		for t := range s.needs {
			types = append(types, t)
		}
		slices.Sort(types)
		for _, t := range types {
			if t == primary {
				continue
			}
			if t == float32T && primary == c.target && c.opts.ForceInitializers && s.pinned == onnxio.TypeUndefined {
				names[t] = c.castSource(s)
				continue
			}
			v, err := c.copySource(s, original, t)
			if err != nil {
				return err
			}
			names[t] = v
		}
		for _, b := range s.binds {
			b.set(names[b.t])
		}
		// An initializer also listed as a graph input (IR < 4) declares its new type.
		if s.init != nil {
			for _, vi := range s.sc.g.GetInput() {
				if vi.GetName() == s.name {
					c.setElemType(vi, primary)
				}
			}
		}
	}
	return nil
}

// tensor returns the float32 tensor behind s.
func (s *source) tensor() (*onnxpb.TensorProto, error) {
	if s.init != nil {
		return s.init, nil
	}
	t, ok := onnxio.ConstantNodeTensor(s.node)
	if !ok {
		return nil, fmt.Errorf("fp16: Constant node %s has no tensor value", onnxio.NodeLabel(s.node))
	}
	return t, nil
}

// convertSource converts s's tensor in place, counting it.
func (c *converter) convertSource(s *source) error {
	if s.init != nil {
		if err := c.convertTensor(s.init); err != nil {
			return fmt.Errorf("fp16: initializer %q: %w", s.name, err)
		}
		c.rep.InitializersConverted++
		return nil
	}
	t, err := s.tensor()
	if err != nil {
		return err
	}
	t = proto.Clone(t).(*onnxpb.TensorProto)
	if err := c.convertTensor(t); err != nil {
		return fmt.Errorf("fp16: Constant node %s: %w", onnxio.NodeLabel(s.node), err)
	}
	setConstantValue(s.node, t)
	c.rep.ConstantsConverted++
	return nil
}

// setConstantValue makes a Constant node hold t as its value attribute (dropping the
// value_float(s) forms).
func setConstantValue(n *onnxpb.NodeProto, t *onnxpb.TensorProto) {
	n.Attribute = slices.DeleteFunc(n.Attribute, func(a *onnxpb.AttributeProto) bool {
		return a.GetName() == "value_float" || a.GetName() == "value_floats" || a.GetName() == "value"
	})
	n.Attribute = append(n.Attribute, onnxio.AttrTensor("value", t))
}

// copySource adds a copy of s's original float32 tensor, converted to t, under a new
// name, and returns the name.
func (c *converter) copySource(s *source, original *onnxpb.TensorProto, t onnxio.DataType) (string, error) {
	name := c.namer.Name(s.name + "_" + suffix(t))
	tp := proto.Clone(original).(*onnxpb.TensorProto)
	tp.Name = proto.String(name)
	if t == c.target {
		if err := c.convertTensor(tp); err != nil {
			return "", fmt.Errorf("fp16: constant %q: %w", s.name, err)
		}
	}
	if s.init != nil {
		s.sc.g.Initializer = append(s.sc.g.Initializer, tp)
	} else {
		n := &onnxpb.NodeProto{
			Name:      proto.String(c.namer.Name(s.node.GetName() + "_" + suffix(t))),
			OpType:    proto.String("Constant"),
			Output:    []string{name},
			Attribute: []*onnxpb.AttributeProto{onnxio.AttrTensor("value", tp)},
		}
		insertAfter(s.sc.g, s.node, n)
	}
	s.sc.define(name, float32T, t)
	c.rep.ConstantsDuplicated++
	return name, nil
}

// castSource adds a Cast of s's (converted) value back to float32 and returns its
// output.
func (c *converter) castSource(s *source) string {
	out := c.namer.Name(s.name + "_" + suffix(float32T))
	n := &onnxpb.NodeProto{
		Name:      proto.String(c.namer.Name("Cast_" + out)),
		OpType:    proto.String("Cast"),
		Input:     []string{s.name},
		Output:    []string{out},
		Attribute: []*onnxpb.AttributeProto{onnxio.AttrInt("to", int64(float32T))},
	}
	if s.node != nil {
		insertAfter(s.sc.g, s.node, n)
	} else {
		s.sc.g.Node = slices.Insert(s.sc.g.Node, 0, n)
	}
	s.sc.define(out, float32T, float32T)
	c.rep.CastsInserted++
	return out
}

// insertAfter puts n right after node after in g (first when after is not there).
func insertAfter(g *onnxpb.GraphProto, after, n *onnxpb.NodeProto) {
	pos := slices.Index(g.Node, after) + 1
	g.Node = slices.Insert(g.Node, pos, n)
}

// updateValueInfo sets the value_info entries of sc's graph to the new types.
func (c *converter) updateValueInfo(sc *scope) {
	for _, vi := range sc.g.GetValueInfo() {
		if t, ok := sc.typ[vi.GetName()]; ok && t != onnxio.TypeUndefined {
			c.setElemType(vi, t)
		}
	}
}

package ort

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// ValueInfo describes one input or output of a model as onnxruntime sees it.
type ValueInfo struct {
	Name string
	// Type is the element type.
	Type onnxio.DataType
	// Shape has -1 for each dynamic dimension; it is empty for a scalar and for a value
	// whose rank the model does not declare.
	Shape []int64
	// DimNames holds the model's symbolic name for each dimension ("batch"), or "" where
	// the dimension is fixed or unnamed; it has the length of Shape.
	DimNames []string
}

// String formats v as "name: type[d0,d1]" with dynamic dimensions by name or "?".
func (v ValueInfo) String() string {
	dims := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		switch {
		case d >= 0:
			dims[i] = fmt.Sprint(d)
		case i < len(v.DimNames) && v.DimNames[i] != "":
			dims[i] = v.DimNames[i]
		default:
			dims[i] = "?"
		}
	}
	return fmt.Sprintf("%s: %s[%s]", v.Name, v.Type, strings.Join(dims, ","))
}

func (v ValueInfo) clone() ValueInfo {
	v.Shape = append([]int64{}, v.Shape...)
	v.DimNames = append([]string{}, v.DimNames...)
	return v
}

// Session is a model loaded into onnxruntime. Run may be called from several goroutines
// at once; Close waits for running calls to finish.
type Session struct {
	mu       sync.RWMutex // Run holds it for reading, Close for writing
	sess     *ortgo.DynamicAdvancedSession
	inputs   []ValueInfo
	rankOK   []bool // whether inputs[i]'s rank is declared (a scalar) or only unknown
	inIndex  map[string]int
	fetches  []fetch
	outIndex map[string]int    // output name -> index in fetches
	skipped  map[string]string // outputs Run cannot return -> why
	ortOut   map[string]int    // onnxruntime output name -> position in the session's outputs
	nOrtOut  int
	fed      []bool // per onnxruntime output: it is a graph input or initializer, which
	// onnxruntime hands back as it is rather than writing into a buffer (RunInto never
	// offers one for it)
	dummy bool // the session has one extra unused bool input, fed last
}

// supported reports whether Run can pass and return tensors of element type dt.
func supported(dt onnxio.DataType) bool {
	switch dt {
	case onnxio.TypeFloat, onnxio.TypeDouble, onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt16,
		onnxio.TypeUint16, onnxio.TypeInt32, onnxio.TypeUint32, onnxio.TypeInt64, onnxio.TypeUint64,
		onnxio.TypeBool, onnxio.TypeFloat16, onnxio.TypeBFloat16, onnxio.TypeString:
		return true
	}
	return false
}

// NewSession loads a model from its bytes (the content of an .onnx file whose tensors are
// all inside it) and discovers its inputs and outputs. It calls Init("") first when Init
// has not run. A GPU provider that cannot be used gives an *UnavailableError (possibly
// wrapped). The caller must Close the session.
func NewSession(model []byte, opts Options) (*Session, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	provider, err := opts.check()
	if err != nil {
		return nil, err
	}
	if len(model) == 0 {
		return nil, errors.New("load model: the model is empty: pass the bytes of an .onnx file")
	}
	// Options first: a GPU provider that cannot load fails here, before any model loads.
	so, err := opts.sessionOptions(provider, "")
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	mi, scanErr := scanModel(model)
	if scanErr == nil && mi.hasGraph && len(mi.outputs) == 0 {
		return nil, errors.New("load model: the graph has no outputs: declare at least one graph output")
	}
	direct, ins, outs, err := discover(model, mi, scanErr, so, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if direct != nil { // not adopted: an error
			direct.Destroy()
		}
	}()
	if scanErr != nil {
		return nil, fmt.Errorf("load model: onnxruntime loaded the model but its protobuf does not parse here (%v): re-save the model with the onnx package", scanErr)
	}

	s := &Session{inIndex: map[string]int{}, outIndex: map[string]int{}, skipped: map[string]string{}, ortOut: map[string]int{}}
	inNames, err := s.addInputs(ins, mi.values)
	if err != nil {
		return nil, err
	}
	infos, rewrite := s.tensorOutputs(outs, mi.values)
	if len(infos) == 0 {
		return nil, errors.New("load model: the model has no tensor output of a supported type: give it a float, integer, bool or string output")
	}
	var r *rewriter
	if rewrite || len(ins) == 0 {
		r = newRewriter(mi)
		if len(ins) == 0 {
			inNames = append(inNames, r.dummyInput())
			s.dummy = true
		}
	}
	ortOutNames, err := s.addFetches(infos, r, mi)
	if err != nil {
		return nil, err
	}
	runModel, err := modelToRun(model, r, &opts, provider, so, ins, outs)
	if err != nil {
		return nil, err
	}
	serves := r == nil && slices.Equal(ortOutNames, mi.outputs)
	s.sess, err = runSession(direct, serves, runModel, inNames, ortOutNames, so, provider)
	direct = nil // adopted or destroyed
	if err != nil {
		return nil, err
	}
	return s, nil
}

// discover returns onnxruntime's view of the model's inputs and outputs: from the session
// itself when it can be opened with the names the protobuf declares (openDirect), which
// it returns too, else from a temporary CPU session (direct is nil then).
func discover(model []byte, mi *modelInfo, scanErr error, so *ortgo.SessionOptions, opts Options) (direct *ortgo.DynamicAdvancedSession, ins, outs []ortgo.InputOutputInfo, err error) {
	if directOpen && scanErr == nil && opts.OptimizedModelPath == "" && !needsFetchNodes(mi) {
		direct, ins, outs, _ = openDirect(model, mi, so)
	}
	if direct != nil {
		return direct, ins, outs, nil
	}
	tempSessions.Add(1)
	ins, outs, err = ortgo.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load model: %s: pass the bytes of a valid .onnx file", oneLine(strings.TrimPrefix(err.Error(), "Error creating temporary session: ")))
	}
	return nil, ins, outs, nil
}

// addInputs records the model's inputs (ins, with the declarations in declared) in s and
// returns their names. An input that is not a tensor of a supported type is an error.
func (s *Session) addInputs(ins []ortgo.InputOutputInfo, declared map[string]*onnxpb.ValueInfoProto) ([]string, error) {
	var inNames []string
	for _, io := range ins {
		if io.OrtValueType != ortgo.ONNXTypeTensor {
			return nil, fmt.Errorf("input %q is a %s, but the bridge passes only tensors: give the model tensor inputs", io.Name, strings.ToLower(strings.TrimPrefix(io.OrtValueType.String(), "ONNX_TYPE_")))
		}
		info, rankOK := valueInfo(io, declared[io.Name])
		if !supported(info.Type) {
			return nil, fmt.Errorf("input %q has element type %s, which the bridge cannot pass: convert the input to a supported type (float, double, float16, bfloat16, integers, bool, string)", io.Name, info.Type)
		}
		s.inIndex[info.Name] = len(s.inputs)
		s.inputs = append(s.inputs, info)
		s.rankOK = append(s.rankOK, rankOK)
		inNames = append(inNames, info.Name)
	}
	return inNames, nil
}

// tensorOutputs returns the outputs Run can return, and records in s.skipped why each
// other one cannot. rewrite reports whether one of them needs fetch nodes (a cast or a
// flattened shape).
func (s *Session) tensorOutputs(outs []ortgo.InputOutputInfo, declared map[string]*onnxpb.ValueInfoProto) (infos []ValueInfo, rewrite bool) {
	for _, io := range outs {
		if io.OrtValueType != ortgo.ONNXTypeTensor {
			s.skipped[io.Name] = fmt.Sprintf("it is a %s, and the bridge returns only tensors", strings.ToLower(strings.TrimPrefix(io.OrtValueType.String(), "ONNX_TYPE_")))
			continue
		}
		info, _ := valueInfo(io, declared[io.Name])
		if !supported(info.Type) {
			s.skipped[io.Name] = fmt.Sprintf("its element type %s is one onnxruntime_go cannot return", info.Type)
			continue
		}
		if cast, flatten := needsHelp(info); cast || flatten {
			rewrite = true
		}
		infos = append(infos, info)
	}
	return infos, rewrite
}

// addFetches records in s how each output in infos is fetched (through r's fetch nodes
// when r is not nil) and returns the names of the onnxruntime outputs the session
// fetches.
func (s *Session) addFetches(infos []ValueInfo, r *rewriter, mi *modelInfo) ([]string, error) {
	var ortOutNames []string
	for _, info := range infos {
		f := fetch{info: info, value: info.Name}
		if r != nil {
			var err error
			if f, err = r.add(info); err != nil {
				return nil, err
			}
		}
		s.outIndex[info.Name] = len(s.fetches)
		s.fetches = append(s.fetches, f)
		for _, name := range []string{f.value, f.shape} {
			if name != "" {
				s.ortOut[name] = len(ortOutNames)
				ortOutNames = append(ortOutNames, name)
				s.fed = append(s.fed, mi.fed[name])
			}
		}
	}
	s.nOrtOut = len(ortOutNames)
	return ortOutNames, nil
}

// modelToRun returns the bytes the session runs: model with r's fetch nodes when r is not
// nil, else model itself. It has opts.OptimizedModelPath written, from the model without
// the fetch nodes.
func modelToRun(model []byte, r *rewriter, opts *Options, p Provider, so *ortgo.SessionOptions, ins, outs []ortgo.InputOutputInfo) ([]byte, error) {
	if r == nil {
		if opts.OptimizedModelPath != "" {
			if err := so.SetOptimizedModelFilePath(opts.OptimizedModelPath); err != nil {
				return nil, fmt.Errorf("set optimized model path: %s", oneLine(err.Error()))
			}
		}
		return model, nil
	}
	runModel, err := r.apply(model)
	if err != nil {
		return nil, fmt.Errorf("load model: re-encode the model: %v", err)
	}
	if opts.OptimizedModelPath != "" {
		// A separate session on the original bytes writes the optimized graph, so that it
		// has no fetch nodes.
		if err := writeOptimized(model, opts, p, ins, outs); err != nil {
			return nil, err
		}
	}
	return runModel, nil
}

// runSession returns the session Run uses: direct, when it is not nil and serves as it
// is, else a new session on runModel with these inputs and outputs. A direct session that
// cannot serve (fetch nodes, outputs left out) is closed before the new one opens, so
// that two copies of the model (GPU memory too) are never held at once.
func runSession(direct *ortgo.DynamicAdvancedSession, serves bool, runModel []byte, inNames, ortOutNames []string, so *ortgo.SessionOptions, p Provider) (*ortgo.DynamicAdvancedSession, error) {
	if direct != nil {
		if serves {
			return direct, nil
		}
		direct.Destroy()
	}
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(runModel, inNames, ortOutNames, so)
	if err != nil {
		return nil, sessionError(p, err)
	}
	return sess, nil
}

// writeOptimized creates and drops a session on model only to have onnxruntime write the
// optimized graph to opts.OptimizedModelPath.
func writeOptimized(model []byte, opts *Options, p Provider, ins, outs []ortgo.InputOutputInfo) error {
	so, err := opts.sessionOptions(p, opts.OptimizedModelPath)
	if err != nil {
		return err
	}
	defer so.Destroy()
	names := func(infos []ortgo.InputOutputInfo) []string {
		var n []string
		for _, i := range infos {
			n = append(n, i.Name)
		}
		return n
	}
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, names(ins), names(outs), so)
	if err != nil {
		return sessionError(p, err)
	}
	return sess.Destroy()
}

// sessionError explains a failure to create a session. The model already loaded on the
// CPU to discover its inputs, so with a GPU provider the provider is what failed.
func sessionError(p Provider, err error) error {
	msg := strings.TrimPrefix(err.Error(), "Error creating C session: ")
	if p != CPU {
		return unavailable(p, errors.New(msg))
	}
	return fmt.Errorf("create onnxruntime session: %s", oneLine(msg))
}

// valueInfo merges onnxruntime's view of a value with the model's declaration (for
// dimension names). rankOK is false when the model declares no shape and onnxruntime
// inferred none, so the rank is unknown.
func valueInfo(io ortgo.InputOutputInfo, decl *onnxpb.ValueInfoProto) (info ValueInfo, rankOK bool) {
	info = ValueInfo{Name: io.Name, Type: onnxio.DataType(io.DataType), Shape: []int64{}, DimNames: []string{}}
	for _, d := range io.Dimensions {
		if d < 0 {
			d = -1
		}
		info.Shape = append(info.Shape, d)
		info.DimNames = append(info.DimNames, "")
	}
	shape := decl.GetType().GetTensorType().GetShape()
	if dims := shape.GetDim(); len(dims) == len(info.Shape) {
		for i, d := range dims {
			if info.Shape[i] < 0 {
				info.DimNames[i] = d.GetDimParam()
			}
		}
	}
	rankOK = len(info.Shape) > 0 || shape != nil
	return info, rankOK
}

// Inputs returns the model's inputs in the model's order (copies).
func (s *Session) Inputs() []ValueInfo {
	out := make([]ValueInfo, len(s.inputs))
	for i, v := range s.inputs {
		out[i] = v.clone()
	}
	return out
}

// Outputs returns the model's outputs that Run can return, in the model's order
// (copies). Outputs that are not tensors or whose element type the bridge cannot return
// (float8, int4, complex) are left out.
func (s *Session) Outputs() []ValueInfo {
	out := make([]ValueInfo, len(s.fetches))
	for i, f := range s.fetches {
		out[i] = f.info.clone()
	}
	return out
}

// Close releases the session. It waits for running calls to Run; later calls to Run
// return an error. Closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

// Run runs the model on inputs (every model input, by name) and returns the named
// outputs, or all of Outputs when none are named. Inputs are checked before anything
// runs: unknown and missing names, element types, ranks and fixed dimensions are errors
// naming the input. The returned tensors are new Go memory the caller owns; inputs are
// only read. onnxruntime computes every output on each call and Run returns those
// asked for.
func (s *Session) Run(inputs map[string]*onnxio.Tensor, outputs ...string) (map[string]*onnxio.Tensor, error) {
	return s.run(nil, inputs, outputs)
}

// run is Run, and RunInto when b is not nil.
func (s *Session) run(b *Buffers, inputs map[string]*onnxio.Tensor, outputs []string) (map[string]*onnxio.Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, errors.New("run: the session is closed: create a new one with NewSession")
	}
	if err := s.checkNames(inputs); err != nil {
		return nil, err
	}
	want, err := s.wanted(outputs)
	if err != nil {
		return nil, err
	}
	in, err := s.inputValues(inputs)
	if err != nil {
		return nil, err
	}
	defer releaseAll(in)
	out, owned, err := s.runValues(b, inputs, in)
	if err != nil {
		return nil, err
	}
	defer releaseAll(owned)
	return s.results(want, out)
}

// inputValues checks inputs against the model's inputs and returns them as onnxruntime
// values in the session's input order, with the placeholder input last when the session
// has one. The caller releases them.
func (s *Session) inputValues(inputs map[string]*onnxio.Tensor) ([]ortgo.Value, error) {
	n := len(s.inputs)
	if s.dummy {
		n++
	}
	in := make([]ortgo.Value, 0, n)
	for i, info := range s.inputs {
		t := inputs[info.Name]
		if err := s.checkInput(i, t); err != nil {
			releaseAll(in)
			return nil, err
		}
		v, err := toValue(t)
		if err != nil {
			releaseAll(in)
			return nil, fmt.Errorf("input %q: %v", info.Name, err)
		}
		in = append(in, track(v))
	}
	if s.dummy {
		v, err := ortgo.NewTensor(ortgo.NewShape(1), []bool{false})
		if err != nil {
			releaseAll(in)
			return nil, fmt.Errorf("create the placeholder input: %v", err)
		}
		in = append(in, track(v))
	}
	return in, nil
}

// runValues runs the session on in and returns the onnxruntime outputs, and owned: those
// the caller must release (all of them without buffers; with buffers, those b does not
// keep). With b, the outputs go into the buffers b kept for inputs of these shapes.
func (s *Session) runValues(b *Buffers, inputs map[string]*onnxio.Tensor, in []ortgo.Value) (out, owned []ortgo.Value, err error) {
	out = make([]ortgo.Value, s.nOrtOut)
	var key string
	var prealloc []ortgo.Value
	if b != nil {
		var some bool
		key = s.shapeKey(inputs)
		if prealloc, some = b.preallocated(key); some {
			copy(out, prealloc)
		} else {
			prealloc = nil
		}
	}
	runOnce := func() error {
		err := s.sess.Run(in, out)
		for i, v := range out { // onnxruntime_go allocated these, even when it failed part way
			if v != nil && (prealloc == nil || v != prealloc[i]) {
				owned = append(owned, track(v))
			}
		}
		return err
	}
	err = runOnce()
	if err != nil && prealloc != nil {
		// A kept buffer whose shape no longer fits (an output whose shape depends on the
		// values) fails the run: run again with every output allocated by onnxruntime,
		// and keep will mark the outputs whose shapes changed.
		releaseAll(owned)
		out, prealloc, owned = make([]ortgo.Value, s.nOrtOut), nil, nil
		err = runOnce()
	}
	if err != nil {
		releaseAll(owned)
		return nil, nil, fmt.Errorf("run: %s: check the inputs' shapes and values against the model", oneLine(strings.TrimPrefix(err.Error(), "Error running network: ")))
	}
	if b != nil {
		owned = b.keep(key, out, prealloc)
	}
	return out, owned, nil
}

// results converts the wanted outputs (indices into s.fetches) from the onnxruntime
// values out to Go tensors by output name.
func (s *Session) results(want []int, out []ortgo.Value) (map[string]*onnxio.Tensor, error) {
	result := make(map[string]*onnxio.Tensor, len(want))
	for _, i := range want {
		f := s.fetches[i]
		t, err := s.result(f, out)
		if err != nil {
			return nil, err
		}
		result[f.info.Name] = t
	}
	return result, nil
}

// result converts output f from out: its value, with the shape its fetch node reported
// and narrowed to its own element type where onnxruntime returned it cast.
func (s *Session) result(f fetch, out []ortgo.Value) (*onnxio.Tensor, error) {
	t, err := fromValue(out[s.ortOut[f.value]])
	if err != nil {
		return nil, fmt.Errorf("output %q: %v", f.info.Name, err)
	}
	if f.shape != "" {
		st, err := fromValue(out[s.ortOut[f.shape]])
		if err != nil {
			return nil, fmt.Errorf("output %q: shape: %v", f.info.Name, err)
		}
		shape, _ := st.Data.([]int64)
		if n, err := onnxio.NumElements(shape); err != nil || int(n) != t.Len() {
			return nil, fmt.Errorf("output %q: onnxruntime reported shape %v for %d elements", f.info.Name, shape, t.Len())
		}
		t.Shape = append([]int64(nil), shape...)
	}
	if f.cast != 0 {
		t = narrow(t, f.cast)
	}
	return t, nil
}

// liveValues counts the onnxruntime values that Run holds; it is back to zero whenever
// no Run is in progress (the tests check this).
var liveValues atomic.Int64

// directOpen turns openDirect on (a variable, so that tests compare it with the
// two-session way).
var directOpen = true

// tempSessions counts the temporary sessions NewSession opened to learn a model's inputs
// and outputs (openDirect avoids them), for the tests.
var tempSessions atomic.Int64

func track(v ortgo.Value) ortgo.Value {
	liveValues.Add(1)
	return v
}

func release(v ortgo.Value) {
	if v != nil {
		v.Destroy()
		liveValues.Add(-1)
	}
}

// releaseAll releases each of vs.
func releaseAll(vs []ortgo.Value) {
	for _, v := range vs {
		release(v)
	}
}

// checkNames reports unknown and missing input names.
func (s *Session) checkNames(inputs map[string]*onnxio.Tensor) error {
	var unknown, missing []string
	for name := range inputs {
		if _, ok := s.inIndex[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	for _, info := range s.inputs {
		if _, ok := inputs[info.Name]; !ok {
			missing = append(missing, info.Name)
		}
	}
	if len(unknown) == 0 && len(missing) == 0 {
		return nil
	}
	sort.Strings(unknown)
	msg := []string{}
	if len(unknown) > 0 {
		msg = append(msg, fmt.Sprintf("unknown input %s", quoteList(unknown)))
	}
	if len(missing) > 0 {
		msg = append(msg, fmt.Sprintf("missing input %s", quoteList(missing)))
	}
	names := make([]string, len(s.inputs))
	for i, info := range s.inputs {
		names[i] = info.Name
	}
	return fmt.Errorf("run: %s: the model's inputs are %s", strings.Join(msg, ", "), quoteList(names))
}

// wanted resolves the names of the outputs to return to indices into s.fetches.
func (s *Session) wanted(names []string) ([]int, error) {
	if len(names) == 0 {
		all := make([]int, len(s.fetches))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	var idx []int
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		i, ok := s.outIndex[name]
		if !ok {
			if why, ok := s.skipped[name]; ok {
				return nil, fmt.Errorf("run: output %q cannot be returned: %s", name, why)
			}
			all := make([]string, len(s.fetches))
			for i, f := range s.fetches {
				all[i] = f.info.Name
			}
			return nil, fmt.Errorf("run: unknown output %q: the model's outputs are %s", name, quoteList(all))
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// checkInput checks tensor t against input i's declaration.
func (s *Session) checkInput(i int, t *onnxio.Tensor) error {
	info := s.inputs[i]
	if t == nil {
		return fmt.Errorf("input %q is nil: pass a tensor", info.Name)
	}
	if t.Type != info.Type {
		return fmt.Errorf("input %q: element type is %s, the model wants %s", info.Name, t.Type, info.Type)
	}
	if err := checkData(t); err != nil {
		return fmt.Errorf("input %q: %v", info.Name, err)
	}
	if !s.rankOK[i] {
		return nil
	}
	if len(t.Shape) != len(info.Shape) {
		return fmt.Errorf("input %q: rank is %d (shape %v), the model wants rank %d (%s)", info.Name, len(t.Shape), t.Shape, len(info.Shape), info)
	}
	for d, want := range info.Shape {
		if want >= 0 && t.Shape[d] != want {
			return fmt.Errorf("input %q: dimension %d is %d (shape %v), the model fixes it at %d (%s)", info.Name, d, t.Shape[d], t.Shape, want, info)
		}
	}
	return nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 0 {
		return "(none)"
	}
	return strings.Join(q, ", ")
}

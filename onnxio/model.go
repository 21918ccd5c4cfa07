package onnxio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Model is an ONNX model in memory: the protobuf message and the folder that relative
// external-data paths resolve against.
type Model struct {
	// Proto is the model. Code may read and edit it freely; the helpers in this package
	// keep it consistent.
	Proto *onnxpb.ModelProto
	// Path is the file the model was loaded from ("" when built in memory).
	Path string
	// Dir is the folder external data files are read from (the model file's folder).
	Dir string
	// External lists the external data files that were read at load time, relative to Dir.
	External []string
}

// Graph returns the main graph, creating an empty one when the model has none.
func (m *Model) Graph() *onnxpb.GraphProto {
	if m.Proto.Graph == nil {
		m.Proto.Graph = &onnxpb.GraphProto{}
	}
	return m.Proto.Graph
}

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	return &Model{
		Proto:    proto.Clone(m.Proto).(*onnxpb.ModelProto),
		Path:     m.Path,
		Dir:      m.Dir,
		External: append([]string(nil), m.External...),
	}
}

// Opset returns the version of the operator set imported for domain ("" or "ai.onnx"
// for the default domain), or 0 when the model does not import it.
func (m *Model) Opset(domain string) int64 {
	domain = canonicalDomain(domain)
	for _, o := range m.Proto.GetOpsetImport() {
		if canonicalDomain(o.GetDomain()) == domain {
			return o.GetVersion()
		}
	}
	return 0
}

// SetOpset imports version v of domain, replacing an existing import of that domain.
func (m *Model) SetOpset(domain string, v int64) {
	for _, o := range m.Proto.GetOpsetImport() {
		if canonicalDomain(o.GetDomain()) == canonicalDomain(domain) {
			o.Version = proto.Int64(v)
			return
		}
	}
	m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(v)})
}

func canonicalDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// Load reads the ONNX model in file path and the external data its tensors refer to.
func Load(path string) (*Model, error) {
	f, err := regular.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read model: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read model %s: %w", path, err)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("cannot read model %s: %w", path, err)
	}
	m, err := LoadBytes(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	if len(data) > bigModelBytes {
		// The file's bytes are garbage now, but the heap would only be collected once it
		// doubled: for a big model, collect now so that a following Save (which needs a
		// buffer as big again) does not stack a third copy on top of the other two.
		data = nil
		runtime.GC()
	}
	return m, nil
}

// bigModelBytes is the file size above which Load returns the file's buffer to the
// collector at once.
const bigModelBytes = 64 << 20

// LoadBytes parses a serialized model. External data paths resolve against dir; they
// must stay inside it.
func LoadBytes(data []byte, dir string) (*Model, error) {
	mp := &onnxpb.ModelProto{}
	if err := unmarshal(data, mp); err != nil {
		return nil, err
	}
	m := &Model{Proto: mp, Dir: dir}
	if err := m.loadExternal(); err != nil {
		return nil, err
	}
	return m, nil
}

// unmarshal parses and sanity-checks a ModelProto; it explains common mistakes.
func unmarshal(data []byte, mp *onnxpb.ModelProto) error {
	if len(data) == 0 {
		return errors.New("not an ONNX model: the file is empty")
	}
	if bytes.HasPrefix(data, []byte("version https://git-lfs")) {
		return errors.New("not an ONNX model: this is a Git LFS pointer file; run `git lfs pull`")
	}
	if err := proto.Unmarshal(data, mp); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "proto: ")
		return fmt.Errorf("not an ONNX model (the protobuf does not parse: %s); the file may be truncated or corrupt", msg)
	}
	if mp.IrVersion == nil && mp.Graph == nil {
		return errors.New("not an ONNX model: it parses as protobuf but has no ir_version and no graph")
	}
	if mp.Graph == nil {
		return errors.New("not an ONNX model: it has no graph")
	}
	return nil
}

// ExternalRef is a tensor's external_data entry, decoded.
type ExternalRef struct {
	Location string // path relative to the model's folder
	Offset   int64
	Length   int64 // -1: to the end of the file
}

// ParseExternalRef decodes tp's external_data keys.
func ParseExternalRef(tp *onnxpb.TensorProto) (ExternalRef, error) {
	ref := ExternalRef{Length: -1}
	for _, kv := range tp.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			ref.Location = kv.GetValue()
		case "offset":
			ref.Offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			ref.Length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return ref, fmt.Errorf("tensor %q: external_data %s=%q is not a number", tp.GetName(), kv.GetKey(), kv.GetValue())
		}
	}
	if ref.Location == "" {
		return ref, fmt.Errorf("tensor %q: external data without a location", tp.GetName())
	}
	if ref.Offset < 0 || ref.Length < -1 {
		return ref, fmt.Errorf("tensor %q: negative external data offset or length", tp.GetName())
	}
	return ref, nil
}

// resolveInside joins rel to dir and refuses a path that leaves dir.
func resolveInside(dir, rel string) (string, error) {
	if filepath.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", fmt.Errorf("external data path %q leaves the model's folder; only paths inside it are allowed", rel)
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	// A symbolic link may still point outside: compare the resolved paths.
	if real, err := filepath.EvalSymlinks(p); err == nil {
		base, err := filepath.EvalSymlinks(dir)
		if err == nil {
			if r, err := filepath.Rel(base, real); err != nil || !filepath.IsLocal(r) {
				return "", fmt.Errorf("external data path %q resolves outside the model's folder", rel)
			}
		}
	}
	return p, nil
}

// loadExternal reads every externally stored tensor into raw_data and clears its
// external_data fields, so the in-memory model is self-contained.
func (m *Model) loadExternal() error {
	files := map[string]*os.File{}
	read := map[string]int64{} // bytes read per file: at most its size, as ranges do not overlap
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var err error
	WalkTensors(m.Proto, func(tp *onnxpb.TensorProto, where string) bool {
		if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return true
		}
		var ref ExternalRef
		if ref, err = ParseExternalRef(tp); err != nil {
			return false
		}
		if m.Dir == "" {
			err = fmt.Errorf("tensor %q: its data is in external file %q, but the model was loaded from bytes without a folder", tp.GetName(), ref.Location)
			return false
		}
		var p string
		if p, err = resolveInside(m.Dir, ref.Location); err != nil {
			err = fmt.Errorf("tensor %q: %w", tp.GetName(), err)
			return false
		}
		f, ok := files[p]
		if !ok {
			if f, err = regular.Open(p); err != nil {
				err = fmt.Errorf("tensor %q: cannot open its external data file: %w", tp.GetName(), err)
				return false
			}
			files[p] = f
			m.External = append(m.External, ref.Location)
		}
		var st os.FileInfo
		if st, err = f.Stat(); err != nil {
			err = fmt.Errorf("tensor %q: cannot read its external data file: %w", tp.GetName(), err)
			return false
		}
		if !st.Mode().IsRegular() {
			err = fmt.Errorf("tensor %q: external data %s is not a regular file", tp.GetName(), ref.Location)
			return false
		}
		length := ref.Length
		if length < 0 {
			length = st.Size() - ref.Offset
		}
		// Compare without adding: offset + length may overflow.
		if ref.Offset > st.Size() || length < 0 || length > st.Size()-ref.Offset {
			err = fmt.Errorf("tensor %q: external data %s offset %d length %d runs past the file's end (%d bytes)", tp.GetName(), ref.Location, ref.Offset, length, st.Size())
			return false
		}
		if read[p] += length; read[p] > st.Size() {
			err = fmt.Errorf("tensor %q: the tensors stored in external data %s add up to %d bytes, more than the file's %d: their ranges overlap, which a written model never does; re-export the model", tp.GetName(), ref.Location, read[p], st.Size())
			return false
		}
		buf := make([]byte, length)
		if _, err = f.ReadAt(buf, ref.Offset); err != nil {
			err = fmt.Errorf("tensor %q: reading external data %s: %w", tp.GetName(), ref.Location, err)
			return false
		}
		tp.RawData = buf
		tp.ExternalData = nil
		tp.DataLocation = nil
		return true
	})
	return err
}

// WalkTensors calls fn for every TensorProto stored in the model: initializers of the main
// graph and of every subgraph, tensor attributes (Constant nodes' values included), sparse
// tensors' parts, functions' nodes and training graphs. where describes the place
// ("initializer", "attribute value of node conv1"). fn returns false to stop the walk.
func WalkTensors(mp *onnxpb.ModelProto, fn func(tp *onnxpb.TensorProto, where string) bool) {
	w := tensorWalker{fn: fn}
	w.graph(mp.GetGraph())
	for _, f := range mp.GetFunctions() {
		w.nodes(f.GetNode())
	}
	for _, ti := range mp.GetTrainingInfo() {
		w.graph(ti.GetInitialization())
		w.graph(ti.GetAlgorithm())
	}
}

type tensorWalker struct {
	fn      func(*onnxpb.TensorProto, string) bool
	stopped bool
}

func (w *tensorWalker) visit(tp *onnxpb.TensorProto, where string) {
	if tp != nil && !w.stopped && !w.fn(tp, where) {
		w.stopped = true
	}
}

func (w *tensorWalker) sparse(sp *onnxpb.SparseTensorProto, where string) {
	w.visit(sp.GetValues(), where)
	w.visit(sp.GetIndices(), where)
}

func (w *tensorWalker) graph(g *onnxpb.GraphProto) {
	if g == nil {
		return
	}
	for _, t := range g.GetInitializer() {
		w.visit(t, "initializer")
	}
	for _, s := range g.GetSparseInitializer() {
		w.sparse(s, "sparse initializer")
	}
	w.nodes(g.GetNode())
}

func (w *tensorWalker) nodes(nodes []*onnxpb.NodeProto) {
	for _, n := range nodes {
		for _, a := range n.GetAttribute() {
			where := fmt.Sprintf("attribute %s of node %s", a.GetName(), NodeLabel(n))
			w.visit(a.GetT(), where)
			for _, t := range a.GetTensors() {
				w.visit(t, where)
			}
			if a.SparseTensor != nil {
				w.sparse(a.SparseTensor, where)
			}
			for _, s := range a.GetSparseTensors() {
				w.sparse(s, where)
			}
			w.graph(a.GetG())
			for _, g := range a.GetGraphs() {
				w.graph(g)
			}
			if w.stopped {
				return
			}
		}
	}
}

// NodeLabel names a node for messages: its name, or its op type and first output when it
// has no name.
func NodeLabel(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%q (%s)", n.GetName(), n.GetOpType())
	}
	if len(n.GetOutput()) > 0 {
		return fmt.Sprintf("%s -> %q", n.GetOpType(), n.GetOutput()[0])
	}
	return n.GetOpType()
}

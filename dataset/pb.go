package dataset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// The pb format takes, per input, one of:
//
//   - a .pb file holding one TensorProto whose first axis is the samples; it is read
//     whole at Open and kept in memory;
//   - a folder laid out as ONNX's test data: test_data_set_N subfolders (in numeric
//     order) each holding input_K.pb files, or a folder holding input_K.pb files
//     directly (one data set). The TensorProto named after the input feeds it; when the
//     set's tensors have no names, input_K.pb feeds the K-th model input (in model
//     order, initializers left out). A set's tensor has the model input's full shape
//     (its first axis adding that many samples) or the shape of one sample. Sets are
//     read when a batch needs them, the last one kept.

// pbEntry is one input_K.pb file of a data set, its header.
type pbEntry struct {
	path string
	name string
	dt   onnxio.DataType
	dims []int64
}

// pbSegment is a run of samples that one TensorProto holds.
type pbSegment struct {
	path   string
	first  int     // first sample, counting over all segments
	n      int     // samples
	sample []int64 // shape of one sample
	batch  bool    // the tensor has a sample axis
	t      *onnxio.Tensor
}

// pbSource feeds an input from TensorProto files.
type pbSource struct {
	what    string
	dt      onnxio.DataType
	segs    []*pbSegment
	total   int
	uniform []int64 // the common sample shape, nil when it varies

	mu     sync.Mutex // guards the cache of the last set read
	cache  *pbSegment
	cacheT *onnxio.Tensor
}

var inputPB = regexp.MustCompile(`^input_(\d+)\.pb$`)

func (s *pbSource) Len() int              { return s.total }
func (s *pbSource) Type() onnxio.DataType { return s.dt }
func (s *pbSource) Sample() []int64       { return s.uniform }
func (s *pbSource) Describe() string      { return s.what }

func (d *Dataset) openPB(in InputInfo, pos int) (source, error) {
	p := d.spec.Inputs[in.Name]
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("input %q: cannot read %s: %v", in.Name, p, errText(err))
	}
	if !st.IsDir() {
		t, err := readPB(p)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("input %q: %s holds a scalar; give a tensor whose first axis is the samples", in.Name, p)
		}
		seg := &pbSegment{path: p, n: int(t.Shape[0]), sample: append([]int64{}, t.Shape[1:]...), batch: true, t: t}
		return &pbSource{what: p, dt: t.Type, segs: []*pbSegment{seg}, total: seg.n, uniform: seg.sample}, nil
	}
	sets, err := pbSets(p)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", in.Name, err)
	}
	s := &pbSource{what: p}
	for i, set := range sets {
		e, err := pickPB(set, in.Name, pos)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		if i == 0 {
			s.dt = e.dt
		} else if e.dt != s.dt {
			return nil, fmt.Errorf("input %q: %s holds %s data but %s holds %s; give every set one type", in.Name, e.path, e.dt, sets[0][0].path, s.dt)
		}
		seg := &pbSegment{path: e.path, first: s.total}
		rank := len(in.Shape)
		switch {
		case in.Shape == nil || len(e.dims) == rank:
			if len(e.dims) == 0 {
				return nil, fmt.Errorf("input %q: %s holds a scalar; give the input's full shape", in.Name, e.path)
			}
			seg.n, seg.sample, seg.batch = int(e.dims[0]), append([]int64{}, e.dims[1:]...), true
		case len(e.dims) == rank-1:
			seg.n, seg.sample = 1, append([]int64{}, e.dims...)
		default:
			return nil, fmt.Errorf("input %q: %s has shape %v, the model input has shape %s; give that shape (or one sample's)", in.Name, e.path, e.dims, dimString(in.Shape))
		}
		if in.Type == onnxio.TypeUndefined || e.dt == in.Type {
			if err := checkSample(in, seg.sample, e.path); err != nil {
				return nil, err
			}
		}
		if err := checkElements(in, seg.sample, seg.n, e.path); err != nil {
			return nil, err
		}
		s.segs = append(s.segs, seg)
		s.total += seg.n
	}
	s.uniform = s.segs[0].sample
	for _, seg := range s.segs[1:] {
		if !slices.Equal(seg.sample, s.uniform) {
			s.uniform = nil
			break
		}
	}
	return s, nil
}

// pbSets lists a folder's data sets: its test_data_set_N subfolders, else the folder
// itself; each set's input_K.pb files in K order.
func pbSets(dir string) ([][]pbEntry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", dir, errText(err))
	}
	var setDirs []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "test_data_set_") {
			setDirs = append(setDirs, e.Name())
		}
	}
	sortedNatural(setDirs)
	var dirs []string
	for _, s := range setDirs {
		dirs = append(dirs, filepath.Join(dir, s))
	}
	if len(dirs) == 0 {
		dirs = []string{dir}
	}
	var sets [][]pbEntry
	for _, sd := range dirs {
		files, err := os.ReadDir(sd)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %v", sd, errText(err))
		}
		type numbered struct {
			k    int
			name string
		}
		var inputs []numbered
		for _, f := range files {
			if m := inputPB.FindStringSubmatch(f.Name()); m != nil && !f.IsDir() {
				k, _ := strconv.Atoi(m[1])
				inputs = append(inputs, numbered{k, f.Name()})
			}
		}
		if len(inputs) == 0 {
			if len(setDirs) == 0 {
				return nil, fmt.Errorf("%s holds neither test_data_set_N folders nor input_K.pb files; lay it out as ONNX test data or name a .pb file", dir)
			}
			return nil, fmt.Errorf("%s holds no input_K.pb files", sd)
		}
		slices.SortFunc(inputs, func(a, b numbered) int { return a.k - b.k })
		var set []pbEntry
		for i, f := range inputs {
			if f.k != i {
				return nil, fmt.Errorf("%s has input_%d.pb but no input_%d.pb", sd, f.k, i)
			}
			e, err := pbHeader(filepath.Join(sd, f.name))
			if err != nil {
				return nil, err
			}
			set = append(set, e)
		}
		sets = append(sets, set)
	}
	return sets, nil
}

// pickPB chooses the file of a set that feeds the input at position pos named name.
func pickPB(set []pbEntry, name string, pos int) (pbEntry, error) {
	named := false
	var names []string
	for _, e := range set {
		if e.name == name {
			return e, nil
		}
		if e.name != "" {
			named = true
			names = append(names, e.name)
		}
	}
	dir := filepath.Dir(set[0].path)
	if named {
		return pbEntry{}, fmt.Errorf("no tensor in %s is named %q (they are named %s); name the tensors after the model inputs", dir, name, showList(names))
	}
	if pos >= len(set) {
		return pbEntry{}, fmt.Errorf("%s has no input_%d.pb for model input %d (tensors without names feed the inputs by position)", dir, pos, pos)
	}
	return set[pos], nil
}

// pbHeader reads a TensorProto file's name, type and shape, and checks that the file
// holds the data its shape needs (a few bytes could declare 2^40 samples).
func pbHeader(path string) (pbEntry, error) {
	tp, err := unmarshalPB(path)
	if err != nil {
		return pbEntry{}, err
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return pbEntry{}, fmt.Errorf("%s keeps its data in an external file; save the tensor with its data inline", path)
	}
	if err := onnxio.CheckTensorSize(tp); err != nil {
		return pbEntry{}, fmt.Errorf("%s: %v", path, err)
	}
	return pbEntry{path: path, name: tp.GetName(), dt: onnxio.DataType(tp.GetDataType()), dims: slices.Clone(tp.GetDims())}, nil
}

func unmarshalPB(path string) (*onnxpb.TensorProto, error) {
	b, err := regular.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errText(err))
	}
	tp := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(b, tp); err != nil {
		return nil, fmt.Errorf("%s is not a TensorProto file (%v); write it with onnx.numpy_helper.from_array(...).SerializeToString()", path, err)
	}
	return tp, nil
}

// readPB reads and decodes a TensorProto file.
func readPB(path string) (*onnxio.Tensor, error) {
	tp, err := unmarshalPB(path)
	if err != nil {
		return nil, err
	}
	t, err := onnxio.DecodeTensor(tp)
	if errors.Is(err, onnxio.ErrExternalData) {
		return nil, fmt.Errorf("%s keeps its data in an external file; save the tensor with its data inline", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return t, nil
}

func (s *pbSource) tensor(seg *pbSegment) (*onnxio.Tensor, error) {
	if seg.t != nil {
		return seg.t, nil
	}
	if s.cache == seg {
		return s.cacheT, nil
	}
	t, err := readPB(seg.path)
	if err != nil {
		return nil, err
	}
	if t.Type != s.dt || len(t.Shape) == 0 && seg.batch {
		return nil, fmt.Errorf("%s changed since the dataset was opened", seg.path)
	}
	s.cache, s.cacheT = seg, t
	return t, nil
}

// segment returns the segment holding sample row: the last that starts at or before it
// (a set of zero samples starts where the next one does, and holds none of them).
func (s *pbSource) segment(row int) *pbSegment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > row })
	return s.segs[i-1]
}

func (s *pbSource) Read(rows []int) (*onnxio.Tensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.segment(rows[0])
	sample := first.sample
	per := 1
	for _, d := range sample {
		per *= int(d)
	}
	var out reflect.Value
	for i, r := range rows {
		seg := s.segment(r)
		if !slices.Equal(seg.sample, sample) {
			return nil, fmt.Errorf("samples from %s and %s have different shapes (%v, %v); set batch: 1", first.path, seg.path, sample, seg.sample)
		}
		t, err := s.tensor(seg)
		if err != nil {
			return nil, err
		}
		src := reflect.ValueOf(t.Data)
		if src.Len() != seg.n*per {
			return nil, fmt.Errorf("%s changed since the dataset was opened", seg.path)
		}
		if i == 0 {
			out = reflect.MakeSlice(src.Type(), len(rows)*per, len(rows)*per)
		}
		off := (r - seg.first) * per
		reflect.Copy(out.Slice(i*per, (i+1)*per), src.Slice(off, off+per))
	}
	return &onnxio.Tensor{Type: s.dt, Shape: append([]int64{int64(len(rows))}, sample...), Data: out.Interface()}, nil
}

package dataset

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/onnxpipe/onnxpipe/internal/suggest"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// InputInfo is what the model says about one input (from its graph or an onnxruntime
// session).
type InputInfo struct {
	// Name is the graph input's name.
	Name string
	// Type is the element type; TypeUndefined when the model does not record it (the
	// data's own type is then accepted).
	Type onnxio.DataType
	// Shape is the input's shape, -1 for a dynamic (symbolic or unknown) dimension; nil
	// when the model records no shape at all, empty for a scalar. Dimension 0 is the batch
	// axis.
	Shape []int64
}

// InputsOf returns the inputs of m's main graph in graph order, leaving out the graph
// inputs that an initializer backs (they have defaults and are not fed).
func InputsOf(m *onnxio.Model) []InputInfo {
	g := m.Proto.GetGraph()
	if g == nil {
		return nil
	}
	ix := onnxio.NewIndex(g)
	var out []InputInfo
	for _, vi := range g.GetInput() {
		if _, ok := ix.Initializers[vi.GetName()]; ok {
			continue
		}
		in := InputInfo{Name: vi.GetName()}
		if tt := vi.GetType().GetTensorType(); tt != nil {
			in.Type = onnxio.DataType(tt.GetElemType())
		}
		if dims, _, ok := onnxio.ValueShape(vi); ok {
			in.Shape = append([]int64{}, dims...)
		}
		out = append(out, in)
	}
	return out
}

// Dataset is an opened dataset: the samples of every model input (and the labels, when
// the spec names them) in a fixed order, read batch by batch. It holds open files until
// Close.
type Dataset struct {
	spec     *Spec
	inputs   []InputInfo
	srcs     []source // parallel to inputs
	labels   []int64  // by file row; nil when there are none
	order    []int    // file rows in iteration order, after shuffle, limit and trimming
	batch    int
	warnings []string
	closers  []io.Closer
	npz      map[string]*npzArchive
}

// Batch is a run's worth of consecutive samples of a Dataset.
type Batch struct {
	// Index is the position of the batch's first sample in the dataset's order (after
	// shuffling); the batch holds samples Index .. Index+N-1.
	Index int
	// N is the number of samples in the batch.
	N int
	// Inputs maps each model input to its data, of shape [N, ...sample shape].
	Inputs map[string]*onnxio.Tensor
	// Labels are the samples' class ids; nil when the dataset has no labels.
	Labels []int64
	// Rows are the samples' positions in the data files (their order before shuffling),
	// one per sample, for messages that point at the offending sample.
	Rows []int
	// Files names the file or folder each input's samples come from, for messages.
	Files map[string]string
}

// source reads the samples of one input.
type source interface {
	// Len is the number of samples.
	Len() int
	// Type is the element type of the tensors Read returns.
	Type() onnxio.DataType
	// Sample is the shape of one sample, or nil when it varies between samples (the
	// source then checked every sample's shape against the model itself).
	Sample() []int64
	// Read returns the samples at the given file rows as one tensor [len(rows), ...].
	Read(rows []int) (*onnxio.Tensor, error)
	// Describe names the file or folder for messages.
	Describe() string
}

// Open reads spec for a model with these inputs (InputsOf, or an onnxruntime session's
// view). It reads only what the checks need: file headers and folder listings; sample
// data is read batch by batch (or, where a format allows no random access, as far as
// the batches need). It checks that every model input has data and every spec input
// names a model input, that element types match the model's exactly (no silent
// conversion, except pixels: the idx and images formats feed uint8 pixels to float
// inputs), that each sample's shape matches the model's fixed dimensions, and that all
// inputs and labels hold the same number of samples. Close the Dataset when done.
func Open(spec *Spec, inputs []InputInfo) (*Dataset, error) {
	if spec == nil {
		return nil, errors.New("no dataset spec")
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, errors.New("the model has no inputs to feed")
	}
	d := &Dataset{spec: spec, inputs: inputs, npz: map[string]*npzArchive{}}
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	if err := d.checkNames(); err != nil {
		return nil, err
	}
	fixed, err := fixedBatch(inputs)
	if err != nil {
		return nil, err
	}
	classes, err := d.openSources()
	if err != nil {
		return nil, err
	}
	if spec.Format == "random" {
		d.warnings = append(d.warnings, "random data: ranges calibrated and accuracy measured on random inputs mean little; use real samples")
		if len(spec.Inputs) > 0 {
			d.warnings = append(d.warnings, "format random ignores inputs")
		}
	}
	labelsWhat, err := d.openLabels(classes)
	if err != nil {
		return nil, err
	}
	n, err := d.sampleCount(labelsWhat)
	if err != nil {
		return nil, err
	}
	if err := d.orderSamples(n); err != nil {
		return nil, err
	}
	if err := d.chooseBatch(fixed); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// openSources opens the source of each model input, in d.inputs' order, and checks its
// element type and sample shape against the input's. It returns the labels of the class
// folders when the spec takes its labels from them (images, labels: folders).
func (d *Dataset) openSources() (classes []int64, err error) {
	spec := d.spec
	for i, in := range d.inputs {
		if in.Shape != nil && len(in.Shape) == 0 {
			return nil, fmt.Errorf("input %q is a scalar: datasets feed inputs with a batch axis (dim 0)", in.Name)
		}
		var src source
		switch spec.Format {
		case "npy", "npz":
			src, err = d.openArray(in)
		case "pb":
			src, err = d.openPB(in, i)
		case "images":
			var cls []int64
			src, cls, err = d.openImages(in, classes == nil && spec.Labels == LabelsFromFolders)
			if cls != nil {
				classes = cls
			}
		case "idx":
			src, err = d.openIdx(in)
		case "random":
			src, err = newRandom(in, i, spec)
		}
		if err != nil {
			return nil, err
		}
		if in.Type != onnxio.TypeUndefined && src.Type() != in.Type {
			return nil, fmt.Errorf("input %q: %s holds %s data, the model wants %s; convert the data%s",
				in.Name, src.Describe(), src.Type(), in.Type, numpyHint(spec.Format, in.Type))
		}
		if s := src.Sample(); s != nil {
			if err := checkSample(in, s, src.Describe()); err != nil {
				return nil, err
			}
			if err := checkElements(in, s, src.Len(), src.Describe()); err != nil {
				return nil, err
			}
		}
		d.srcs = append(d.srcs, src)
	}
	return classes, nil
}

// openLabels sets d.labels from the spec's labels file, or to classes (the class
// folders' labels) for labels: folders, and returns what holds them for messages ("" when
// the spec has no labels).
func (d *Dataset) openLabels(classes []int64) (labelsWhat string, err error) {
	spec := d.spec
	switch {
	case spec.Labels == LabelsFromFolders && spec.Format == "images":
		d.labels = classes
		return "class folders", nil
	case spec.Labels == LabelsFromFolders:
		return "", fmt.Errorf("labels: folders works with format images only; give a labels file (.npy, .npz, .txt or idx) instead")
	case spec.Labels != "":
		if d.labels, err = d.readLabels(spec.Labels); err != nil {
			return "", err
		}
		return spec.Labels, nil
	}
	return "", nil
}

// orderSamples sets d.order, the file rows of the n samples in iteration order: shuffled
// when the spec says so, then the spec's skip and limit applied.
func (d *Dataset) orderSamples(n int) error {
	spec := d.spec
	d.order = make([]int, n)
	for i := range d.order {
		d.order[i] = i
	}
	if spec.Shuffle != 0 {
		// A PCG generator seeded with (shuffle, 0): the same seed gives the same order
		// on every platform and Go release that keeps math/rand/v2's Shuffle.
		r := rand.New(rand.NewPCG(uint64(spec.Shuffle), 0))
		r.Shuffle(len(d.order), func(i, j int) { d.order[i], d.order[j] = d.order[j], d.order[i] })
	}
	if spec.Skip > 0 {
		if spec.Skip >= len(d.order) {
			return fmt.Errorf("skip %d leaves no samples: the data (%s) holds %d", spec.Skip, d.describe(), len(d.order))
		}
		d.order = d.order[spec.Skip:]
	}
	if spec.Limit > 0 && spec.Limit < len(d.order) {
		d.order = d.order[:spec.Limit]
	}
	return nil
}

// describe names the files or folders of the inputs' data, for messages.
func (d *Dataset) describe() string {
	var files []string
	for _, s := range d.srcs {
		files = append(files, s.Describe())
	}
	return strings.Join(files, ", ")
}

// checkNames checks that the spec's inputs and the model's inputs are the same names.
func (d *Dataset) checkNames() error {
	if d.spec.Format == "random" {
		return nil
	}
	keys := slices.Sorted(mapKeys(d.spec.Inputs))
	var names []string
	for _, in := range d.inputs {
		names = append(names, in.Name)
	}
	for _, k := range keys {
		if !slices.Contains(names, k) {
			msg := fmt.Sprintf("dataset input %q is not a model input", k)
			if s := suggest.Closest(k, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return fmt.Errorf("%s; the model's inputs: %s", msg, strings.Join(names, ", "))
		}
	}
	for _, in := range d.inputs {
		if _, ok := d.spec.Inputs[in.Name]; !ok {
			hint := ""
			if len(keys) > 0 {
				hint = fmt.Sprintf(" (the dataset's inputs: %s)", strings.Join(keys, ", "))
			}
			return fmt.Errorf("model input %q has no data: add %q: <file> to the dataset's inputs%s", in.Name, in.Name, hint)
		}
	}
	return nil
}

// fixedBatch returns the batch size the model fixes (dim 0 of its inputs), or 0.
func fixedBatch(inputs []InputInfo) (int, error) {
	fixed, by := 0, ""
	for _, in := range inputs {
		if len(in.Shape) == 0 || in.Shape[0] < 0 {
			continue
		}
		b := int(in.Shape[0])
		if b == 0 {
			return 0, fmt.Errorf("input %q has batch dimension 0: the model cannot take samples", in.Name)
		}
		if fixed != 0 && b != fixed {
			return 0, fmt.Errorf("inputs %q and %q fix different batch sizes (%d and %d): the model cannot be fed from one dataset", by, in.Name, fixed, b)
		}
		fixed, by = b, in.Name
	}
	return fixed, nil
}

// sampleCount checks that all inputs and labels hold the same number of samples.
func (d *Dataset) sampleCount(labelsWhat string) (int, error) {
	n := d.srcs[0].Len()
	same := true
	for _, s := range d.srcs {
		same = same && s.Len() == n
	}
	if d.labels != nil && len(d.labels) != n {
		same = false
	}
	if !same {
		var parts []string
		for i, s := range d.srcs {
			parts = append(parts, fmt.Sprintf("input %q: %d (%s)", d.inputs[i].Name, s.Len(), s.Describe()))
		}
		if d.labels != nil {
			parts = append(parts, fmt.Sprintf("labels: %d (%s)", len(d.labels), labelsWhat))
		}
		return 0, fmt.Errorf("inputs and labels hold different numbers of samples: %s; give every file the same number of samples", strings.Join(parts, ", "))
	}
	if n == 0 {
		var files []string
		for _, s := range d.srcs {
			files = append(files, s.Describe())
		}
		verb := "holds"
		if len(files) > 1 {
			verb = "hold"
		}
		return 0, fmt.Errorf("the dataset is empty: %s %s no samples", strings.Join(files, ", "), verb)
	}
	return n, nil
}

// chooseBatch settles the batch size and trims the order to whole batches when the
// model fixes the batch size.
func (d *Dataset) chooseBatch(fixed int) error {
	varying := false
	for i, s := range d.srcs {
		if s.Sample() == nil {
			varying = true
			if d.spec.Batch > 1 && fixed == 0 {
				return fmt.Errorf("input %q: the samples in %s have different shapes, so they cannot be batched; set batch: 1", d.inputs[i].Name, s.Describe())
			}
		}
	}
	switch {
	case fixed > 0:
		if d.spec.Batch != 0 && d.spec.Batch != fixed {
			d.warnings = append(d.warnings, fmt.Sprintf("batch %d ignored: the model fixes its batch size to %d", d.spec.Batch, fixed))
		}
		if varying && fixed > 1 {
			return fmt.Errorf("the samples (%s) have different shapes but the model fixes its batch size to %d; give samples of one shape", d.describe(), fixed)
		}
		d.batch = fixed
		if rest := len(d.order) % fixed; rest != 0 {
			if len(d.order) < fixed {
				return fmt.Errorf("the dataset (%s) has %d samples but the model fixes its batch size to %d: give at least %d samples", d.srcs[0].Describe(), len(d.order), fixed, fixed)
			}
			d.order = d.order[:len(d.order)-rest]
			d.warnings = append(d.warnings, fmt.Sprintf("%d samples left out: the model fixes its batch size to %d and the dataset has %d", rest, fixed, len(d.order)+rest))
		}
	case d.spec.Batch > 0:
		d.batch = d.spec.Batch
	case varying:
		d.batch = 1
	default:
		d.batch = 16
	}
	return nil
}

// Len is the number of samples Batches yields: all of them, or Limit, less the samples
// left out to make whole batches when the model fixes its batch size (see Warnings).
func (d *Dataset) Len() int { return len(d.order) }

// BatchSize is the number of samples per batch: the batch size the model fixes (dim 0
// of an input), else spec.Batch, else 1 when the samples' shapes vary, else 16.
func (d *Dataset) BatchSize() int { return d.batch }

// HasLabels reports whether batches carry labels.
func (d *Dataset) HasLabels() bool { return d.labels != nil }

// Inputs returns the model inputs the dataset feeds, in model order.
func (d *Dataset) Inputs() []InputInfo { return slices.Clone(d.inputs) }

// Warnings returns what Open noticed that does not stop the run (random data, samples
// left out, a batch size overridden by the model).
func (d *Dataset) Warnings() []string { return slices.Clone(d.warnings) }

// Batches yields the samples in order (file order, or the seeded shuffle), BatchSize at
// a time; the last batch may be smaller unless the model fixes its batch size. Every
// batch holds freshly allocated tensors the caller may keep. An error ends the
// sequence. It may be ranged over many times, also at once from several goroutines, and
// yields the same batches each time.
func (d *Dataset) Batches() iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		for start := 0; start < len(d.order); start += d.batch {
			rows := d.order[start:min(start+d.batch, len(d.order))]
			b := &Batch{Index: start, N: len(rows), Inputs: make(map[string]*onnxio.Tensor, len(d.srcs)), Rows: slices.Clone(rows),
				Files: make(map[string]string, len(d.srcs))}
			for i, s := range d.srcs {
				b.Files[d.inputs[i].Name] = s.Describe()
				t, err := s.Read(rows)
				if err != nil {
					yield(nil, fmt.Errorf("input %q, samples %d..%d: %w", d.inputs[i].Name, start, start+len(rows)-1, err))
					return
				}
				b.Inputs[d.inputs[i].Name] = t
			}
			if d.labels != nil {
				b.Labels = make([]int64, len(rows))
				for i, r := range rows {
					b.Labels[i] = d.labels[r]
				}
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// Close releases the files the dataset holds open. It may be called more than once.
func (d *Dataset) Close() error {
	var errs []error
	for _, c := range d.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	return errors.Join(errs...)
}

// checkSample checks one sample's shape against the model's input shape without its
// batch axis.
func checkSample(in InputInfo, sample []int64, what string) error {
	if in.Shape == nil {
		return nil
	}
	want := in.Shape[1:]
	if len(sample) != len(want) {
		return fmt.Errorf("input %q: %s holds samples of shape %v (rank %d), the model wants %s per sample (input shape %s); give data of shape [samples, %s]",
			in.Name, what, sample, len(sample), dimString(want), dimString(in.Shape), strings.Trim(dimString(want), "[]"))
	}
	for i, w := range want {
		if w >= 0 && w != sample[i] {
			return fmt.Errorf("input %q: dim %d is %d in the model and %d in %s (sample shape %v, model shape %s)",
				in.Name, i+1, w, sample[i], what, sample, dimString(in.Shape))
		}
	}
	return nil
}

// checkElements refuses samples without elements: the file holds no data for them, so
// its header alone would set how many there are (a few bytes could declare 2^40 samples).
func checkElements(in InputInfo, sample []int64, n int, what string) error {
	if n > 0 && slices.Contains(sample, 0) {
		return fmt.Errorf("input %q: %s holds %d samples of shape %v, which have no elements; give data with at least one value per sample", in.Name, what, n, sample)
	}
	return nil
}

// dimString writes a shape with "?" for dynamic dimensions.
func dimString(s []int64) string {
	parts := make([]string, len(s))
	for i, v := range s {
		if v < 0 {
			parts[i] = "?"
		} else {
			parts[i] = fmt.Sprint(v)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// numpyHint suggests the numpy conversion to a type, for the npy formats.
func numpyHint(format string, want onnxio.DataType) string {
	if format != "npy" && format != "npz" {
		return ""
	}
	if n, ok := numpyNames[want]; ok {
		return fmt.Sprintf(" (numpy: a.astype(np.%s))", n)
	}
	return ""
}

var numpyNames = map[onnxio.DataType]string{
	onnxio.TypeFloat: "float32", onnxio.TypeDouble: "float64", onnxio.TypeFloat16: "float16",
	onnxio.TypeInt8: "int8", onnxio.TypeUint8: "uint8", onnxio.TypeInt16: "int16", onnxio.TypeUint16: "uint16",
	onnxio.TypeInt32: "int32", onnxio.TypeUint32: "uint32", onnxio.TypeInt64: "int64", onnxio.TypeUint64: "uint64",
	onnxio.TypeBool: "bool_",
}

func mapKeys[V any](m map[string]V) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sortedNatural sorts names so that embedded numbers compare by value ("set_2" before
// "set_10").
func sortedNatural(names []string) {
	sort.SliceStable(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
}

func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// show returns a name read from a file as it is when it prints on one line, else quoted
// (Go syntax): a name holding a newline or another control character must not break an
// error message.
func show(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// showList joins names read from a file, each through show.
func showList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = show(n)
	}
	return strings.Join(out, ", ")
}

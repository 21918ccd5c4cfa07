package onnxio

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// MaxProtoSize is the largest serialized model protobuf can hold (2 GiB - 1).
const MaxProtoSize = 1<<31 - 1

// ExternalMode says when Save moves tensor data to an external file.
type ExternalMode int

const (
	// ExternalAuto keeps data inside the model unless the model would pass MaxProtoSize.
	ExternalAuto ExternalMode = iota
	// ExternalAlways moves every tensor of at least Threshold bytes out (all of them with
	// ThresholdAll).
	ExternalAlways
	// ExternalNever keeps all data inside; a model over MaxProtoSize is an error.
	ExternalNever
)

// DefaultThreshold is the threshold Save uses when SaveOptions.Threshold is 0.
const DefaultThreshold = 1024

// ThresholdAll as SaveOptions.Threshold moves every tensor to the external file, whatever
// its size: a threshold of 0 bytes, which the zero value cannot say (it means
// DefaultThreshold).
const ThresholdAll int64 = -1

// SaveOptions controls Save. The zero value keeps everything in one file when it fits.
type SaveOptions struct {
	External ExternalMode
	// Threshold is the smallest tensor, in bytes, that goes to the external file: 0 means
	// DefaultThreshold (1024), ThresholdAll (or any negative value) every tensor.
	Threshold int64
	// Location is the external data file's name, relative to the model's folder. By
	// default it is the model's file name, the first 8 hex digits of the data's sha256,
	// and ".data" (model.onnx.1a2b3c4d.data): each save writes a new data file, so that a
	// crash between the two renames leaves the older model with its own data, and the
	// data files of earlier saves of this model are removed once the new model is in
	// place.
	Location string
}

// Bytes serializes the model with all data inline, as onnxruntime sessions take it.
func (m *Model) Bytes() ([]byte, error) {
	if n := proto.Size(m.Proto); n > MaxProtoSize {
		return nil, fmt.Errorf("model is %d bytes, over protobuf's 2 GiB limit; save it with external data and open it from the file", n)
	}
	return proto.Marshal(m.Proto)
}

// Save writes the model to path atomically: the data goes to a temporary file in the same
// folder that is renamed over path once complete, so readers never see a partial file.
// External data, when written, is renamed into place before the model (under a fresh
// name unless opts.Location gives one). m.Path and m.Dir are not changed.
func (m *Model) Save(path string, opts SaveOptions) error {
	switch {
	case opts.Threshold == 0:
		opts.Threshold = DefaultThreshold
	case opts.Threshold < 0:
		opts.Threshold = 0 // ThresholdAll
	}
	external := opts.External == ExternalAlways
	if opts.External == ExternalAuto && proto.Size(m.Proto) > MaxProtoSize {
		external = true
	}
	loc := opts.Location
	if external && loc != "" {
		if !filepath.IsLocal(loc) {
			return fmt.Errorf("external data location %q must be a path inside the model's folder", loc)
		}
		if filepath.Clean(loc) == filepath.Base(path) {
			return fmt.Errorf("external data location %q is the model file itself", loc)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot create the output folder: %w", err)
	}
	if !external {
		data, err := m.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := WriteFileAtomic(path, data); err != nil {
			return err
		}
		removeStaleData(path, "")
		return nil
	}
	return m.saveExternal(path, loc, opts.Threshold)
}

// saveExternal writes big tensors to loc (a fresh name when loc is "") and the rest to
// path. It changes the tensors only for the time of the marshal and restores them before
// returning. Both files are written to temporary files first; the data file is renamed
// into place only once the model file is complete, just before the model itself.
func (m *Model) saveExternal(path, loc string, threshold int64) error {
	fresh := loc == ""
	if fresh {
		loc = filepath.Base(path) + ".data" // the temporary file's name; renamed below
	}
	dataPath := filepath.Join(filepath.Dir(path), loc)
	if err := os.MkdirAll(filepath.Dir(dataPath), 0o755); err != nil {
		return fmt.Errorf("cannot create the external data folder: %w", err)
	}
	df, err := CreateTemp(dataPath)
	if err != nil {
		return err
	}
	defer df.Abort()
	sum := sha256.New()
	dw := io.MultiWriter(df, sum)

	moved, werr := moveTensors(m.Proto, dw, loc, threshold)
	defer restoreTensors(moved) // the in-memory model is restored whatever happens
	if werr != nil {
		return fmt.Errorf("%s: writing external data %s: %w", path, dataPath, werr)
	}
	if fresh {
		loc = fmt.Sprintf("%s.%x.data", filepath.Base(path), sum.Sum(nil)[:4])
		df.final = filepath.Join(filepath.Dir(path), loc)
		for _, mt := range moved {
			mt.tp.ExternalData[0].Value = proto.String(loc)
		}
	}
	data, err := m.Bytes()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	mf, err := tempWith(path, data)
	if err != nil {
		return err
	}
	defer mf.Abort()
	saveStep("data written")
	if err := df.Commit(); err != nil {
		return err
	}
	saveStep("data renamed")
	if err := mf.Commit(); err != nil {
		return err
	}
	saveStep("model renamed")
	if fresh {
		removeStaleData(path, loc)
	}
	return nil
}

// movedTensor holds every field of a tensor that moving its data out changes.
type movedTensor struct {
	tp       *onnxpb.TensorProto
	raw      []byte
	floats   []float32
	int32s   []int32
	int64s   []int64
	doubles  []float64
	uint64s  []uint64
	external []*onnxpb.StringStringEntryProto
	location *onnxpb.TensorProto_DataLocation
}

// moveTensors writes the data of every tensor of at least threshold bytes to w, each
// aligned to 4 KiB as onnx's own writer does (so the file can be mapped), and points the
// tensor at loc. It returns the tensors it changed, also on error.
func moveTensors(mp *onnxpb.ModelProto, w io.Writer, loc string, threshold int64) ([]movedTensor, error) {
	var moved []movedTensor
	var offset int64
	var werr error
	WalkTensors(mp, func(tp *onnxpb.TensorProto, where string) bool {
		if DataType(tp.GetDataType()) == TypeString || tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			return true
		}
		raw := tp.RawData
		if raw == nil {
			if typedBytes(tp) < threshold {
				return true
			}
			if raw, werr = rawBytes(tp); werr != nil {
				werr = fmt.Errorf("%s: %w", where, werr)
				return false
			}
		}
		if int64(len(raw)) < threshold {
			return true
		}
		if pad := (4096 - offset%4096) % 4096; pad > 0 {
			if _, werr = w.Write(make([]byte, pad)); werr != nil {
				return false
			}
			offset += pad
		}
		if _, werr = w.Write(raw); werr != nil {
			return false
		}
		moved = append(moved, movedTensor{tp, tp.RawData, tp.FloatData, tp.Int32Data, tp.Int64Data, tp.DoubleData, tp.Uint64Data, tp.ExternalData, tp.DataLocation})
		tp.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(filepath.ToSlash(loc))},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(offset, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(raw)))},
		}
		tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		offset += int64(len(raw))
		tp.RawData, tp.FloatData, tp.Int32Data, tp.Int64Data, tp.DoubleData, tp.Uint64Data = nil, nil, nil, nil, nil, nil
		return true
	})
	return moved, werr
}

// restoreTensors puts the moved tensors' fields back.
func restoreTensors(moved []movedTensor) {
	for _, s := range moved {
		s.tp.RawData, s.tp.FloatData, s.tp.Int32Data, s.tp.Int64Data = s.raw, s.floats, s.int32s, s.int64s
		s.tp.DoubleData, s.tp.Uint64Data = s.doubles, s.uint64s
		s.tp.ExternalData, s.tp.DataLocation = s.external, s.location
	}
}

// saveStep is called between the steps of an external-data save; fault-injection tests
// kill the process there.
var saveStep = func(step string) {}

// SaveSteps are the points between the file operations of a save with external data.
var SaveSteps = []string{"data written", "data renamed", "model renamed"}

// staleData matches the data files Save names after a model file: <model>.data and
// <model>.<8 hex digits>.data.
var staleData = regexp.MustCompile(`^\.data$|^\.[0-9a-f]{8}\.data$`)

// removeStaleData removes the data files that earlier saves of path wrote under Save's
// names, keeping keep (the current one; "" when the model now holds its data inline).
// It runs after the new model is in place: until then the old model's data must stay.
func removeStaleData(path, keep string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if name == keep || !e.Type().IsRegular() || !strings.HasPrefix(name, base) || !staleData.MatchString(name[len(base):]) {
			continue
		}
		os.Remove(filepath.Join(dir, name))
	}
}

// typedBytes estimates the raw size of the data held in tp's typed fields.
func typedBytes(tp *onnxpb.TensorProto) int64 {
	n, err := NumElements(tp.GetDims())
	if err != nil {
		return 0
	}
	return DataType(tp.GetDataType()).ByteSize(n)
}

// rawBytes returns tp's data, held in its typed fields, as raw_data bytes.
func rawBytes(tp *onnxpb.TensorProto) ([]byte, error) {
	t, err := DecodeTensor(tp)
	if err != nil {
		return nil, err
	}
	enc, err := EncodeTensor(tp.GetName(), t)
	if err != nil {
		return nil, err
	}
	return enc.RawData, nil
}

// TempFile is a file being written next to its final path; Commit renames it into place,
// Abort removes it. Abort after Commit does nothing, so `defer f.Abort()` is safe.
type TempFile struct {
	*os.File
	final string
	done  bool
}

// CreateTemp opens a temporary file in final's folder (created if missing), named after
// final so that a crash leaves an obviously stray ".tmp" file beside it.
func CreateTemp(final string) (*TempFile, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the folder of %s: %w", final, err)
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", final, err)
	}
	return &TempFile{File: f, final: final}, nil
}

// Commit flushes the file to disk and renames it to its final path.
func (t *TempFile) Commit() error { return t.commit(true) }

// commit renames the file into place, after an fsync when durable.
func (t *TempFile) commit(durable bool) error {
	if t.done {
		return errors.New("onnxio: TempFile committed twice")
	}
	t.done = true
	var err error
	if durable {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(t.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(t.Name(), t.final)
	}
	if err != nil {
		os.Remove(t.Name())
		return fmt.Errorf("cannot write %s: %w", t.final, err)
	}
	return nil
}

// Abort closes and removes the temporary file unless it was committed.
func (t *TempFile) Abort() {
	if t.done {
		return
	}
	t.done = true
	t.Close()
	os.Remove(t.Name())
}

// WriteFileAtomic writes data to path through a temporary file, an fsync and a rename:
// readers see the old file or the whole new one, also after a crash of the machine.
func WriteFileAtomic(path string, data []byte) error { return writeAtomic(path, data, true) }

// WriteFileReplace is WriteFileAtomic without the fsync: atomic against a crash of the
// process, not of the machine. For reports and manifests, where a lost file is redone
// and thousands of fsyncs would dominate a batch of small models.
func WriteFileReplace(path string, data []byte) error { return writeAtomic(path, data, false) }

func writeAtomic(path string, data []byte, durable bool) error {
	f, err := tempWith(path, data)
	if err != nil {
		return err
	}
	defer f.Abort()
	return f.commit(durable)
}

// tempWith writes data to a new temporary file for path, not yet committed; on error
// nothing is left behind.
func tempWith(path string, data []byte) (*TempFile, error) {
	f, err := CreateTemp(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	return f, nil
}

// IsTempName reports whether a file name is one of CreateTemp's temporary files.
func IsTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")
}

// tempOf matches CreateTemp's names: "." + the final name + "." + random digits + ".tmp".
var tempOf = regexp.MustCompile(`^\..+\.[0-9]+\.tmp$`)

// RemoveTemps removes the temporary files that a killed process left while writing a
// file whose name starts with prefix, in dir: the model, its data and its reports. The
// caller must know that no other process writes them (the pipeline holds the output
// folder's lock). It returns the names removed.
func RemoveTemps(dir, prefix string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, "."+prefix) || !tempOf.MatchString(name) {
			continue
		}
		if os.Remove(filepath.Join(dir, name)) == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

package calibrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/internal/regular"
)

// SchemaVersion is the version of the table's JSON schema this package writes and reads.
const SchemaVersion = 1

// Table is a calibration result: one range per tensor, with what it was computed from.
// It is saved as indented JSON and reused when the graph, dataset and method match.
type Table struct {
	SchemaVersion int `json:"schema_version"` // SchemaVersion
	// GraphSHA256 is the hash of the prepared graph the table was computed on.
	GraphSHA256 string `json:"graph_sha256"`
	// Method is the method that chose the ranges.
	Method string `json:"method"`
	// Percentile is the percentile method's p (0 for other methods).
	Percentile float64 `json:"percentile,omitempty"`
	// Symmetric records whether the ranges were made symmetric.
	Symmetric bool `json:"symmetric"`
	// MovingAverage is the minmax method's averaging constant (0: off, or another method).
	MovingAverage float64 `json:"moving_average,omitempty"`
	// Dataset is a fingerprint of the dataset (files, sizes, mtimes, limit, shuffle), set
	// by the caller.
	Dataset string `json:"dataset"`
	// Samples is the number of samples the statistics were collected on.
	Samples int `json:"samples"`
	// Coverage says which activations the table holds: CoverageAll (every float
	// activation), CoverageQuantize (those whose range quantize can read) or
	// CoverageListed (the listed ones); empty in tables written before it existed, which
	// hold every activation unless tensors were listed.
	Coverage string `json:"coverage,omitempty"`
	// Tensors maps tensor names to their ranges.
	Tensors map[string]*TensorRange `json:"tensors"`
	// NotFloat lists the values asked for that are not float (shapes, indices): they have
	// no range.
	NotFloat []string `json:"not_float,omitempty"`
}

// TensorRange is one tensor's chosen range and the statistics behind it.
type TensorRange struct {
	// Min and Max are the range chosen by the method (min ≤ max).
	Min float32 `json:"min"`
	Max float32 `json:"max"`
	// ObservedMin and ObservedMax are the extremes of the finite values seen.
	ObservedMin float32 `json:"observed_min"`
	ObservedMax float32 `json:"observed_max"`
	// Mean and Std are the mean and population standard deviation of the finite values.
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	// Count is the number of finite values; 0 means the tensor was never calibrated.
	Count int64 `json:"count"`
	// NonFinite is the number of NaN and ±Inf values, left out of everything else.
	NonFinite int64 `json:"non_finite"`
	// AliasOf, when set, names the measured tensor whose values this one holds exactly
	// (it is the output of a Reshape, Transpose, Identity, ... of it): it was not exposed
	// during calibration and its range and statistics are copied from AliasOf's.
	AliasOf string `json:"alias_of,omitempty"`
	// Rule says why the range is not the method's: "bounded" for the output of an op
	// bounded by construction, whose range is that bound (SetOptions.Bounded).
	Rule string `json:"rule,omitempty"`
}

// Coverage values of Table.Coverage.
const (
	CoverageAll      = "all"
	CoverageQuantize = "quantize"
	CoverageListed   = "listed"
)

// Range returns the named tensor's range; ok is false for a tensor that is not in the
// table or had no finite value. (It implements quantize.Ranges.)
func (t *Table) Range(name string) (min, max float32, ok bool) {
	r := t.Tensors[name]
	if r == nil || r.Count == 0 {
		return 0, 0, false
	}
	return r.Min, r.Max, true
}

// CorruptTableError is LoadTable's error for a file that exists but is not a valid
// table (bad JSON, wrong schema version, inconsistent ranges): the caller can warn and
// calibrate again.
type CorruptTableError struct {
	Path string
	Err  error
}

func (e *CorruptTableError) Error() string {
	return fmt.Sprintf("calibration table %s is corrupt: %v", e.Path, e.Err)
}

func (e *CorruptTableError) Unwrap() error { return e.Err }

// validate checks what the JSON types cannot.
func (t *Table) validate() error {
	if t.SchemaVersion != SchemaVersion {
		return fmt.Errorf("schema_version %d (this version reads %d)", t.SchemaVersion, SchemaVersion)
	}
	if _, err := ParseMethod(t.Method); err != nil {
		return err
	}
	if !(t.Percentile >= 0 && t.Percentile <= 100) {
		return fmt.Errorf("percentile %g outside [0, 100]", t.Percentile)
	}
	if !(t.MovingAverage >= 0 && t.MovingAverage <= 1) {
		return fmt.Errorf("moving_average %g outside [0, 1]", t.MovingAverage)
	}
	if t.Samples < 0 {
		return fmt.Errorf("samples %d", t.Samples)
	}
	switch t.Coverage {
	case "", CoverageAll, CoverageQuantize, CoverageListed:
	default:
		return fmt.Errorf("coverage %q", t.Coverage)
	}
	if t.Tensors == nil {
		return errors.New("no tensors")
	}
	for name, r := range t.Tensors {
		switch {
		case r == nil:
			return fmt.Errorf("tensor %q: no range", name)
		case r.Count < 0 || r.NonFinite < 0:
			return fmt.Errorf("tensor %q: negative count", name)
		case !finite(r.Min) || !finite(r.Max) || r.Min > r.Max:
			return fmt.Errorf("tensor %q: range [%g, %g]", name, r.Min, r.Max)
		case r.Count > 0 && !(r.ObservedMin <= r.ObservedMax):
			return fmt.Errorf("tensor %q: observed range [%g, %g]", name, r.ObservedMin, r.ObservedMax)
		case math.IsNaN(r.Mean) || math.IsInf(r.Mean, 0) || !(r.Std >= 0) || math.IsInf(r.Std, 0):
			return fmt.Errorf("tensor %q: mean %g, std %g", name, r.Mean, r.Std)
		case r.AliasOf != "" && (t.Tensors[r.AliasOf] == nil || t.Tensors[r.AliasOf].AliasOf != ""):
			return fmt.Errorf("tensor %q: alias_of %q is not a measured tensor of the table", name, r.AliasOf)
		}
	}
	return nil
}

// Save writes the table as indented JSON to path atomically: to a temporary file in the
// same folder, then renamed over path, so a reader sees the old table or the new one,
// never a part. A table that LoadTable would refuse is not written.
func (t *Table) Save(path string) error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("calibration table %s: not saved: %w", path, err)
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("calibration table %s: %w", path, err)
	}
	data = append(data, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("calibration table %s: %w", path, err)
	}
	tmp := f.Name()
	err = writeAll(f, data)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("calibration table %s: %w", path, err)
	}
	return nil
}

// writeAll writes data to f with mode 0644, syncs and closes it.
func writeAll(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadTable reads a table saved by Save. A missing or unreadable file gives the
// *os.PathError (os.IsNotExist works on it); a file that is not a valid table gives a
// *CorruptTableError. Both name the file.
func LoadTable(path string) (*Table, error) {
	data, err := regular.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Table
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, &CorruptTableError{Path: path, Err: err}
	}
	if err := t.validate(); err != nil {
		return nil, &CorruptTableError{Path: path, Err: err}
	}
	return &t, nil
}

// TensorRTCacheVersion is the TensorRT version written in the calibration cache's header
// (8.6.1); TensorRT may ignore a cache whose header names another version.
const TensorRTCacheVersion = 8601

// WriteTensorRTCache writes the table in TensorRT's calibration cache text format (what
// IInt8Calibrator::writeCalibrationCache produces, and trtexec --calib reads):
//
//	TRT-8601-EntropyCalibration2
//	name: 3c010204
//
// The header is "TRT-<TensorRTCacheVersion>-<algorithm>", or algorithm itself when it
// starts with "TRT-" (to write another version). Each line after it is a tensor, sorted by
// name, with the 8 lower-case hex digits of the IEEE-754 bits (big-endian, as printed) of
// its float32 scale max(|min|, |max|)/127. Tensors never calibrated (Count 0) are left
// out. A name with a line break is an error, as is an algorithm with white space.
func (t *Table) WriteTensorRTCache(w io.Writer, algorithm string) error {
	if algorithm == "" || strings.ContainsAny(algorithm, " \t\r\n") {
		return fmt.Errorf("tensorrt cache: algorithm %q", algorithm)
	}
	header := algorithm
	if !strings.HasPrefix(algorithm, "TRT-") {
		header = fmt.Sprintf("TRT-%d-%s", TensorRTCacheVersion, algorithm)
	}
	names := make([]string, 0, len(t.Tensors))
	for name, r := range t.Tensors {
		if r == nil || r.Count == 0 {
			continue
		}
		if strings.ContainsAny(name, "\r\n") {
			return fmt.Errorf("tensorrt cache: tensor name %q has a line break", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(header)
	b.WriteByte('\n')
	for _, name := range names {
		r := t.Tensors[name]
		scale := max32(abs32(r.Min), abs32(r.Max)) / 127
		fmt.Fprintf(&b, "%s: %08x\n", name, math.Float32bits(scale))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

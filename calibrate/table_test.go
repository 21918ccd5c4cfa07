package calibrate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleTable() *Table {
	return &Table{
		SchemaVersion: SchemaVersion,
		GraphSHA256:   "ab12",
		Method:        "percentile",
		Percentile:    99.99,
		Symmetric:     false,
		Dataset:       "sha256:ffff",
		Samples:       128,
		Tensors: map[string]*TensorRange{
			"input":    {Min: -1, Max: 1, ObservedMin: -1.5, ObservedMax: 1.25, Mean: 0.1, Std: 0.3, Count: 1000},
			"conv1:0":  {Min: 0, Max: 6, ObservedMin: 0, ObservedMax: 7, Mean: 1.5, Std: 2, Count: 500, NonFinite: 3},
			"Relu_out": {Min: -0.5, Max: 12.75, ObservedMin: -0.5, ObservedMax: 13, Mean: 2, Std: 1, Count: 10},
			"b/tiny":   {Min: -1e-30, Max: 1e-31, ObservedMin: -1e-30, ObservedMax: 1e-31, Count: 2},
			"zero":     {Count: 7},
			"uncal":    {NonFinite: 4},
			"thirds":   {Min: 0.1, Max: 1.0 / 3, ObservedMin: 0.1, ObservedMax: 1.0 / 3, Mean: 1.0 / 7, Std: 1e-300, Count: 3},
		},
	}
}

func TestTableSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "calib.json")
	want := sampleTable()
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	// Overwrite: atomic replace, no temporary file left, mode 0644, indented JSON.
	want.Samples = 129
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the folder, want 1", len(entries))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("{\n  \"schema_version\": 1,\n  \"graph_sha256\": \"ab12\",")) || !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("not indented JSON:\n%s", data)
	}
	if !bytes.Contains(data, []byte(`"non_finite": 3`)) || !bytes.Contains(data, []byte(`"observed_min": -1.5`)) {
		t.Errorf("field names:\n%s", data)
	}
	// Range: calibrated tensors only.
	if lo, hi, ok := got.Range("conv1:0"); !ok || lo != 0 || hi != 6 {
		t.Errorf("Range conv1:0 = %g %g %v", lo, hi, ok)
	}
	for _, n := range []string{"uncal", "missing"} {
		if _, _, ok := got.Range(n); ok {
			t.Errorf("Range(%q) ok", n)
		}
	}
	// omitempty: no percentile or moving average for minmax.
	mm := sampleTable()
	mm.Method, mm.Percentile = "minmax", 0
	if err := mm.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if bytes.Contains(data, []byte("percentile")) || bytes.Contains(data, []byte("moving_average")) {
		t.Errorf("empty fields written:\n%s", data[:200])
	}
}

func TestTableLoadErrors(t *testing.T) {
	dir := t.TempDir()
	valid, _ := os.ReadFile(func() string {
		p := filepath.Join(dir, "valid.json")
		if err := sampleTable().Save(p); err != nil {
			t.Fatal(err)
		}
		return p
	}())
	tests := []struct {
		name, content string
	}{
		{"empty", ""},
		{"truncated", string(valid[:len(valid)/2])},
		{"not JSON", "TRT-8601-EntropyCalibration2\n"},
		{"null", "null"},
		{"schema version", strings.Replace(string(valid), `"schema_version": 1`, `"schema_version": 2`, 1)},
		{"method", strings.Replace(string(valid), `"method": "percentile"`, `"method": "kl"`, 1)},
		{"min > max", strings.Replace(string(valid), `"max": 6,`, `"max": -6,`, 1)},
		{"no tensors", `{"schema_version": 1, "method": "minmax"}`},
		{"null tensor", `{"schema_version": 1, "method": "minmax", "tensors": {"a": null}}`},
		{"float32 overflow", strings.Replace(string(valid), `"max": 6,`, `"max": 1e39,`, 1)},
		{"negative count", strings.Replace(string(valid), `"count": 500`, `"count": -1`, 1)},
		{"wrong type", strings.Replace(string(valid), `"samples": 128`, `"samples": "x"`, 1)},
		{"coverage", strings.Replace(string(valid), `"samples": 128`, `"samples": 128, "coverage": "some"`, 1)},
		{"alias of nothing", `{"schema_version": 1, "method": "minmax", "tensors": {"a": {"min": 0, "max": 1, "alias_of": "b"}}}`},
		{"alias of an alias", `{"schema_version": 1, "method": "minmax", "tensors": {"a": {"min": 0, "max": 1, "alias_of": "b"},
			"b": {"min": 0, "max": 1, "alias_of": "c"}, "c": {"min": 0, "max": 1}}}`},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTable(p)
		var ce *CorruptTableError
		if !errors.As(err, &ce) || ce.Path != p || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v (%T), want a *CorruptTableError naming the file", tc.name, err, err)
		}
	}
	missing := filepath.Join(dir, "missing.json")
	if _, err := LoadTable(missing); !os.IsNotExist(err) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	// Save refuses what Load would refuse, and reports an unwritable folder.
	bad := sampleTable()
	bad.Tensors["x"] = &TensorRange{Min: 2, Max: 1, Count: 1}
	if err := bad.Save(filepath.Join(dir, "bad.json")); err == nil {
		t.Error("saved an invalid table")
	}
	if err := sampleTable().Save(filepath.Join(dir, "no", "such", "dir.json")); err == nil || !strings.Contains(err.Error(), "dir.json") {
		t.Errorf("unwritable folder: %v", err)
	}
}

// TestTensorRTCache compares with a golden file whose scales were computed independently
// (Python struct: float32 max(|min|,|max|)/127, big-endian bits).
func TestTensorRTCache(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "tensorrt.cache"))
	if err != nil {
		t.Fatal(err)
	}
	tab := sampleTable()
	delete(tab.Tensors, "thirds")
	var b bytes.Buffer
	if err := tab.WriteTensorRTCache(&b, "EntropyCalibration2"); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(golden) {
		t.Errorf("cache:\n%s\nwant:\n%s", b.String(), golden)
	}
	b.Reset()
	if err := tab.WriteTensorRTCache(&b, "TRT-7000-MinMaxCalibration"); err != nil || !strings.HasPrefix(b.String(), "TRT-7000-MinMaxCalibration\nRelu_out: 3dcd9b36\n") {
		t.Errorf("explicit header: %q, %v", b.String(), err)
	}
	if err := tab.WriteTensorRTCache(&b, "Entropy Calibration"); err == nil {
		t.Error("algorithm with a space accepted")
	}
	tab.Tensors["a\nb"] = &TensorRange{Max: 1, Count: 1}
	if err := tab.WriteTensorRTCache(&b, "EntropyCalibration2"); err == nil {
		t.Error("name with a line break accepted")
	}
}

func TestCorruptTableErrorUnwrap(t *testing.T) {
	inner := errors.New("boom")
	e := &CorruptTableError{Path: "x.json", Err: inner}
	if !errors.Is(e, inner) || e.Error() != "calibration table x.json is corrupt: boom" {
		t.Errorf("%v", e)
	}
}

package dataset

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestInputsOf(t *testing.T) {
	b := onnxio.NewBuilder(17)
	x := b.Input("x", onnxio.TypeFloat, []int64{-1, 3})
	ids := b.Input("ids", onnxio.TypeInt64, []int64{2, 5})
	w := b.Initializer("w", onnxio.NewTensor([]int64{3}, []float32{1, 2, 3}))
	b.Graph().Input = append(b.Graph().Input, onnxio.ValueInfo("w", onnxio.TypeFloat, []int64{3}))
	b.Graph().Input = append(b.Graph().Input, &onnxpb.ValueInfoProto{Name: stringPtr("noshape"),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32Ptr(1)}}}})
	y := b.Op("Add", []string{x, w})
	b.Output(y, onnxio.TypeFloat, nil)
	b.Output(ids, onnxio.TypeInt64, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	got := InputsOf(m)
	want := []InputInfo{
		{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}},
		{Name: "ids", Type: onnxio.TypeInt64, Shape: []int64{2, 5}},
		{Name: "noshape", Type: onnxio.TypeFloat},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InputsOf = %+v, want %+v", got, want)
	}
}

func stringPtr(s string) *string { return &s }
func int32Ptr(v int32) *int32    { return &v }

// TestNPYTypes reads every supported dtype back as the model's element type.
func TestNPYTypes(t *testing.T) {
	dir := t.TempDir()
	f16 := func(v ...float32) []float16.Float16 {
		var out []float16.Float16
		for _, x := range v {
			out = append(out, float16.Fromfloat32(x))
		}
		return out
	}
	tests := []struct {
		name string
		dt   onnxio.DataType
		file any // written with npyio
		want any // the batch's data
	}{
		{"float32", onnxio.TypeFloat, [][]float32{{1, 2}, {3, 4}, {5, 6}}, []float32{1, 2, 3, 4, 5, 6}},
		{"float64", onnxio.TypeDouble, [][]float64{{1, 2}, {3, 4}, {5, 6}}, []float64{1, 2, 3, 4, 5, 6}},
		{"int8", onnxio.TypeInt8, [][]int8{{-1, 2}, {3, -4}, {5, 6}}, []int8{-1, 2, 3, -4, 5, 6}},
		{"uint8", onnxio.TypeUint8, [][]uint8{{1, 2}, {3, 4}, {5, 255}}, []uint8{1, 2, 3, 4, 5, 255}},
		{"int16", onnxio.TypeInt16, [][]int16{{-300, 2}, {3, 4}, {5, 6}}, []int16{-300, 2, 3, 4, 5, 6}},
		{"uint16", onnxio.TypeUint16, [][]uint16{{60000, 2}, {3, 4}, {5, 6}}, []uint16{60000, 2, 3, 4, 5, 6}},
		{"int32", onnxio.TypeInt32, [][]int32{{-70000, 2}, {3, 4}, {5, 6}}, []int32{-70000, 2, 3, 4, 5, 6}},
		{"int64", onnxio.TypeInt64, [][]int64{{1 << 40, 2}, {3, 4}, {5, -6}}, []int64{1 << 40, 2, 3, 4, 5, -6}},
		{"bool", onnxio.TypeBool, [][]bool{{true, false}, {false, true}, {true, true}}, []bool{true, false, false, true, true, true}},
		// big-endian: the same bytes relabelled '>i4'.
		{"int32 big-endian", onnxio.TypeInt32, nil, []int32{1 << 24, 2 << 24, 3 << 24, 4 << 24, 5 << 24, -1}},
		// float16: npyio cannot write it; write the bits as uint16 and relabel the dtype.
		{"float16", onnxio.TypeFloat16, nil, f16(1, -2, 0.5, 4, 65504, 0.25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".npy")
			switch {
			case tt.file != nil:
				writeNPY(t, dir, tt.name+".npy", tt.file)
			case tt.dt == onnxio.TypeInt32:
				b := patchHeader(t, npyBytes(t, [][]int32{{1, 2}, {3, 4}, {5, -1}}), "'<i4'", "'>i4'")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			default:
				var bits [][]uint16
				h := tt.want.([]float16.Float16)
				for i := 0; i < len(h); i += 2 {
					bits = append(bits, []uint16{h[i].Bits(), h[i+1].Bits()})
				}
				b := patchHeader(t, npyBytes(t, bits), "'<u2'", "'<f2'")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": p}, Batch: 2},
				InputInfo{Name: "x", Type: tt.dt, Shape: []int64{-1, 2}})
			bs := collect(t, d)
			if len(bs) != 2 || bs[0].N != 2 || bs[1].N != 1 {
				t.Fatalf("batches %d, want 2 of 2 and 1", len(bs))
			}
			if got := bs[0].Inputs["x"]; got.Type != tt.dt || !slices.Equal(got.Shape, []int64{2, 2}) {
				t.Errorf("first batch %s %v, want %s [2 2]", got.Type, got.Shape, tt.dt)
			}
			all := reflect.AppendSlice(reflect.ValueOf(bs[0].Inputs["x"].Data), reflect.ValueOf(bs[1].Inputs["x"].Data)).Interface()
			if !reflect.DeepEqual(all, tt.want) {
				t.Errorf("data %v, want %v", all, tt.want)
			}
		})
	}
}

// TestOpenErrors checks that every refusal names what is wrong and where.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	x := writeNPY(t, dir, "x.npy", rowsData(4, 3))
	x64 := writeNPY(t, dir, "x64.npy", [][]float64{{1, 2, 3}, {4, 5, 6}})
	short := writeNPY(t, dir, "short.npy", rowsData(3, 3))
	labels3 := writeNPY(t, dir, "labels3.npy", []int64{0, 1, 2})
	flabels := writeNPY(t, dir, "flabels.npy", []float32{0, 1, 2, 3})
	// npyio writes an empty slice as a scalar: patch the shape of one row instead.
	empty := filepath.Join(dir, "empty.npy")
	eb := patchHeader(t, npyBytes(t, rowsData(1, 3)), "(1, 3)", "(0, 3)")
	if err := os.WriteFile(empty, eb[:bytes.IndexByte(eb, '\n')+1], 0o644); err != nil {
		t.Fatal(err)
	}
	scalar := writeNPY(t, dir, "scalar.npy", float32(3))
	fortran := filepath.Join(dir, "fortran.npy")
	if err := os.WriteFile(fortran, patchHeader(t, npyBytes(t, rowsData(4, 3)), "False", "True"), 0o644); err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "trunc.npy")
	b := npyBytes(t, rowsData(4, 3))
	if err := os.WriteFile(trunc, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	in := InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}}
	in2 := InputInfo{Name: "mask", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}}
	tests := []struct {
		name   string
		spec   Spec
		inputs []InputInfo
		want   []string
	}{
		{"missing input", Spec{Format: "npy", Inputs: map[string]string{"x": x}}, []InputInfo{in, in2}, []string{`"mask"`, "no data", "x"}},
		{"unknown input", Spec{Format: "npy", Inputs: map[string]string{"x": x, "maks": x}}, []InputInfo{in}, []string{`"maks"`, "not a model input", "x"}},
		{"unknown input suggests", Spec{Format: "npy", Inputs: map[string]string{"x": x, "maks": x}}, []InputInfo{in, {Name: "mask", Shape: []int64{-1, 3}}}, []string{`"maks"`, `did you mean "mask"`}},
		{"type", Spec{Format: "npy", Inputs: map[string]string{"x": x64}}, []InputInfo{in}, []string{`"x"`, "x64.npy", "double", "float", "astype(np.float32)"}},
		{"dim", Spec{Format: "npy", Inputs: map[string]string{"x": x}}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 5}}}, []string{`"x"`, "dim 1", "5", "3", "x.npy"}},
		{"rank", Spec{Format: "npy", Inputs: map[string]string{"x": x}}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{1, 3, 1}}}, []string{`"x"`, "rank 1", "[3 1]"}},
		{"counts", Spec{Format: "npy", Inputs: map[string]string{"x": x, "mask": short}}, []InputInfo{in, in2}, []string{"different numbers of samples", `"x": 4`, `"mask": 3`, "short.npy"}},
		{"labels count", Spec{Format: "npy", Inputs: map[string]string{"x": x}, Labels: labels3}, []InputInfo{in}, []string{"labels: 3", "labels3.npy", `"x": 4`}},
		{"float labels", Spec{Format: "npy", Inputs: map[string]string{"x": x}, Labels: flabels}, []InputInfo{in}, []string{"labels", "flabels.npy", "integer"}},
		{"missing labels", Spec{Format: "npy", Inputs: map[string]string{"x": x}, Labels: filepath.Join(dir, "nope.npy")}, []InputInfo{in}, []string{"labels", "nope.npy"}},
		{"labels folders", Spec{Format: "npy", Inputs: map[string]string{"x": x}, Labels: "folders"}, []InputInfo{in}, []string{"folders", "images"}},
		{"empty", Spec{Format: "npy", Inputs: map[string]string{"x": empty}}, []InputInfo{in}, []string{"empty", "empty.npy"}},
		{"scalar file", Spec{Format: "npy", Inputs: map[string]string{"x": scalar}}, []InputInfo{in}, []string{`"x"`, "scalar.npy", "scalar"}},
		{"fortran", Spec{Format: "npy", Inputs: map[string]string{"x": fortran}}, []InputInfo{in}, []string{`"x"`, "fortran.npy", "Fortran"}},
		{"truncated", Spec{Format: "npy", Inputs: map[string]string{"x": trunc}}, []InputInfo{in}, []string{`"x"`, "trunc.npy", "truncated"}},
		{"no file", Spec{Format: "npy", Inputs: map[string]string{"x": filepath.Join(dir, "none.npy")}}, []InputInfo{in}, []string{`"x"`, "none.npy"}},
		{"not npy", Spec{Format: "npy", Inputs: map[string]string{"x": labels3 + ".txt"}}, []InputInfo{in}, []string{`"x"`}},
		{"scalar model input", Spec{Format: "npy", Inputs: map[string]string{"x": x}}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{}}}, []string{`"x"`, "scalar"}},
		{"fixed batch too big", Spec{Format: "npy", Inputs: map[string]string{"x": x}}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{8, 3}}}, []string{"4 samples", "8"}},
		{"two fixed batches", Spec{Format: "npy", Inputs: map[string]string{"x": x, "mask": x}}, []InputInfo{{Name: "x", Shape: []int64{1, 3}}, {Name: "mask", Shape: []int64{2, 3}}}, []string{`"x"`, `"mask"`, "different batch sizes"}},
		{"validate", Spec{Format: "csv", Inputs: map[string]string{"x": x}}, []InputInfo{in}, []string{"csv"}},
		{"random dynamic", Spec{Format: "random"}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3, -1}}}, []string{`"x"`, "dim 2", "dynamic"}},
		{"random string", Spec{Format: "random"}, []InputInfo{{Name: "s", Type: onnxio.TypeString, Shape: []int64{-1}}}, []string{`"s"`, "string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(&tt.spec, tt.inputs)
			if err == nil {
				d.Close()
			}
			wantErr(t, err, tt.want...)
		})
	}
}

func TestShuffleAndLimit(t *testing.T) {
	dir := t.TempDir()
	const n = 20
	x := writeNPY(t, dir, "x.npy", rowsData(n, 2))
	in := InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2}}
	order := func(shuffle int64, limit, batch int) []int {
		t.Helper()
		d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": x}, Shuffle: shuffle, Limit: limit, Batch: batch}, in)
		bs := collect(t, d)
		r := rows(bs)
		if len(r) != d.Len() {
			t.Errorf("yielded %d samples, Len %d", len(r), d.Len())
		}
		// The data follows the rows; Index counts positions.
		data := float32s(t, bs, "x")
		pos := 0
		for _, b := range bs {
			if b.Index != pos || b.N != len(b.Rows) {
				t.Errorf("batch Index %d N %d rows %d, want Index %d", b.Index, b.N, len(b.Rows), pos)
			}
			pos += b.N
		}
		for i, row := range r {
			if data[2*i] != float32(row*10) || data[2*i+1] != float32(row*10+1) {
				t.Fatalf("sample %d (row %d) holds %v", i, row, data[2*i:2*i+2])
			}
		}
		return r
	}
	tests := []struct {
		name string
		got  []int
		want []int
	}{
		{"file order", order(0, 0, 3), seq(n)},
		{"limit", order(0, 5, 0), seq(5)},
		{"same seed", order(7, 0, 4), order(7, 0, 16)},
		{"limit after shuffle", order(7, 6, 4), order(7, 0, 4)[:6]},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: rows %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	a, b := order(7, 0, 0), order(8, 0, 0)
	if slices.Equal(a, b) || slices.Equal(a, seq(n)) {
		t.Errorf("seeds 7 and 8 give %v and %v: want two different shuffles", a, b)
	}
	sorted := slices.Sorted(slices.Values(a))
	if !slices.Equal(sorted, seq(n)) {
		t.Errorf("shuffle %v is not a permutation", a)
	}
}

func TestBatchSizes(t *testing.T) {
	dir := t.TempDir()
	x := writeNPY(t, dir, "x.npy", rowsData(10, 2))
	big := writeNPY(t, dir, "big.npy", rowsData(40, 2))
	tests := []struct {
		name    string
		file    string
		shape   []int64
		batch   int
		limit   int
		size    int   // BatchSize
		want    []int // batch sizes
		warning string
	}{
		{"dynamic default", big, []int64{-1, 2}, 0, 0, 16, []int{16, 16, 8}, ""},
		{"dynamic batch", x, []int64{-1, 2}, 3, 0, 3, []int{3, 3, 3, 1}, ""},
		{"fixed 1", x, []int64{1, 2}, 0, 4, 1, []int{1, 1, 1, 1}, ""},
		{"fixed 1 overrides", x, []int64{1, 2}, 8, 3, 1, []int{1, 1, 1}, "batch 8 ignored"},
		{"fixed 4 drops", x, []int64{4, 2}, 0, 0, 4, []int{4, 4}, "2 samples left out"},
		{"unknown shape", x, nil, 0, 0, 16, []int{10}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": tt.file}, Batch: tt.batch, Limit: tt.limit},
				InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: tt.shape})
			var sizes []int
			for _, b := range collect(t, d) {
				sizes = append(sizes, b.N)
				if got := b.Inputs["x"].Shape; got[0] != int64(b.N) {
					t.Errorf("tensor shape %v for %d samples", got, b.N)
				}
			}
			if !slices.Equal(sizes, tt.want) {
				t.Errorf("batch sizes %v, want %v", sizes, tt.want)
			}
			if d.BatchSize() != tt.size {
				t.Errorf("BatchSize %d, want %d", d.BatchSize(), tt.size)
			}
			sum := 0
			for _, s := range sizes {
				sum += s
			}
			if d.Len() != sum {
				t.Errorf("Len %d, batches hold %d", d.Len(), sum)
			}
			w := strings.Join(d.Warnings(), "; ")
			if tt.warning == "" && w != "" || !strings.Contains(w, tt.warning) {
				t.Errorf("warnings %q, want %q", w, tt.warning)
			}
		})
	}
}

// TestBatchesEarlyStop ranges twice, stopping early once.
func TestBatchesEarlyStop(t *testing.T) {
	dir := t.TempDir()
	x := writeNPY(t, dir, "x.npy", rowsData(10, 2))
	d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": x}, Batch: 3}, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2}})
	for b, err := range d.Batches() {
		if err != nil || b.Index != 0 {
			t.Fatalf("first batch %+v, %v", b, err)
		}
		break
	}
	if got := rows(collect(t, d)); !slices.Equal(got, seq(10)) {
		t.Errorf("second pass rows %v", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLabels(t *testing.T) {
	dir := t.TempDir()
	x := writeNPY(t, dir, "x.npy", rowsData(4, 2))
	txt := filepath.Join(dir, "labels.txt")
	if err := os.WriteFile(txt, []byte("3\n1\n\n4\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, "labels-idx1-ubyte")
	if err := os.WriteFile(idx, []byte{0, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4, 1}, 0o644); err != nil {
		t.Fatal(err)
	}
	want := []int64{3, 1, 4, 1}
	for _, tt := range []struct{ name, path string }{
		{"int64", writeNPY(t, dir, "l64.npy", []int64{3, 1, 4, 1})},
		{"uint8", writeNPY(t, dir, "l8.npy", []uint8{3, 1, 4, 1})},
		{"int32 column", writeNPY(t, dir, "l32.npy", [][]int32{{3}, {1}, {4}, {1}})},
		{"txt", txt},
		{"idx", idx},
		{"npz default name", writeNPZ(t, dir, "l.npz", npzMember{"labels", []int16{3, 1, 4, 1}, false})},
		{"npz named", writeNPZ(t, dir, "m.npz", npzMember{"y", []int64{3, 1, 4, 1}, true}) + ":y"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": x}, Labels: tt.path, Batch: 3, Shuffle: 5},
				InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2}})
			if !d.HasLabels() {
				t.Fatal("HasLabels false")
			}
			for _, b := range collect(t, d) {
				for i, r := range b.Rows {
					if b.Labels[i] != want[r] {
						t.Errorf("row %d label %d, want %d", r, b.Labels[i], want[r])
					}
				}
			}
		})
	}
	d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": x}}, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2}})
	if d.HasLabels() || collect(t, d)[0].Labels != nil {
		t.Error("labels without a labels file")
	}
}

func TestNPZ(t *testing.T) {
	dir := t.TempDir()
	for _, stored := range []bool{true, false} {
		name := map[bool]string{true: "stored", false: "deflated"}[stored]
		t.Run(name, func(t *testing.T) {
			p := writeNPZ(t, dir, name+".npz",
				npzMember{"x", rowsData(5, 3), stored},
				npzMember{"other", [][]int64{{1}, {2}, {3}, {4}, {5}}, stored},
				npzMember{"labels", []int64{0, 1, 0, 1, 1}, stored})
			inputs := []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}}, {Name: "ids", Type: onnxio.TypeInt64, Shape: []int64{-1, 1}}}
			d := open(t, &Spec{Format: "npz", Inputs: map[string]string{"x": p, "ids": p + ":other"}, Labels: p + ":labels", Batch: 2, Shuffle: 3}, inputs...)
			bs := collect(t, d)
			if got := rows(bs); len(got) != 5 {
				t.Fatalf("rows %v", got)
			}
			data := float32s(t, bs, "x")
			k := 0
			for _, b := range bs {
				ids := b.Inputs["ids"].Data.([]int64)
				for i, r := range b.Rows {
					if ids[i] != int64(r+1) || data[3*k] != float32(10*r) || b.Labels[i] != []int64{0, 1, 0, 1, 1}[r] {
						t.Errorf("row %d: ids %d, x %v, label %d", r, ids[i], data[3*k:3*k+3], b.Labels[i])
					}
					k++
				}
			}
			_, err := Open(&Spec{Format: "npz", Inputs: map[string]string{"x": p + ":nope", "ids": p + ":other"}}, inputs)
			wantErr(t, err, `"x"`, "nope", "x, other, labels")
		})
	}
}

func TestCheckFinite(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name string
		b    *Batch
		want []string // nil: no error
	}{
		{"finite", &Batch{Index: 4, N: 2, Rows: []int{9, 3}, Inputs: map[string]*onnxio.Tensor{
			"x": onnxio.NewTensor([]int64{2, 2}, []float32{1, 2, 3, 4}),
			"i": onnxio.NewTensor([]int64{2}, []int64{1, 2}),
		}}, nil},
		{"nan", &Batch{Index: 4, N: 3, Rows: []int{9, 3, 7}, Inputs: map[string]*onnxio.Tensor{
			"x": onnxio.NewTensor([]int64{3, 2}, []float32{1, 2, 3, 4, 5, nan}),
		}}, []string{`"x"`, "sample 6", "row 7", "element 1", "NaN"}},
		{"inf float64", &Batch{Index: 0, N: 2, Inputs: map[string]*onnxio.Tensor{
			"y": onnxio.NewTensor([]int64{2, 1}, []float64{math.Inf(-1), 0}),
		}}, []string{`"y"`, "sample 0", "-Inf"}},
		{"inf float16", &Batch{Index: 10, N: 2, Inputs: map[string]*onnxio.Tensor{
			"h": onnxio.NewTensor([]int64{2, 2}, []float16.Float16{0, 0, 0, float16.Inf(1)}),
		}}, []string{`"h"`, "sample 11", "+Inf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFinite(tt.b)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.want...)
		})
	}
}

// TestCheckFiniteFromFile finds a NaN written into a data file, and names the file.
func TestCheckFiniteFromFile(t *testing.T) {
	dir := t.TempDir()
	data := rowsData(6, 2)
	data[4][1] = float32(math.NaN())
	x := writeNPY(t, dir, "x.npy", data)
	d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"x": x}, Batch: 4}, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2}})
	var errs []error
	for b, err := range d.Batches() {
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckFinite(b); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("errors %v, want one", errs)
	}
	wantErr(t, errs[0], `input "x" (`+x+`), sample 4`, "element 1")
}

func TestRandomTypes(t *testing.T) {
	var inputs []InputInfo
	for _, dt := range []onnxio.DataType{onnxio.TypeFloat, onnxio.TypeDouble, onnxio.TypeFloat16, onnxio.TypeBFloat16, onnxio.TypeBool,
		onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt16, onnxio.TypeUint16, onnxio.TypeInt32, onnxio.TypeUint32, onnxio.TypeInt64, onnxio.TypeUint64} {
		inputs = append(inputs, InputInfo{Name: dt.String(), Type: dt, Shape: []int64{-1, 2, 3}})
	}
	d := open(t, &Spec{Format: "random", Samples: 5, Batch: 2}, inputs...)
	for _, b := range collect(t, d) {
		for name, x := range b.Inputs {
			// EncodeTensor checks that the data's Go type and length match Type and Shape.
			if _, err := onnxio.EncodeTensor(name, x); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if f, err := x.Float32s(); err == nil && name != "float" && name != "double" && name != "float16" && name != "bfloat16" {
				for _, v := range f {
					if v < 0 || v >= 10 {
						t.Fatalf("%s: %v outside [0, 10)", name, v)
					}
				}
			}
		}
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	x := writeNPY(t, dir, "x.npy", rowsData(3, 2))
	z := writeNPZ(t, dir, "d.npz", npzMember{"x", rowsData(3, 2), true})
	spec := &Spec{Format: "npy", Inputs: map[string]string{"x": x, "y": z + ":x"}}
	a, err := Fingerprint(spec)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := Fingerprint(spec); b != a {
		t.Error("fingerprint changes without a change")
	}
	writeNPY(t, dir, "x.npy", rowsData(4, 2))
	if b, _ := Fingerprint(spec); b == a {
		t.Error("fingerprint unchanged after the file changed")
	}
	spec.Limit = 2
	if b, _ := Fingerprint(spec); b == a {
		t.Error("fingerprint unchanged after the limit changed")
	}
}

func TestRandom(t *testing.T) {
	inputs := []InputInfo{
		{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3, 4}},
		{Name: "ids", Type: onnxio.TypeInt64, Shape: []int64{-1, 5}},
		{Name: "h", Type: onnxio.TypeFloat16, Shape: []int64{1, 2}},
	}
	read := func(spec *Spec) ([]float32, []int64) {
		d := open(t, spec, inputs...)
		if d.Len() != max(spec.Samples, 16) || len(d.Warnings()) == 0 {
			t.Fatalf("Len %d warnings %q", d.Len(), d.Warnings())
		}
		bs := collect(t, d)
		var ids []int64
		for _, b := range bs {
			ids = append(ids, b.Inputs["ids"].Data.([]int64)...)
			if b.N != 1 || b.Inputs["h"].Type != onnxio.TypeFloat16 {
				t.Fatalf("fixed batch 1: got %d samples, %s", b.N, b.Inputs["h"].Type)
			}
		}
		return float32s(t, bs, "x"), ids
	}
	a, ai := read(&Spec{Format: "random", Seed: 1})
	b, _ := read(&Spec{Format: "random", Seed: 1})
	c, _ := read(&Spec{Format: "random", Seed: 2})
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Error("same seed must give the same data, another seed other data")
	}
	for _, v := range ai {
		if v < 0 || v >= 10 {
			t.Fatalf("integer %d outside [0, 10)", v)
		}
	}
	big, _ := read(&Spec{Format: "random", Samples: 200})
	var sum, sq float64
	for _, v := range big {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean, std := sum/float64(len(big)), math.Sqrt(sq/float64(len(big))-sum*sum/float64(len(big)*len(big)))
	if math.Abs(mean) > 0.1 || math.Abs(std-1) > 0.1 {
		t.Errorf("float data mean %.3f std %.3f, want standard normal", mean, std)
	}
	// A sample's data does not depend on the order.
	shuf, _ := read(&Spec{Format: "random", Seed: 1, Shuffle: 9})
	d := open(t, &Spec{Format: "random", Seed: 1, Shuffle: 9}, inputs...)
	r := rows(collect(t, d))
	for i, row := range r {
		if !slices.Equal(shuf[12*i:12*i+12], a[12*row:12*row+12]) {
			t.Fatalf("shuffled sample %d (row %d) differs", i, row)
		}
	}
}

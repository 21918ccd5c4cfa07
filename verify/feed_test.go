package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/verify"
)

// matmulModel is y = x·W with x [N, 4] of type in, W of type w and y of type out (Casts
// where they differ), W holding (i+1)/8 at row-major position i.
func matmulModel(t *testing.T, in, w, out onnxio.DataType) *onnxio.Model {
	t.Helper()
	b := onnxio.NewBuilder(17)
	x := b.Input("x", in, []int64{-1, 4})
	vals := make([]float32, 12)
	for i := range vals {
		vals[i] = float32(i+1) / 8
	}
	wt, err := verify.ConvertFloat(onnxio.NewTensor([]int64{4, 3}, vals), w)
	if err != nil {
		t.Fatal(err)
	}
	wn := b.Initializer("W", wt)
	if in != w {
		x = b.Op("Cast", []string{x}, onnxio.AttrInt("to", int64(w)))
	}
	y := b.Op("MatMul", []string{x, wn})
	if out != w {
		y = b.Op("Cast", []string{y}, onnxio.AttrInt("to", int64(out)))
	}
	// the same output name in every variant
	b.Op("Identity", []string{y})
	g := b.Graph()
	g.Node[len(g.Node)-1].Output[0] = "y"
	b.Output("y", out, []int64{-1, 3})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeNPY(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := npyio.Write(&buf, v); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.npy")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// samples are 32 rows of 4 values in [-2, 2) that float16 cannot all hold exactly.
func samples() [][]float32 {
	rows := make([][]float32, 32)
	for i := range rows {
		rows[i] = make([]float32, 4)
		for j := range rows[i] {
			rows[i][j] = float32(math.Sin(float64(i*4+j)*1.7)) * 2
		}
	}
	return rows
}

func TestConvertFloat(t *testing.T) {
	src := onnxio.NewTensor([]int64{2, 2}, []float32{1, 1.0 / 3, -65504, 1e-9})
	h, err := verify.ConvertFloat(src, onnxio.TypeFloat16)
	if err != nil {
		t.Fatal(err)
	}
	hd := h.Data.([]float16.Float16)
	if h.Type != onnxio.TypeFloat16 || len(h.Shape) != 2 || hd[1].Float32() != float16.Fromfloat32(1.0/3).Float32() || hd[2].Float32() != -65504 {
		t.Errorf("float16: %v %v %v", h.Type, h.Shape, hd)
	}
	d, err := verify.ConvertFloat(h, onnxio.TypeDouble)
	if err != nil {
		t.Fatal(err)
	}
	if dd := d.Data.([]float64); dd[1] != float64(hd[1].Float32()) || dd[0] != 1 {
		t.Errorf("float16 -> double: %v", dd)
	}
	bf, err := verify.ConvertFloat(d, onnxio.TypeBFloat16)
	if err != nil {
		t.Fatal(err)
	}
	if v := bf.Data.([]onnxio.BFloat16)[0].Float32(); v != 1 || bf.Type != onnxio.TypeBFloat16 {
		t.Errorf("double -> bfloat16: %v %v", bf.Type, v)
	}
	if same, _ := verify.ConvertFloat(src, onnxio.TypeFloat); same != src {
		t.Errorf("float -> float made a copy")
	}
	if _, err := verify.ConvertFloat(onnxio.NewTensor([]int64{1}, []int64{3}), onnxio.TypeFloat16); err == nil {
		t.Errorf("int64 -> float16 converted")
	}
}

func TestFeeder(t *testing.T) {
	f := verify.NewFeeder("candidate", []ort.ValueInfo{{Name: "x", Type: onnxio.TypeFloat16}, {Name: "ids", Type: onnxio.TypeInt64}, {Name: "z", Type: onnxio.TypeFloat}})
	x := onnxio.NewTensor([]int64{1, 2}, []float32{0.1, 3})
	ids := onnxio.NewTensor([]int64{1, 1}, []int64{7})
	z := onnxio.NewTensor([]int64{1}, []float32{2})
	in := map[string]*onnxio.Tensor{"x": x, "ids": ids, "z": z}
	for range 2 {
		out, err := f.Feed(in)
		if err != nil {
			t.Fatal(err)
		}
		if out["x"].Type != onnxio.TypeFloat16 || out["ids"] != ids || out["z"] != z {
			t.Errorf("feed: %v %v %v", out["x"].Type, out["ids"], out["z"])
		}
		if in["x"] != x {
			t.Errorf("Feed changed its argument")
		}
	}
	f.Output("y", onnxio.TypeFloat16)
	f.Output("y", onnxio.TypeFloat16)
	f.Output("n", onnxio.TypeInt64)
	f.Output("w", onnxio.TypeFloat)
	cs := f.Conversions()
	want := []verify.Conversion{
		{Model: "candidate", Kind: "input", Name: "x", From: onnxio.TypeFloat, To: onnxio.TypeFloat16},
		{Model: "candidate", Kind: "output", Name: "y", From: onnxio.TypeFloat16, To: onnxio.TypeFloat},
	}
	if len(cs) != len(want) || cs[0] != want[0] || cs[1] != want[1] {
		t.Errorf("conversions %v, want %v", cs, want)
	}
	b, _ := json.Marshal(cs[0])
	if !strings.Contains(string(b), `"from":"float"`) || !strings.Contains(string(b), `"to":"float16"`) {
		t.Errorf("JSON %s does not name the types", b)
	}
	note := verify.ConversionsNote(cs)
	if !strings.Contains(note, `candidate input "x": float -> float16`) || strings.Contains(note, "\n") {
		t.Errorf("note %q", note)
	}
	// Not a float on both sides: one line naming the input and both types.
	_, err := f.Feed(map[string]*onnxio.Tensor{"ids": onnxio.NewTensor([]int64{1, 1}, []float32{7})})
	if err == nil {
		t.Fatal("float data for an int64 input was converted")
	}
	for _, s := range []string{`"ids"`, "candidate", "int64", "float"} {
		if !strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q: want one line naming %s", err, s)
		}
	}
}

func TestDataInputs(t *testing.T) {
	m := matmulModel(t, onnxio.TypeFloat16, onnxio.TypeFloat16, onnxio.TypeFloat16)
	for format, want := range map[string]onnxio.DataType{"npy": onnxio.TypeUndefined, "pb": onnxio.TypeUndefined,
		"random": onnxio.TypeFloat, "idx": onnxio.TypeFloat} {
		ins := verify.DataInputs(&dataset.Spec{Format: format}, m)
		if len(ins) != 1 || ins[0].Type != want || len(ins[0].Shape) != 2 {
			t.Errorf("%s: %+v, want type %s", format, ins, want)
		}
	}
	f32 := matmulModel(t, onnxio.TypeFloat, onnxio.TypeFloat, onnxio.TypeFloat)
	if ins := verify.DataInputs(&dataset.Spec{Format: "npy"}, f32); ins[0].Type != onnxio.TypeFloat {
		t.Errorf("a float32 reference's input became %s", ins[0].Type)
	}
	f64 := matmulModel(t, onnxio.TypeDouble, onnxio.TypeDouble, onnxio.TypeDouble)
	if ins := verify.DataInputs(&dataset.Spec{Format: "random"}, f64); ins[0].Type != onnxio.TypeDouble {
		t.Errorf("random data for a double reference is %s", ins[0].Type)
	}
}

// TestRunFloat16IO compares models whose inputs and outputs are float16 with float32
// ones, either way round, on float32 data: each is fed its own type, the float16 outputs
// are compared as float32, and the report lists the conversions.
func TestRunFloat16IO(t *testing.T) {
	if err := ort.Init(""); err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	f32 := matmulModel(t, onnxio.TypeFloat, onnxio.TypeFloat, onnxio.TypeFloat)
	f16 := matmulModel(t, onnxio.TypeFloat16, onnxio.TypeFloat16, onnxio.TypeFloat16)
	f16in := matmulModel(t, onnxio.TypeFloat16, onnxio.TypeFloat, onnxio.TypeFloat)
	data := writeNPY(t, samples())
	cases := []struct {
		name      string
		ref, cand *onnxio.Model
		convs     []string
		minSQNR   float64
	}{
		{"float16 candidate", f32, f16, []string{`candidate input "x": float -> float16`, `candidate output "y": float16 -> float`}, 40},
		{"float16 reference", f16, f32, []string{`reference input "x": float -> float16`, `reference output "y": float16 -> float`}, 40},
		{"float16 input only", f32, f16in, []string{`candidate input "x": float -> float16`}, 40},
		{"same model", f32, f32, nil, math.Inf(1)},
	}
	for _, c := range cases {
		spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{"x": data}, Batch: 8}
		ds, err := dataset.Open(spec, verify.DataInputs(spec, c.ref))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rep, err := verify.Run(context.Background(), c.ref, c.cand, ds, verify.Options{
			Thresholds: verify.Thresholds{"sqnr_db": 40}, Latency: verify.LatencyOptions{Runs: 2, Batch: []int{1, 3}}})
		ds.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := rep.Providers[0].Outputs[0]
		t.Logf("%s: SQNR %.1f dB, max_abs %.3g, conversions %v", c.name, float64(m.SQNRdB), m.MaxAbs, rep.Conversions)
		if !rep.Passed || float64(m.SQNRdB) < c.minSQNR || m.Samples != 32 {
			t.Errorf("%s: passed %v, SQNR %.1f dB over %d samples, want >= %g over 32", c.name, rep.Passed, float64(m.SQNRdB), m.Samples, c.minSQNR)
		}
		if c.minSQNR < 1000 && float64(m.SQNRdB) > 120 {
			t.Errorf("%s: SQNR %.1f dB: the float16 model computed in float32?", c.name, float64(m.SQNRdB))
		}
		var got []string
		for _, cv := range rep.Conversions {
			got = append(got, cv.String())
		}
		if strings.Join(got, "|") != strings.Join(c.convs, "|") {
			t.Errorf("%s: conversions %q, want %q", c.name, got, c.convs)
		}
		if n := len(rep.Providers[0].Latency); n != 4 {
			t.Errorf("%s: %d latency rows, want 2 models x 2 batch sizes", c.name, n)
		}
	}

	// Integer data for a float16 input (the reference float16, so the file is read at
	// its own type): one line naming the input and both types.
	ids := make([][]int64, 4)
	for i := range ids {
		ids[i] = []int64{1, 2, 3, 4}
	}
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{"x": writeNPY(t, ids)}}
	ds, err := dataset.Open(spec, verify.DataInputs(spec, f16))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	_, err = verify.Run(context.Background(), f16, f32, ds, verify.Options{})
	if err == nil {
		t.Fatal("int64 data fed a float16 model")
	}
	t.Logf("int64 data: %v", err)
	for _, s := range []string{`input "x"`, "float16", "int64"} {
		if !strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q: want one line naming %s", err, s)
		}
	}
}

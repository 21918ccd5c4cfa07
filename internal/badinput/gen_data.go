package badinput

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/internal/testutil"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// npyCase is a broken .npy file made from the fixture's input.
type npyCase struct {
	how  string
	must bool // no correct result can come of it
	// same: the file holds the fixture's samples (in another encoding)
	same bool
	file func(x *onnxio.Tensor) []byte
}

func npyCases() []npyCase {
	f32 := func(x *onnxio.Tensor) []byte { return float32Bytes(x.Data.([]float32)) }
	std := func(x *onnxio.Tensor) []byte { b, _ := testutil.NPY(x); return b }
	withShape := func(shape string) func(x *onnxio.Tensor) []byte {
		return func(x *onnxio.Tensor) []byte { return testutil.NPYRaw("<f4", false, shape, f32(x)) }
	}
	mapped := func(f func(float32) float32) func(x *onnxio.Tensor) []byte {
		return func(x *onnxio.Tensor) []byte {
			v := append([]float32(nil), x.Data.([]float32)...)
			for i := range v {
				v[i] = f(v[i])
			}
			b, _ := testutil.NPY(onnxio.NewTensor(x.Shape, v))
			return b
		}
	}
	one := func(val float32) func(x *onnxio.Tensor) []byte {
		return func(x *onnxio.Tensor) []byte {
			v := append([]float32(nil), x.Data.([]float32)...)
			v[len(v)/2] = val
			b, _ := testutil.NPY(onnxio.NewTensor(x.Shape, v))
			return b
		}
	}
	converted := func(descr string, put func(buf *bytes.Buffer, v float32)) func(x *onnxio.Tensor) []byte {
		return func(x *onnxio.Tensor) []byte {
			var buf bytes.Buffer
			for _, v := range x.Data.([]float32) {
				put(&buf, v)
			}
			return testutil.NPYRaw(descr, false, testutil.NPYShape(x.Shape), buf.Bytes())
		}
	}
	return []npyCase{
		{"empty-file", true, false, func(*onnxio.Tensor) []byte { return nil }},
		{"header-truncated", true, false, func(x *onnxio.Tensor) []byte { return std(x)[:20] }},
		{"magic-only", true, false, func(*onnxio.Tensor) []byte { return []byte("\x93NUMPY") }},
		{"magic-wrong", true, false, func(x *onnxio.Tensor) []byte { b := std(x); b[5] = 'X'; return b }},
		{"version-9", true, false, func(x *onnxio.Tensor) []byte { b := std(x); b[6] = 9; return b }},
		{"header-len-huge", true, false, func(x *onnxio.Tensor) []byte {
			b := std(x)
			binary.LittleEndian.PutUint16(b[8:], 0xffff)
			return b
		}},
		{"header-garbage", true, false, func(x *onnxio.Tensor) []byte {
			b := std(x)
			copy(b[10:], "{'descr': <f4, 'shape': (((")
			return b
		}},
		{"header-not-dict", true, false, func(x *onnxio.Tensor) []byte {
			b := std(x)
			n := int(binary.LittleEndian.Uint16(b[8:]))
			for i := 10; i < 10+n-1; i++ {
				b[i] = ' '
			}
			copy(b[10:], "[1, 2, 3]")
			return b
		}},
		{"data-truncated", true, false, func(x *onnxio.Tensor) []byte { b := std(x); return b[:len(b)-len(b)/3] }},
		{"data-one-byte-short", true, false, func(x *onnxio.Tensor) []byte { b := std(x); return b[:len(b)-1] }},
		{"data-trailing-bytes", false, true, func(x *onnxio.Tensor) []byte { return append(std(x), 1, 2, 3, 4, 5) }},
		{"no-data", true, false, func(x *onnxio.Tensor) []byte { return testutil.NPYRaw("<f4", false, testutil.NPYShape(x.Shape), nil) }},
		{"shape-negative", true, false, withShape("(-4, 1, 28, 28)")},
		{"shape-zero-samples", true, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("<f4", false, "(0, "+testutil.NPYShape(x.Shape)[4:], nil)
		}},
		{"shape-huge", true, false, withShape("(1099511627776, 1, 28, 28)")},
		{"shape-overflow", true, false, withShape("(4611686018427387904, 4611686018427387904, 28, 28)")},
		{"shape-not-numbers", true, false, withShape("('a', 'b')")},
		{"shape-scalar", true, false, func(*onnxio.Tensor) []byte { return testutil.NPYRaw("<f4", false, "()", float32Bytes([]float32{1})) }},
		{"shape-flat", true, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("<f4", false, testutil.NPYShape([]int64{int64(x.Len())}), f32(x))
		}},
		{"shape-one-sample-per-value", true, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("<f4", false, testutil.NPYShape([]int64{int64(x.Len()), 1}), f32(x))
		}},
		// The samples' elements in another arrangement of the same count.
		{"shape-rank-less", false, true, func(x *onnxio.Tensor) []byte {
			s := append([]int64{x.Shape[0]}, x.Shape[2:]...)
			s[len(s)-1] *= x.Shape[1]
			return testutil.NPYRaw("<f4", false, testutil.NPYShape(s), f32(x))
		}},
		{"shape-transposed", true, false, func(x *onnxio.Tensor) []byte {
			s := append(append([]int64{x.Shape[0]}, x.Shape[2:]...), x.Shape[1])
			if x.Shape[1] == 1 { // NHWC of one channel is NCHW: swap the last two axes instead
				s = append([]int64{x.Shape[0], x.Shape[1]}, x.Shape[2:]...)
				s[len(s)-1], s[len(s)-2] = s[len(s)-2]*2, s[len(s)-1]/2
			}
			return testutil.NPYRaw("<f4", false, testutil.NPYShape(s), f32(x))
		}},
		{"shape-two-samples-fused", true, false, func(x *onnxio.Tensor) []byte {
			s := append([]int64{x.Shape[0] / 2, x.Shape[1] * 2}, x.Shape[2:]...)
			return testutil.NPYRaw("<f4", false, testutil.NPYShape(s), f32(x))
		}},
		{"dtype-float64", false, true, converted("<f8", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.LittleEndian, float64(v)) })},
		{"dtype-float16", false, false, converted("<f2", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.LittleEndian, f16(v)) })},
		{"dtype-big-endian", false, true, converted(">f4", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.BigEndian, v) })},
		{"dtype-big-endian-unswapped", false, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw(">f4", false, testutil.NPYShape(x.Shape), f32(x))
		}},
		{"dtype-int64", false, false, converted("<i8", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.LittleEndian, int64(v*255)) })},
		{"dtype-int32", false, false, converted("<i4", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.LittleEndian, int32(v*255)) })},
		{"dtype-uint8", false, false, converted("|u1", func(b *bytes.Buffer, v float32) { b.WriteByte(byte(v * 255)) })},
		{"dtype-bool", false, false, converted("|b1", func(b *bytes.Buffer, v float32) { b.WriteByte(pickByte(v > 0.5)) })},
		{"dtype-complex", true, false, converted("<c8", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.LittleEndian, [2]float32{v, 0}) })},
		{"dtype-string", true, false, converted("<U1", func(b *bytes.Buffer, v float32) { binary.Write(b, binary.LittleEndian, uint32('a')) })},
		{"dtype-object", true, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("|O", false, testutil.NPYShape(x.Shape), []byte("\x80\x02]q\x00."))
		}},
		{"dtype-structured", true, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("[('a', '<f4')]", false, testutil.NPYShape(x.Shape), f32(x))
		}},
		{"dtype-unknown", true, false, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("<q9", false, testutil.NPYShape(x.Shape), f32(x))
		}},
		{"fortran-order", false, true, func(x *onnxio.Tensor) []byte {
			return testutil.NPYRaw("<f4", true, testutil.NPYShape(x.Shape), float32Bytes(fortran(x)))
		}},
		{"fortran-order-unconverted", false, false, func(x *onnxio.Tensor) []byte { return testutil.NPYRaw("<f4", true, testutil.NPYShape(x.Shape), f32(x)) }},
		{"nan-one", false, false, one(float32(math.NaN()))},
		{"inf-one", false, false, one(float32(math.Inf(1)))},
		{"nan-all", true, false, mapped(func(float32) float32 { return float32(math.NaN()) })},
		{"zeros", false, false, mapped(func(float32) float32 { return 0 })},
		{"huge", false, false, mapped(func(v float32) float32 { return v*1e30 + 1e30 })},
		{"denormal", false, false, mapped(func(v float32) float32 { return v * 1e-39 })},
	}
}

// f16 is v as IEEE half-precision bits (round toward zero; the fixture's inputs are
// normal numbers of modest size).
func f16(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := uint16((b >> 13) & 0x3ff)
	switch {
	case v == 0:
		return sign
	case exp <= 0:
		return sign
	case exp >= 31:
		return sign | 0x7c00
	}
	return sign | uint16(exp)<<10 | mant
}

func pickByte(c bool) byte {
	if c {
		return 1
	}
	return 0
}

// fortran is x's elements in column-major order.
func fortran(x *onnxio.Tensor) []float32 {
	v := x.Data.([]float32)
	out := make([]float32, len(v))
	shape := x.Shape
	idx := make([]int64, len(shape))
	for i := range v {
		// i is the C-order position; compute its Fortran-order position
		rem := int64(i)
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d] = rem % shape[d]
			rem /= shape[d]
		}
		var pos, stride int64 = 0, 1
		for d := 0; d < len(shape); d++ {
			pos += idx[d] * stride
			stride *= shape[d]
		}
		out[pos] = v[i]
	}
	return out
}

// npz is a zip archive of the given members (stored, or deflated).
func npz(deflate bool, members ...[2]any) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, m := range members {
		method := zip.Store
		if deflate {
			method = zip.Deflate
		}
		w, _ := z.CreateHeader(&zip.FileHeader{Name: m[0].(string), Method: method})
		w.Write(m[1].([]byte))
	}
	z.Close()
	return buf.Bytes()
}

// datasetCases break the datasets: the npy files of calibration and of verification,
// npz archives, files that are not files, labels, and dataset specs.
func (g *gen) datasetCases() {
	const f = "mnist"
	for _, nc := range npyCases() {
		for _, role := range []string{"calib", "eval"} {
			file := role + ".npy"
			must := nc.must
			if role == "eval" && (nc.how == "nan-one" || nc.how == "inf-one") {
				must = true // verify refuses non-finite data
			}
			g.add(&Case{Name: "data/" + role + "/" + nc.how, Kind: KindDataset, Fixture: f, MustFail: must,
				Unchanged: true, Mentions: []string{file},
				edit: func(w *Workspace) error {
					x := w.Calib
					if role == "eval" {
						w.Eval = nil
					} else {
						w.Calib = nil
					}
					w.Files[file] = nc.file(x)
					return nil
				}})
		}
	}
	// The samples in NHWC order, for a model of three channels: the same element count,
	// another layout, which only the shape tells apart.
	g.add(&Case{Name: "data/calib/nhwc", Kind: KindDataset, Fixture: "resnet", MustFail: true, Mentions: []string{"calib.npy"},
		edit: func(w *Workspace) error {
			x := w.Calib
			w.Calib = nil
			s := []int64{x.Shape[0], x.Shape[2], x.Shape[3], x.Shape[1]}
			w.Files["calib.npy"] = testutil.NPYRaw("<f4", false, testutil.NPYShape(s), float32Bytes(x.Data.([]float32)))
			return nil
		}})

	// Files that are not regular files, or not there.
	for _, role := range []string{"calib", "eval"} {
		file := role + ".npy"
		drop := func(w *Workspace) {
			if role == "calib" {
				w.Calib = nil
			} else {
				w.Eval = nil
			}
		}
		for _, tc := range []struct {
			how  string
			edit func(w *Workspace)
		}{
			{"missing", func(w *Workspace) {}},
			{"folder", func(w *Workspace) { w.Dirs = append(w.Dirs, file) }},
			{"fifo", func(w *Workspace) { w.FIFOs = append(w.FIFOs, file) }},
			{"symlink-loop", func(w *Workspace) { w.Links[file] = file }},
			{"symlink-dangling", func(w *Workspace) { w.Links[file] = "nowhere.npy" }},
			{"is-the-model", func(w *Workspace) {
				w.Config.SetDataset(role, fmt.Sprintf("{format: npy, inputs: {input: model.onnx}%s}", labelsSpec(role)))
			}},
			{"dev-zero", func(w *Workspace) {
				w.Config.SetDataset(role, fmt.Sprintf("{format: npy, inputs: {input: /dev/zero}%s}", labelsSpec(role)))
			}},
		} {
			mentions := []string{file}
			switch tc.how {
			case "is-the-model":
				mentions = []string{"model.onnx"}
			case "dev-zero":
				mentions = []string{"/dev/zero"}
			}
			g.add(&Case{Name: "data/" + role + "/" + tc.how, Kind: KindDataset, Fixture: f, MustFail: true, Mentions: mentions,
				edit: func(w *Workspace) error { drop(w); tc.edit(w); return nil }})
		}
	}

	// npz archives.
	x := g.fx[f].Input
	xb, _ := testutil.NPY(x)
	npzCase := func(how string, must, same bool, mentions []string, spec string, data []byte) {
		g.add(&Case{Name: "data/npz/" + how, Kind: KindDataset, Fixture: f, MustFail: must, Unchanged: same, Mentions: mentions,
			edit: func(w *Workspace) error {
				w.Calib = nil
				w.Files["calib.npz"] = data
				w.Config.SetDataset("calib", spec)
				return nil
			}})
	}
	npzCase("ok", false, true, nil, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"input.npy", xb}))
	npzCase("deflated", false, true, nil, "{format: npz, inputs: {input: calib.npz}}", npz(true, [2]any{"input.npy", xb}))
	npzCase("member-named", false, true, nil, "{format: npz, inputs: {input: 'calib.npz:x'}}", npz(false, [2]any{"x.npy", xb}))
	npzCase("member-missing", true, false, []string{"calib.npz"}, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"other.npy", xb}))
	npzCase("member-named-missing", true, false, []string{"nope"}, "{format: npz, inputs: {input: 'calib.npz:nope'}}", npz(false, [2]any{"input.npy", xb}))
	npzCase("empty-archive", true, false, []string{"calib.npz"}, "{format: npz, inputs: {input: calib.npz}}", npz(false))
	npzCase("truncated", true, false, []string{"calib.npz"}, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"input.npy", xb})[:len(xb)/2])
	npzCase("not-a-zip", true, false, []string{"calib.npz"}, "{format: npz, inputs: {input: calib.npz}}", xb)
	npzCase("member-not-npy", true, false, []string{"calib.npz", "input"}, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"input.npy", []byte("hello")}))
	npzCase("member-truncated", true, false, []string{"calib.npz", "input"}, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"input.npy", xb[:len(xb)/2]}))
	npzCase("member-twice", false, false, []string{"calib.npz", "input"}, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"input.npy", xb}, [2]any{"input.npy", xb[:200]}))
	npzCase("member-path-escape", true, false, []string{"calib.npz", "input"}, "{format: npz, inputs: {input: calib.npz}}", npz(false, [2]any{"../input.npy", xb}))
	npzCase("npy-given-as-npz", true, false, []string{"calib.npy", "npz"}, "{format: npz, inputs: {input: calib.npy}}", nil)
	npzCase("npz-given-as-npy", false, true, []string{"calib.npz"}, "{format: npy, inputs: {input: calib.npz}}", npz(false, [2]any{"input.npy", xb}))

	// Other formats given files that are not theirs.
	for _, tc := range []struct{ format, file string }{
		{"pb", "calib.npy"}, {"idx", "calib.npy"}, {"images", "calib.npy"}, {"images", "empty"}, {"images", "notimages"}, {"pb", "notimages"},
	} {
		name := fmt.Sprintf("data/format-%s-on-%s", tc.format, tc.file)
		g.add(&Case{Name: name, Kind: KindDataset, Fixture: f, MustFail: true, Mentions: []string{tc.file},
			edit: func(w *Workspace) error {
				w.Dirs = append(w.Dirs, "empty")
				w.Files["notimages/a.png"] = []byte("not a png")
				w.Files["notimages/b.jpg"] = []byte{0xff, 0xd8, 0xff}
				w.Files["notimages/input_0.pb"] = []byte{1, 2, 3}
				spec := fmt.Sprintf("{format: %s, inputs: {input: %s}}", tc.format, tc.file)
				if tc.format == "images" {
					spec = fmt.Sprintf("{format: images, inputs: {input: %s}, image: {size: [28, 28], channels: GRAY}}", tc.file)
				}
				w.Config.SetDataset("calib", spec)
				return nil
			}})
	}

	// Labels, on the verification set.
	labels := func(how string, must bool, mentions []string, edit func(w *Workspace)) {
		g.add(&Case{Name: "data/labels/" + how, Kind: KindDataset, Fixture: f, MustFail: must, Unchanged: !must, Mentions: mentions,
			edit: func(w *Workspace) error { edit(w); return nil }})
	}
	lb := []string{"labels.npy"}
	labels("out-of-range", true, []string{"label"}, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []int64{7, 2, 10, 0}) })
	labels("negative", true, []string{"label"}, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []int64{7, -1, 1, 0}) })
	labels("huge", true, []string{"label"}, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []int64{7, 1 << 40, 1, 0}) })
	labels("too-few", true, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{3}, []int64{7, 2, 1}) })
	labels("too-many", true, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{5}, []int64{7, 2, 1, 0, 4}) })
	labels("none", true, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{0}, []int64{}) })
	labels("one-hot", true, lb, func(w *Workspace) {
		v := make([]float32, 40)
		for i, l := range []int{7, 2, 1, 0} {
			v[i*10+l] = 1
		}
		w.Labels = onnxio.NewTensor([]int64{4, 10}, v)
	})
	labels("column", false, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4, 1}, []int64{7, 2, 1, 0}) })
	labels("int32", false, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []int32{7, 2, 1, 0}) })
	labels("uint8", false, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []uint8{7, 2, 1, 0}) })
	labels("float-integral", false, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []float32{7, 2, 1, 0}) })
	labels("float-fraction", true, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []float32{7, 2.5, 1, 0}) })
	labels("float-nan", true, lb, func(w *Workspace) { w.Labels = onnxio.NewTensor([]int64{4}, []float32{7, float32(math.NaN()), 1, 0}) })
	labels("truncated", true, lb, func(w *Workspace) {
		b, _ := testutil.NPY(w.Labels)
		w.Labels = nil
		w.Files["labels.npy"] = b[:len(b)-3]
	})
	labels("missing", true, lb, func(w *Workspace) { w.Labels = nil })
	labels("folder", true, lb, func(w *Workspace) { w.Labels = nil; w.Dirs = append(w.Dirs, "labels.npy") })
	labels("fifo", true, lb, func(w *Workspace) { w.Labels = nil; w.FIFOs = append(w.FIFOs, "labels.npy") })
	labels("are-the-data", true, []string{"eval.npy"}, func(w *Workspace) {
		w.Config.SetDataset("eval", "{format: npy, inputs: {input: eval.npy}, labels: eval.npy}")
	})
	txt := func(how string, must bool, text string) {
		labels("txt-"+how, must, []string{"labels.txt"}, func(w *Workspace) {
			w.Files["labels.txt"] = []byte(text)
			w.Config.SetDataset("eval", "{format: npy, inputs: {input: eval.npy}, labels: labels.txt}")
		})
	}
	txt("ok", false, "7\n2\n1\n0\n")
	txt("crlf", false, "7\r\n2\r\n1\r\n0\r\n")
	txt("garbage", true, "seven\ntwo\none\nzero\n")
	txt("too-few", true, "7\n2\n")
	txt("blank-lines", false, "7\n\n2\n1\n0\n\n")
	txt("fractions", true, "7.5\n2\n1\n0\n")
	txt("binary", true, "\x00\x01\x02\x03")
	txt("empty", true, "")

	// Dataset specs: inputs that are not the model's.
	spec := func(how string, must bool, mentions []string, calib string) {
		g.add(&Case{Name: "data/spec/" + how, Kind: KindDataset, Fixture: f, MustFail: must, Unchanged: !must, Mentions: mentions,
			edit: func(w *Workspace) error { w.Config.SetDataset("calib", calib); return nil }})
	}
	spec("unknown-input", true, []string{"nosuch"}, "{format: npy, inputs: {nosuch: calib.npy}}")
	spec("extra-input", true, []string{"extra"}, "{format: npy, inputs: {input: calib.npy, extra: eval.npy}}")
	spec("no-inputs", true, []string{"inputs"}, "{format: npy, inputs: {}}")
	spec("inputs-missing", true, []string{"inputs"}, "{format: npy}")
	spec("unknown-format", true, []string{"csv"}, "{format: csv, inputs: {input: calib.npy}}")
	spec("format-missing", true, []string{"format"}, "{inputs: {input: calib.npy}}")
	spec("empty-path", true, []string{"input"}, "{format: npy, inputs: {input: ''}}")
	spec("labels-on-calib", false, nil, "{format: npy, inputs: {input: calib.npy}, labels: labels.npy}")
	spec("random-calib", false, nil, "{format: random, samples: 4, seed: 3}")
	spec("random-negative-samples", true, []string{"samples"}, "{format: random, samples: -4}")
	spec("random-huge-samples", true, []string{"samples"}, "{format: random, samples: 1000000000000}")
}

// labelsSpec is the labels part of role's dataset spec.
func labelsSpec(role string) string {
	if role == "eval" {
		return ", labels: labels.npy"
	}
	return ""
}

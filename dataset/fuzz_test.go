package dataset

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// The dataset fuzz targets write the fuzz bytes to a file, open it as a dataset of one
// format and read every batch. Whatever the bytes, Open and Batches must not panic, an
// error must name the file (or its folder), and the memory allocated must stay bounded
// by what the file really holds, not by what its header declares.

// fuzzMaxInput is the largest input the dataset targets read: a few MB.
const fuzzMaxInput = 4 << 20

// fuzzInputs are the model inputs the variant byte of a dataset target picks from.
var fuzzInputs = []InputInfo{
	{Name: "x"},
	{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}},
	{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2, 3}},
	{Name: "x", Type: onnxio.TypeUint8, Shape: []int64{-1, 2, 2}},
	{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{2, -1}},
	{Name: "x", Type: onnxio.TypeInt64, Shape: []int64{-1}},
	{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 1, 2, 2}},
	{Name: "x", Type: onnxio.TypeFloat16},
}

// fuzzSpec fills the batch, limit, skip and shuffle of spec from the variant byte v
// and returns the model input it picks.
func fuzzSpec(spec *Spec, v uint16) []InputInfo {
	in := fuzzInputs[int(v)%len(fuzzInputs)]
	v >>= 3
	spec.Batch = int(v % 4) // 0: the default
	v >>= 2
	spec.Limit = int(v % 3)
	v >>= 2
	spec.Skip = int(v % 2)
	v >>= 1
	spec.Shuffle = int64(v % 2)
	return []InputInfo{in}
}

// readAll opens spec and reads every batch; it returns the first error.
func readAll(spec *Spec, inputs []InputInfo) (n int, err error) {
	ds, err := Open(spec, inputs)
	if err != nil {
		return 0, err
	}
	defer ds.Close()
	for b, err := range ds.Batches() {
		if err != nil {
			return n, err
		}
		n += b.N
	}
	return n, nil
}

// checkRead runs readAll and checks the invariants: an error names want, and the bytes
// allocated stay under a bound that grows with the input's size (a compressed member may
// inflate to about 1000 times its size, and the reader copies what it inflates a few
// times), plus extra for formats whose decoding has a fixed cost.
func checkRead(t *testing.T, spec *Spec, inputs []InputInfo, want string, size int, extra uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readAll(spec, inputs)
	runtime.ReadMemStats(&after)
	if err != nil && !strings.Contains(err.Error(), want) {
		t.Errorf("error does not name %s: %v", want, err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	bound := uint64(64<<20) + 8192*uint64(size) + extra
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
		t.Errorf("reading a %d-byte file allocated %d MB (bound %d MB; err %v)", size, alloc>>20, bound>>20, err)
	}
}

func writeFuzzFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// npyOf is a .npy file of shape whose data is n zero bytes.
func npyOf(descr, shape string, n int) []byte {
	return append(npyHeader(fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)), make([]byte, n)...)
}

// zipOf is a zip archive of the members (name, data), each stored or deflated.
func zipOf(tb testing.TB, stored bool, members ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(members); i += 2 {
		method := zip.Deflate
		if stored {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: members[i], Method: method})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(members[i+1])); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// FuzzOpenNPZ: an .npz file of any content, as one input's data.
func FuzzOpenNPZ(f *testing.F) {
	good := string(npyOf("<f4", "(2, 3)", 24))
	for _, stored := range []bool{true, false} {
		for _, m := range [][]string{
			{"x.npy", good},
			{"x.npy", good, "labels.npy", string(npyOf("<i8", "(2,)", 16))},
			{"x.npy", string(npyOf("<f4", "(2, 2, 3)", 48))},
			{"x.npy", string(npyOf("|u1", "(3, 2, 2)", 12))},
			{"x.npy", string(npyOf(">f8", "(2, 3)", 48))},
			{"x.npy", string(npyOf("<f2", "(1, 3)", 6))},
			{"x.npy", string(npyOf("<f4", "(1000000, 3)", 24))},
			{"x.npy", string(npyOf("<f4", "(0, 3)", 0))},
			{"x.npy", good[:40]},
			{"y.npy", good},
			{"x", good},
		} {
			z := zipOf(f, stored, m...)
			f.Add(z, uint16(0))
			f.Add(z, uint16(1))
			f.Add(z[:len(z)/2], uint16(0))
		}
	}
	f.Add([]byte("PK\x05\x06"+strings.Repeat("\x00", 18)), uint16(0))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, v uint16) {
		if len(data) > fuzzMaxInput {
			t.Skip()
		}
		path := filepath.Join(t.TempDir(), "data.npz")
		writeFuzzFile(t, path, data)
		spec := &Spec{Format: "npz", Inputs: map[string]string{"x": path}}
		inputs := fuzzSpec(spec, v)
		if v&0x8000 != 0 {
			spec.Labels = path // the labels member of the same archive
		}
		checkRead(t, spec, inputs, path, len(data), 0)
	})
}

// pbBytes is a serialized TensorProto.
func pbBytes(tb testing.TB, name string, t *onnxio.Tensor) []byte {
	tp, err := onnxio.EncodeTensor(name, t)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := proto.Marshal(tp)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzOpenPB: a TensorProto file of any content, as a .pb file, as the input_0.pb of a
// flat folder, and as input_0.pb of two test_data_set_N folders (the second a valid
// tensor).
func FuzzOpenPB(f *testing.F) {
	seeds := [][]byte{
		pbBytes(f, "", onnxio.NewTensor([]int64{2, 3}, []float32{0, 1, 2, 3, 4, 5})),
		pbBytes(f, "x", onnxio.NewTensor([]int64{1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})),
		pbBytes(f, "", onnxio.NewTensor([]int64{3}, []float32{0, 1, 2})),
		pbBytes(f, "", onnxio.NewTensor([]int64{3}, []int64{0, 1, 2})),
		pbBytes(f, "y", onnxio.NewTensor([]int64{2, 3}, []float32{0, 1, 2, 3, 4, 5})),
		pbBytes(f, "", onnxio.NewTensor([]int64{}, []float32{7})),
		pbBytes(f, "", onnxio.NewTensor([]int64{0, 3}, []float32{})),
		pbBytes(f, "", onnxio.NewTensor([]int64{3, 2, 2}, []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})),
	}
	for _, s := range seeds {
		for v := range uint16(4) {
			f.Add(s, v<<13|v)
		}
		f.Add(s[:len(s)/2], uint16(0))
	}
	f.Add([]byte{}, uint16(0))
	second := pbBytes(f, "", onnxio.NewTensor([]int64{1, 3}, []float32{1, 2, 3}))
	f.Fuzz(func(t *testing.T, data []byte, v uint16) {
		if len(data) > fuzzMaxInput {
			t.Skip()
		}
		dir := t.TempDir()
		var in, want string
		switch v >> 13 % 3 {
		case 0:
			in = filepath.Join(dir, "x.pb")
			want = in
			writeFuzzFile(t, in, data)
		case 1:
			in, want = dir, dir
			writeFuzzFile(t, filepath.Join(dir, "input_0.pb"), data)
		default:
			in, want = dir, dir
			writeFuzzFile(t, filepath.Join(dir, "test_data_set_0", "input_0.pb"), data)
			writeFuzzFile(t, filepath.Join(dir, "test_data_set_1", "input_0.pb"), second)
		}
		spec := &Spec{Format: "pb", Inputs: map[string]string{"x": in}}
		checkRead(t, spec, fuzzSpec(spec, v), want, len(data)+len(second), 0)
	})
}

// idxOf is an idx file of unsigned bytes.
func idxOf(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = append(b, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
	}
	return append(b, data...)
}

func gzipOf(tb testing.TB, b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// FuzzOpenIdx: an idx file of any content (plain or gzip), as the images of an input,
// or as the labels of a valid images file.
func FuzzOpenIdx(f *testing.F) {
	pixels := make([]byte, 3*2*2)
	for i := range pixels {
		pixels[i] = byte(i * 20)
	}
	seeds := [][]byte{
		idxOf([]uint32{3, 2, 2}, pixels),
		idxOf([]uint32{3}, []byte{7, 2, 1}),
		idxOf([]uint32{2, 3}, pixels[:6]),
		idxOf([]uint32{3, 2, 2}, pixels[:5]),
		{0, 0, 0x0d, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		{0, 0, 8},
	}
	for _, s := range seeds {
		f.Add(s, uint16(0))
		f.Add(s, uint16(3))
		f.Add(gzipOf(f, s), uint16(0))
		f.Add(gzipOf(f, s), uint16(0x8000))
	}
	f.Add([]byte{}, uint16(0))
	images := idxOf([]uint32{3, 2, 2}, pixels)
	f.Fuzz(func(t *testing.T, data []byte, v uint16) {
		if len(data) > fuzzMaxInput {
			t.Skip()
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "data-idx-ubyte")
		writeFuzzFile(t, path, data)
		spec := &Spec{Format: "idx", Inputs: map[string]string{"x": path}}
		inputs := fuzzSpec(spec, v)
		if v&0x8000 != 0 {
			img := filepath.Join(dir, "images-idx3-ubyte")
			writeFuzzFile(t, img, images)
			spec.Inputs["x"], spec.Labels = img, path
			inputs = []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2, 2}}}
		}
		checkRead(t, spec, inputs, path, len(data), 0)
	})
}

// fuzzImageBytes are small PNG and JPEG images for the images target's seeds.
func fuzzImageBytes(tb testing.TB) (pngs, jpegs [][]byte) {
	rgba := image.NewRGBA(image.Rect(0, 0, 5, 3))
	gray := image.NewGray(image.Rect(0, 0, 2, 7))
	for y := range 7 {
		for x := range 5 {
			rgba.Set(x, y, color.RGBA{uint8(40 * x), uint8(30 * y), 99, uint8(255 - 20*x)})
			gray.Set(x, y, color.Gray{uint8(30 * (x + y))})
		}
	}
	for _, img := range []image.Image{rgba, gray} {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			tb.Fatal(err)
		}
		pngs = append(pngs, b.Bytes())
		b.Reset()
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 50}); err != nil {
			tb.Fatal(err)
		}
		jpegs = append(jpegs, b.Bytes())
	}
	return pngs, jpegs
}

// fuzzImagePixels bounds the extra allocation of decoding one image: the decoders and
// the preprocessing hold a few copies of the pixels, at most 8 bytes each.
const fuzzImagePixels = 40 * maxImagePixels

// FuzzOpenImages: a PNG or JPEG file of any content in an images folder.
func FuzzOpenImages(f *testing.F) {
	pngs, jpegs := fuzzImageBytes(f)
	for _, b := range pngs {
		f.Add(b, uint16(0))
		f.Add(b, uint16(0x8001))
		f.Add(b[:len(b)-12], uint16(0))
	}
	for _, b := range jpegs {
		f.Add(b, uint16(0x4000))
		f.Add(b, uint16(0xc002))
		f.Add(b[:len(b)/2], uint16(0x4000))
	}
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, v uint16) {
		if len(data) > fuzzMaxInput {
			t.Skip()
		}
		dir := t.TempDir()
		name := "img.png"
		if v&0x4000 != 0 {
			name = "img.jpg"
		}
		path := filepath.Join(dir, "class0", name)
		writeFuzzFile(t, path, data)
		im := &ImageSpec{Size: []int{int(v%4) + 1, int(v>>2%4) + 1}, Resize: []int{0, 3, 6, 256}[v>>4%4]}
		switch v >> 6 % 4 {
		case 1:
			im.Channels = "GRAY"
		case 2:
			im.Channels, im.Layout = "BGR", "NHWC"
		}
		spec := &Spec{Format: "images", Inputs: map[string]string{"x": dir}, Image: im}
		if v&0x8000 != 0 {
			spec.Labels = LabelsFromFolders
		}
		in := InputInfo{Name: "x"}
		if v&0x2000 != 0 {
			in.Type = onnxio.TypeUint8
		}
		checkRead(t, spec, []InputInfo{in}, path, len(data), fuzzImagePixels)
	})
}

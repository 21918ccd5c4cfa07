package dataset

import (
	"bufio"
	"fmt"
	"image"
	_ "image/jpeg" // JPEG decoder
	_ "image/png"  // PNG decoder
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"github.com/x448/float16"
	"golang.org/x/image/draw"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// The images format reads a folder of PNG and JPEG files (.png, .jpg, .jpeg, any case),
// subfolders included, in path order; other files are skipped. Each image is decoded
// when a batch needs it (a batch's images decoded in parallel) and becomes one sample:
//
//  1. alpha is dropped (the colour channels' straight values are kept, as PIL's
//     convert("RGB") does);
//  2. with image.resize > 0, the shorter side is scaled to resize pixels and the longer
//     to int(resize*long/short), as torchvision's Resize(int) does;
//  3. an image still smaller than image.size in either direction is scaled up, keeping
//     its aspect, until it covers the size;
//  4. the center image.size is cropped out (offsets rounded half to even, as
//     torchvision's CenterCrop);
//  5. each channel value v (0..255) becomes (v/scale - mean[c]) / std[c]; GRAY is the
//     rounded ITU-R 601 luma (299R+587G+114B)/1000 of the 8-bit RGB values.
//
// Scaling uses golang.org/x/image/draw's BiLinear kernel, which widens when
// downscaling (antialiased, like PIL's and torchvision's bilinear resize). Results are
// close to, not bit-identical with, Python pipelines.
//
// An image of more than 8192 x 8192 pixels (maxImagePixels) is an error.
//
// Float inputs (float, double, float16, bfloat16) get the normalized values; a uint8
// input gets the pixel values as they are (mean, std and scale do not apply).
//
// With labels: folders, the input folder holds one subfolder per class (ImageNet style);
// an image's label is the index of its top-level subfolder among the folder's sorted
// subfolders.

// maxImagePixels is the largest image (width x height) load decodes.
const maxImagePixels = 1 << 26

// imagePrep is the preprocessing of one images input.
type imagePrep struct {
	h, w      int
	resize    int
	c         int
	order     []int // channels: indexes into [R, G, B], or nil for GRAY
	mean, std []float64
	scale     float64
	nchw      bool
	raw       bool
}

// imageSource feeds an input from image files.
type imageSource struct {
	dir    string
	files  []string
	prep   *imagePrep
	out    onnxio.DataType
	sample []int64
}

func (s *imageSource) Len() int              { return len(s.files) }
func (s *imageSource) Type() onnxio.DataType { return s.out }
func (s *imageSource) Sample() []int64       { return s.sample }
func (s *imageSource) Describe() string      { return s.dir }

func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// openImages opens an images input; with classes it also returns each image's class id
// (labels: folders).
func (d *Dataset) openImages(in InputInfo, classes bool) (source, []int64, error) {
	dir := d.spec.Inputs[in.Name]
	im := d.spec.Image
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("input %q: cannot read %s: %v", in.Name, dir, errText(err))
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("input %q: %s is not a folder; format images takes a folder of PNG/JPEG files", in.Name, dir)
	}
	p, err := newImagePrep(im)
	if err != nil {
		return nil, nil, err
	}
	s := &imageSource{dir: dir, prep: p, out: in.Type}
	switch in.Type {
	case onnxio.TypeUndefined:
		s.out = onnxio.TypeFloat
	case onnxio.TypeFloat, onnxio.TypeDouble, onnxio.TypeFloat16, onnxio.TypeBFloat16:
	case onnxio.TypeUint8:
		p.raw = true
		if len(im.Mean) > 0 || len(im.Std) > 0 || im.Scale != 0 {
			d.warnings = append(d.warnings, fmt.Sprintf("input %q is uint8: it gets raw pixel values; image.mean, std and scale do not apply", in.Name))
		}
	default:
		return nil, nil, fmt.Errorf("input %q is %s: images feed float or uint8 inputs only", in.Name, in.Type)
	}
	if s.sample, err = imageSample(in, p, dir); err != nil {
		return nil, nil, err
	}
	if s.files, err = imageFiles(in, dir); err != nil {
		return nil, nil, err
	}
	if !classes {
		return s, nil, nil
	}
	labels, err := classLabels(in, dir, s.files)
	if err != nil {
		return nil, nil, err
	}
	return s, labels, nil
}

// newImagePrep makes the preprocessing that im describes, checking its size, resize,
// mean and std.
func newImagePrep(im *ImageSpec) (*imagePrep, error) {
	p := &imagePrep{h: im.Size[0], w: im.Size[1], resize: im.Resize, scale: im.Scale, nchw: im.Layout != "NHWC"}
	if p.h <= 0 || p.w <= 0 || p.resize < 0 {
		return nil, fmt.Errorf("image.size %v and image.resize %d must be positive", im.Size, im.Resize)
	}
	if p.scale == 0 {
		p.scale = 255
	}
	switch im.Channels {
	case "", "RGB":
		p.c, p.order = 3, []int{0, 1, 2}
	case "BGR":
		p.c, p.order = 3, []int{2, 1, 0}
	case "GRAY":
		p.c = 1
	}
	var err error
	if p.mean, err = perChannel("image.mean", im.Mean, p.c, 0); err != nil {
		return nil, err
	}
	if p.std, err = perChannel("image.std", im.Std, p.c, 1); err != nil {
		return nil, err
	}
	if slices.Contains(p.std, 0) {
		return nil, fmt.Errorf("image.std %v has a zero: it divides", im.Std)
	}
	return p, nil
}

// imageSample returns the shape of one sample that p makes, checked against input in's
// fixed dimensions; a mismatch that the other layout would fix says so.
func imageSample(in InputInfo, p *imagePrep, dir string) ([]int64, error) {
	sample := []int64{int64(p.h), int64(p.w), int64(p.c)}
	if p.nchw {
		sample = []int64{int64(p.c), int64(p.h), int64(p.w)}
	}
	if err := checkSample(in, sample, dir); err != nil {
		other, layout := []int64{int64(p.h), int64(p.w), int64(p.c)}, "NHWC"
		if !p.nchw {
			other, layout = []int64{int64(p.c), int64(p.h), int64(p.w)}, "NCHW"
		}
		if checkSample(in, other, dir) == nil {
			return nil, fmt.Errorf("%v; the model takes %s images: set image.layout: %s", err, layout, layout)
		}
		return nil, fmt.Errorf("%v; set image.size, image.channels and image.layout to what the model takes", err)
	}
	return sample, nil
}

// imageFiles lists the PNG and JPEG files under dir, subfolders included, in path order;
// a folder without any is an error.
func imageFiles(in InputInfo, dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && isImageFile(e.Name()) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("input %q: cannot list %s: %v", in.Name, dir, errText(err))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("input %q: %s holds no PNG or JPEG files", in.Name, dir)
	}
	return files, nil
}

// classLabels returns the class id of each of files: the index of its top-level
// subfolder among dir's sorted subfolders. A file directly in dir is an error.
func classLabels(in InputInfo, dir string, files []string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("input %q: cannot list %s: %v", in.Name, dir, errText(err))
	}
	ids := map[string]int64{}
	for _, e := range ents {
		if e.IsDir() {
			ids[e.Name()] = int64(len(ids)) // ReadDir sorts by name
		}
	}
	labels := make([]int64, len(files))
	for i, f := range files {
		rel, _ := filepath.Rel(dir, f)
		top, _, nested := strings.Cut(filepath.ToSlash(rel), "/")
		if !nested {
			return nil, fmt.Errorf("labels: folders: %s is not in a class subfolder of %s; put every image in its class's folder", f, dir)
		}
		labels[i] = ids[top]
	}
	return labels, nil
}

// perChannel expands a mean or std list to one value per channel.
func perChannel(name string, v []float64, c int, def float64) ([]float64, error) {
	switch len(v) {
	case 0:
		return slices.Repeat([]float64{def}, c), nil
	case 1:
		return slices.Repeat(v, c), nil
	case c:
		return slices.Clone(v), nil
	}
	return nil, fmt.Errorf("%s has %d values for %d channels; give one per channel (or one for all)", name, len(v), c)
}

func (s *imageSource) Read(rows []int) (*onnxio.Tensor, error) {
	per := s.prep.c * s.prep.h * s.prep.w
	buf := make([]float32, len(rows)*per)
	errs := make([]error, len(rows))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(rows)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = s.prep.load(s.files[rows[i]], buf[i*per:(i+1)*per])
			}
		})
	}
	for i := range rows {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	shape := append([]int64{int64(len(rows))}, s.sample...)
	var data any
	switch s.out {
	case onnxio.TypeFloat:
		data = buf
	case onnxio.TypeDouble:
		data = fill(len(buf), func(i int) float64 { return float64(buf[i]) })
	case onnxio.TypeFloat16:
		data = fill(len(buf), func(i int) float16.Float16 { return float16.Fromfloat32(buf[i]) })
	case onnxio.TypeBFloat16:
		data = fill(len(buf), func(i int) onnxio.BFloat16 { return onnxio.BFloat16FromFloat32(buf[i]) })
	case onnxio.TypeUint8:
		data = fill(len(buf), func(i int) uint8 { return uint8(buf[i]) })
	}
	return &onnxio.Tensor{Type: s.out, Shape: shape, Data: data}, nil
}

// load decodes one image and writes its preprocessed values into dst.
func (p *imagePrep) load(path string, dst []float32) error {
	f, err := regular.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open image %s: %v", path, errText(err))
	}
	defer f.Close()
	// The header says how big the image is; the decoder allocates that much before it
	// reads a pixel, so a few damaged bytes could ask for gigabytes.
	if cfg, _, err := image.DecodeConfig(bufio.NewReader(f)); err == nil && int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return fmt.Errorf("image %s is %d x %d pixels, more than the %d (8192 x 8192) this reader decodes; scale it down", path, cfg.Width, cfg.Height, maxImagePixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read image %s: %v", path, errText(err))
	}
	img, _, err := image.Decode(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("image %s cannot be decoded (%v); give PNG or JPEG files", path, err)
	}
	src := toRGBA(img)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	if w == 0 || h == 0 {
		return fmt.Errorf("image %s is empty", path)
	}
	nw, nh := p.scaledSize(w, h)
	if int64(nw)*int64(nh) > maxImagePixels {
		return fmt.Errorf("image %s of %d x %d pixels would be scaled to %d x %d, more than the %d pixels (8192 x 8192) this reader makes; crop it closer to the model's aspect", path, w, h, nw, nh, maxImagePixels)
	}
	if nw != w || nh != h {
		scaled := image.NewRGBA(image.Rect(0, 0, nw, nh))
		draw.BiLinear.Scale(scaled, scaled.Rect, src, src.Rect, draw.Src, nil)
		src = scaled
	}
	top := int(math.RoundToEven(float64(nh-p.h) / 2))
	left := int(math.RoundToEven(float64(nw-p.w) / 2))
	plane := p.h * p.w
	for y := range p.h {
		row := src.Pix[(top+y)*src.Stride+left*4:]
		for x := range p.w {
			px := row[4*x : 4*x+3]
			for c := range p.c {
				var v float64
				if p.order == nil {
					v = float64((299*int(px[0]) + 587*int(px[1]) + 114*int(px[2]) + 500) / 1000)
				} else {
					v = float64(px[p.order[c]])
				}
				if !p.raw {
					v = (v/p.scale - p.mean[c]) / p.std[c]
				}
				if p.nchw {
					dst[c*plane+y*p.w+x] = float32(v)
				} else {
					dst[(y*p.w+x)*p.c+c] = float32(v)
				}
			}
		}
	}
	return nil
}

// scaledSize is the size an image of w x h is scaled to before the crop.
func (p *imagePrep) scaledSize(w, h int) (int, int) {
	nw, nh := w, h
	if p.resize > 0 {
		if w <= h {
			nw, nh = p.resize, p.resize*h/w
		} else {
			nw, nh = p.resize*w/h, p.resize
		}
	}
	if nw < p.w || nh < p.h {
		f := max(float64(p.w)/float64(nw), float64(p.h)/float64(nh))
		nw = max(p.w, int(math.Round(float64(nw)*f)))
		nh = max(p.h, int(math.Round(float64(nh)*f)))
	}
	return nw, nh
}

// toRGBA converts an image to opaque RGBA at the origin, dropping alpha.
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
		return dst
	}
	if n, ok := img.(*image.NRGBA); ok {
		for y := range b.Dy() {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*b.Dx()], n.Pix[n.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	} else {
		n := image.NewNRGBA(dst.Rect)
		draw.Draw(n, n.Rect, img, b.Min, draw.Src)
		copy(dst.Pix, n.Pix)
	}
	for i := 3; i < len(dst.Pix); i += 4 {
		dst.Pix[i] = 255
	}
	return dst
}

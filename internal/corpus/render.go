package corpus

import (
	"image"
	"image/color"
	"math/rand/v2"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

var fontFiles = [][]byte{goregular.TTF, gobold.TTF, gomono.TTF}

// faceOf returns a face of font i at size px.
func faceOf(i int, px float64) font.Face {
	f, err := opentype.Parse(fontFiles[i%len(fontFiles)])
	if err != nil {
		panic(err) // the Go fonts are built in
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic(err)
	}
	return face
}

// paper fills img with a light, uneven background (a gradient and noise, like a photo of
// a page), or a dark one when inverted.
func paper(rng *rand.Rand, img *image.RGBA, inverted bool) {
	b := img.Bounds()
	base := 200 + rng.IntN(50)
	tint := [3]int{rng.IntN(20) - 10, rng.IntN(20) - 10, rng.IntN(20) - 10}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := base - 30*(x+y)/(b.Dx()+b.Dy()) + rng.IntN(12) - 6
			if inverted {
				v = 255 - v
			}
			img.SetRGBA(x, y, color.RGBA{clamp8(v + tint[0]), clamp8(v + tint[1]), clamp8(v + tint[2]), 255})
		}
	}
}

func clamp8(v int) uint8 { return uint8(max(0, min(255, v))) }

// ink is a text colour that stands out from the background.
func ink(rng *rand.Rand, inverted bool) color.RGBA {
	if inverted {
		v := 220 + rng.IntN(35)
		return color.RGBA{uint8(v), uint8(v), uint8(v), 255}
	}
	c := [3]int{rng.IntN(60), rng.IntN(60), rng.IntN(60)}
	if rng.IntN(4) == 0 { // a coloured line now and then
		c[rng.IntN(3)] += 120
	}
	return color.RGBA{uint8(c[0]), uint8(c[1]), uint8(c[2]), 255}
}

// textLine draws a line of text from w at left on a w×h image, the text's height about
// 0.65 of h; it returns the image and the text.
func textLine(rng *rand.Rand, words []string, width, height int) (*image.RGBA, string) {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	inverted := rng.IntN(6) == 0
	paper(rng, img, inverted)
	px := float64(height) * (0.55 + 0.2*rng.Float64())
	face := faceOf(rng.IntN(len(fontFiles)), px)
	defer face.Close()
	left := 2 + rng.IntN(8)
	s := phrase(rng, words, func(s string) bool { return font.MeasureString(face, s).Ceil() <= width-left-4 })
	d := font.Drawer{Dst: img, Src: image.NewUniform(ink(rng, inverted)), Face: face}
	m := face.Metrics()
	base := (height + m.Ascent.Ceil() - m.Descent.Ceil()) / 2
	d.Dot = fixed.P(left, base+rng.IntN(3)-1)
	d.DrawString(s)
	return img, s
}

// textPage draws several lines of text of different sizes at different places on a w×h
// page, as a text detector sees a photographed document.
func textPage(rng *rand.Rand, words []string, width, height int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	inverted := rng.IntN(8) == 0
	paper(rng, img, inverted)
	y := 8
	for y < height-16 {
		px := 14 + rng.Float64()*18
		face := faceOf(rng.IntN(len(fontFiles)), px)
		m := face.Metrics()
		left := 4 + rng.IntN(width/4)
		maxW := width - left - 4 - rng.IntN(width/3)
		s := phrase(rng, words, func(s string) bool { return font.MeasureString(face, s).Ceil() <= maxW })
		y += m.Ascent.Ceil()
		if y+m.Descent.Ceil() >= height {
			face.Close()
			break
		}
		d := font.Drawer{Dst: img, Src: image.NewUniform(ink(rng, inverted)), Face: face, Dot: fixed.P(left, y)}
		d.DrawString(s)
		y += m.Descent.Ceil() + 4 + rng.IntN(int(px))
		face.Close()
	}
	return img
}

// rotate180 turns img upside down (what a text-direction classifier tells apart).
func rotate180(img *image.RGBA) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(b.Max.X-1-x+b.Min.X, b.Max.Y-1-y+b.Min.Y, img.At(x, y))
		}
	}
	return out
}

// chw writes img into dst as 3 planes in BGR order (as PaddleOCR reads images with
// OpenCV), each value (v/255 − mean[c]) / std[c].
func chw(dst []float32, img *image.RGBA, mean, std [3]float32) {
	b := img.Bounds()
	plane := b.Dx() * b.Dy()
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			p := img.RGBAAt(b.Min.X+x, b.Min.Y+y)
			bgr := [3]uint8{p.B, p.G, p.R}
			for c := range 3 {
				dst[c*plane+y*b.Dx()+x] = (float32(bgr[c])/255 - mean[c]) / std[c]
			}
		}
	}
}

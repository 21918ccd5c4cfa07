package mnist

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Read reads the first n items of one of the gzip-compressed idx files in Dir: images
// (magic 2051) as float32 pixels / 255, row-major, 784 per image; or labels (magic 2049)
// as class ids. Tests use it where a dataset.Dataset would be more than they need.
func Read(file string, n int) (pixels []float32, labels []int, err error) {
	dir, err := Dir()
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	var hdr [2]uint32
	if err := binary.Read(zr, binary.BigEndian, &hdr); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if int(hdr[1]) < n {
		return nil, nil, fmt.Errorf("%s holds %d items, want %d", file, hdr[1], n)
	}
	switch hdr[0] {
	case 2051:
		var dims [2]uint32
		if err := binary.Read(zr, binary.BigEndian, &dims); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		buf := make([]byte, n*int(dims[0]*dims[1]))
		if _, err := io.ReadFull(zr, buf); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		pixels = make([]float32, len(buf))
		for i, b := range buf {
			pixels[i] = float32(b) / 255
		}
	case 2049:
		buf := make([]byte, n)
		if _, err := io.ReadFull(zr, buf); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		labels = make([]int, n)
		for i, b := range buf {
			labels[i] = int(b)
		}
	default:
		return nil, nil, fmt.Errorf("%s: not an idx images or labels file (magic %d)", file, hdr[0])
	}
	return pixels, labels, nil
}

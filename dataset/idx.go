package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// The idx format is MNIST's: a big-endian header (magic 0x0000TTDD: element type TT,
// DD dimensions), DD big-endian uint32 sizes, then the elements; plain or gzip-compressed
// (told by the gzip magic, not the name). Inputs need unsigned bytes (type 0x08, magic
// 2051 for MNIST's images); labels need one dimension of bytes (magic 2049). A plain
// file is read per batch; a gzip file is inflated as far as the batches need and kept in
// memory.

// openIdxFile opens an idx file and returns the array it holds.
func (d *Dataset) openIdxFile(path string) (*array, error) {
	f, err := regular.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %v", path, errText(err))
	}
	d.closers = append(d.closers, f)
	var magic [2]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return nil, fmt.Errorf("%s is not an idx file: too short", path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var r io.Reader = f
	gz := magic[0] == 0x1f && magic[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		r = zr
	}
	cr := &countingReader{r: r}
	var hdr [4]byte
	if _, err := io.ReadFull(cr, hdr[:]); err != nil {
		return nil, fmt.Errorf("%s is not an idx file: too short", path)
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[3] == 0 {
		return nil, fmt.Errorf("%s is not an idx file (magic %d); give MNIST's idx files (plain or .gz)", path, binary.BigEndian.Uint32(hdr[:]))
	}
	if hdr[2] != 0x08 {
		return nil, fmt.Errorf("%s holds idx element type 0x%02x; only unsigned bytes (0x08, as MNIST's) are supported", path, hdr[2])
	}
	a := &array{dt: onnxio.TypeUint8, size: 1, what: path}
	for range int(hdr[3]) {
		var v uint32
		if err := binary.Read(cr, binary.BigEndian, &v); err != nil {
			return nil, fmt.Errorf("%s: header ends early: the file is truncated", path)
		}
		a.shape = append(a.shape, int64(v))
	}
	if err := checkShape(a.shape, 1); err != nil {
		return nil, fmt.Errorf("%s: %v; the file is damaged: download it again", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if gz {
		if err := checkInflated(a, st.Size()); err != nil {
			return nil, err
		}
		a.r = newStreamReaderAt(r, a.dataBytes())
		return a, nil
	}
	if st.Size()-cr.n < a.dataBytes() {
		return nil, fmt.Errorf("%s is truncated: its header promises shape %v (%d bytes), it has %d; download it again", path, a.shape, a.dataBytes(), st.Size()-cr.n)
	}
	a.r, a.off = f, cr.n
	return a, nil
}

// openIdx feeds an input from an idx images file. A uint8 input gets the bytes; a float
// input (float, double, float16, bfloat16) gets x/255. Each sample (e.g. 28x28 pixels) is
// reshaped to the model's sample shape when the element counts match (at most one of its
// dimensions may be dynamic; it takes the rest).
func (d *Dataset) openIdx(in InputInfo) (source, error) {
	p := d.spec.Inputs[in.Name]
	a, err := d.openIdxFile(p)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", in.Name, err)
	}
	if len(a.shape) < 2 {
		return nil, fmt.Errorf("input %q: %s holds %d-dimensional data (labels?); give the images file", in.Name, p, len(a.shape))
	}
	sample, err := idxSample(in, a)
	if err != nil {
		return nil, err
	}
	s := &arraySource{a: a, sample: sample, out: in.Type}
	switch in.Type {
	case onnxio.TypeUint8, onnxio.TypeUndefined:
		s.out = onnxio.TypeUint8
		s.conv = func(raw []byte) any { return raw }
	case onnxio.TypeFloat:
		s.conv = func(raw []byte) any { return fill(len(raw), func(i int) float32 { return float32(raw[i]) / 255 }) }
	case onnxio.TypeDouble:
		s.conv = func(raw []byte) any { return fill(len(raw), func(i int) float64 { return float64(raw[i]) / 255 }) }
	case onnxio.TypeFloat16:
		s.conv = func(raw []byte) any {
			return fill(len(raw), func(i int) float16.Float16 { return float16.Fromfloat32(float32(raw[i]) / 255) })
		}
	case onnxio.TypeBFloat16:
		s.conv = func(raw []byte) any {
			return fill(len(raw), func(i int) onnxio.BFloat16 { return onnxio.BFloat16FromFloat32(float32(raw[i]) / 255) })
		}
	default:
		return nil, fmt.Errorf("input %q is %s: the idx pixels of %s feed uint8 or float inputs only", in.Name, in.Type, p)
	}
	return s, nil
}

// idxSample fits an idx sample's elements to the model's sample shape.
func idxSample(in InputInfo, a *array) ([]int64, error) {
	file := append([]int64{}, a.shape[1:]...)
	if in.Shape == nil {
		return file, nil
	}
	want := append([]int64{}, in.Shape[1:]...)
	n := int64(a.rowElems())
	known, dyn := int64(1), -1
	for i, w := range want {
		if w < 0 {
			if dyn >= 0 {
				// Several dynamic dims: keep the file's shape when the ranks agree.
				if len(want) == len(file) {
					return file, nil
				}
				return nil, fmt.Errorf("input %q has shape %s with several dynamic dims: cannot fit %s's samples of %v; fix the model's dims", in.Name, dimString(in.Shape), a.what, file)
			}
			dyn = i
			continue
		}
		known *= w
	}
	if dyn >= 0 && known > 0 && n%known == 0 {
		want[dyn] = n / known
		known = n
	}
	if known != n {
		return nil, fmt.Errorf("input %q: samples of %s have %d elements (%v), which the model's sample shape %s cannot hold; use a model input of %d elements per sample", in.Name, a.what, n, file, dimString(in.Shape[1:]), n)
	}
	return want, nil
}

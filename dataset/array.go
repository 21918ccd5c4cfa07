package dataset

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"codeberg.org/sbinet/npyio"
	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// array is a C-ordered array of fixed-size elements stored at off in r, its first axis
// the samples: .npy files, npz members, idx files.
type array struct {
	r     io.ReaderAt
	off   int64
	dt    onnxio.DataType
	size  int  // bytes per element
	big   bool // big-endian elements
	shape []int64
	what  string // the file, for messages
}

func (a *array) rows() int { return int(a.shape[0]) }

func (a *array) rowElems() int {
	n := 1
	for _, d := range a.shape[1:] {
		n *= int(d)
	}
	return n
}

// readRows returns the raw bytes of the given rows, one read per run of consecutive
// rows.
func (a *array) readRows(rows []int) ([]byte, error) {
	rb := int64(a.rowElems() * a.size)
	if s, ok := a.r.(*streamReaderAt); ok && len(rows) > 0 {
		// A stream's header may declare more data than it holds: inflate as far as the
		// last row first, so that the buffer below is never larger than the data.
		last := slices.Max(rows)
		if !s.readTo(a.off + int64(last+1)*rb) {
			if err := s.failed(); err != nil {
				return nil, fmt.Errorf("%s: %v", a.what, err)
			}
			return nil, fmt.Errorf("%s ends before sample %d: the file is truncated; write it again", a.what, last)
		}
	}
	buf := make([]byte, int64(len(rows))*rb)
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j] == rows[j-1]+1 {
			j++
		}
		if _, err := a.r.ReadAt(buf[int64(i)*rb:int64(j)*rb], a.off+int64(rows[i])*rb); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("%s ends before sample %d: the file is truncated; write it again", a.what, rows[j-1])
			}
			return nil, fmt.Errorf("%s: %v", a.what, err)
		}
		i = j
	}
	return buf, nil
}

// arraySource feeds an input from an array, converting the raw elements with conv.
type arraySource struct {
	a      *array
	out    onnxio.DataType
	sample []int64
	conv   func(raw []byte) any
}

func (s *arraySource) Len() int              { return s.a.rows() }
func (s *arraySource) Type() onnxio.DataType { return s.out }
func (s *arraySource) Sample() []int64       { return s.sample }
func (s *arraySource) Describe() string      { return s.a.what }

func (s *arraySource) Read(rows []int) (*onnxio.Tensor, error) {
	raw, err := s.a.readRows(rows)
	if err != nil {
		return nil, err
	}
	return &onnxio.Tensor{Type: s.out, Shape: append([]int64{int64(len(rows))}, s.sample...), Data: s.conv(raw)}, nil
}

// rawSource feeds an array's elements as they are.
func rawSource(a *array) *arraySource {
	return &arraySource{a: a, out: a.dt, sample: a.shape[1:], conv: func(raw []byte) any { return decodeRaw(a.dt, a.big, raw) }}
}

// decodeRaw converts raw elements (little- or big-endian) to the typed slice of dt.
func decodeRaw(dt onnxio.DataType, big bool, raw []byte) any {
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	switch dt {
	case onnxio.TypeFloat:
		return fill(len(raw)/4, func(i int) float32 { return math.Float32frombits(bo.Uint32(raw[4*i:])) })
	case onnxio.TypeDouble:
		return fill(len(raw)/8, func(i int) float64 { return math.Float64frombits(bo.Uint64(raw[8*i:])) })
	case onnxio.TypeFloat16:
		return fill(len(raw)/2, func(i int) float16.Float16 { return float16.Frombits(bo.Uint16(raw[2*i:])) })
	case onnxio.TypeInt8:
		return fill(len(raw), func(i int) int8 { return int8(raw[i]) })
	case onnxio.TypeUint8:
		return slices.Clone(raw)
	case onnxio.TypeBool:
		return fill(len(raw), func(i int) bool { return raw[i] != 0 })
	case onnxio.TypeInt16:
		return fill(len(raw)/2, func(i int) int16 { return int16(bo.Uint16(raw[2*i:])) })
	case onnxio.TypeUint16:
		return fill(len(raw)/2, func(i int) uint16 { return bo.Uint16(raw[2*i:]) })
	case onnxio.TypeInt32:
		return fill(len(raw)/4, func(i int) int32 { return int32(bo.Uint32(raw[4*i:])) })
	case onnxio.TypeUint32:
		return fill(len(raw)/4, func(i int) uint32 { return bo.Uint32(raw[4*i:]) })
	case onnxio.TypeInt64:
		return fill(len(raw)/8, func(i int) int64 { return int64(bo.Uint64(raw[8*i:])) })
	case onnxio.TypeUint64:
		return fill(len(raw)/8, func(i int) uint64 { return bo.Uint64(raw[8*i:]) })
	}
	panic("dataset: decodeRaw of " + dt.String())
}

func fill[T any](n int, f func(i int) T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

// npyTypes maps a numpy type code (kind and size, without byte order) to its element
// type.
var npyTypes = map[string]onnxio.DataType{
	"f2": onnxio.TypeFloat16, "f4": onnxio.TypeFloat, "f8": onnxio.TypeDouble,
	"i1": onnxio.TypeInt8, "u1": onnxio.TypeUint8, "b1": onnxio.TypeBool,
	"i2": onnxio.TypeInt16, "u2": onnxio.TypeUint16, "i4": onnxio.TypeInt32, "u4": onnxio.TypeUint32,
	"i8": onnxio.TypeInt64, "u8": onnxio.TypeUint64,
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// maxNPYHeader bounds the header a .npy file may declare (numpy writes well under 1 KiB).
const maxNPYHeader = 1 << 20

// checkNPYPrefix checks a .npy file's magic, version and header length, so that the
// header parser never reads past a short file.
func checkNPYPrefix(r io.Reader, what string) ([]byte, error) {
	pre := make([]byte, 8)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("%s is not a .npy file: it ends within the first 8 bytes; write it with numpy.save", what)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%s is not a .npy file (no \\x93NUMPY magic); write it with numpy.save", what)
	}
	lenBytes := 2
	switch pre[6] {
	case 1:
	case 2, 3:
		lenBytes = 4
	default:
		return nil, fmt.Errorf("%s is .npy format version %d.%d, which is not supported (1.0-3.0); write it with numpy.save", what, pre[6], pre[7])
	}
	lb := make([]byte, lenBytes)
	if _, err := io.ReadFull(r, lb); err != nil {
		return nil, fmt.Errorf("%s is truncated inside its .npy header; write it again", what)
	}
	n := int64(binary.LittleEndian.Uint16(lb[:2]))
	if lenBytes == 4 {
		n = int64(binary.LittleEndian.Uint32(lb))
	}
	if n > maxNPYHeader {
		return nil, fmt.Errorf("%s declares a %d-byte .npy header (at most %d); the file is damaged: write it again", what, n, maxNPYHeader)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%s is truncated inside its .npy header (%d bytes declared); write it again", what, n)
	}
	return append(append(pre, lb...), hdr...), nil
}

// parseNPY reads a .npy header from r and returns the array it describes (r and off
// left for the caller to set) and the header's length in bytes.
func parseNPY(r io.Reader, what string) (*array, int64, error) {
	prefix, err := checkNPYPrefix(r, what)
	if err != nil {
		return nil, 0, err
	}
	h, err := readNPYHeader(prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("%s is not a readable .npy file (%v); write it with numpy.save", what, err)
	}
	if h.Descr.Fortran {
		return nil, 0, fmt.Errorf("%s is stored in Fortran order; save a C-ordered array (numpy: np.save(f, np.ascontiguousarray(a)))", what)
	}
	code := strings.Trim(h.Descr.Type, "'\" ")
	if len(code) < 3 {
		return nil, 0, fmt.Errorf("%s: unsupported numpy dtype %s; save numbers (float32, int64, ...)", what, show(h.Descr.Type))
	}
	order, kind := code[0], code[1:]
	dt, ok := npyTypes[kind]
	if !ok || !strings.ContainsRune("<>|=", rune(order)) {
		return nil, 0, fmt.Errorf("%s: unsupported numpy dtype %s; save float16/32/64, (u)int8/16/32/64 or bool", what, show(h.Descr.Type))
	}
	a := &array{dt: dt, size: dt.Bits() / 8, big: order == '>', what: what}
	if len(h.Descr.Shape) == 0 {
		return nil, 0, fmt.Errorf("%s holds a scalar; save an array whose first axis is the samples", what)
	}
	for _, d := range h.Descr.Shape {
		a.shape = append(a.shape, int64(d))
	}
	if err := checkShape(a.shape, int64(a.size)); err != nil {
		return nil, 0, fmt.Errorf("%s: %v; the file is damaged: write it again", what, err)
	}
	return a, int64(len(prefix)), nil
}

// readNPYHeader parses a complete, length-checked .npy prefix with npyio, turning a
// panic of the parser on a malformed dictionary into an error.
func readNPYHeader(prefix []byte) (h npyio.Header, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed header: %v", p)
		}
	}()
	nr, err := npyio.NewReader(bytes.NewReader(prefix))
	if err != nil {
		return h, err
	}
	return nr.Header, nil
}

// checkShape refuses negative dimensions and shapes whose byte size overflows int64.
func checkShape(shape []int64, elemBytes int64) error {
	n := elemBytes
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d > 0 && n > math.MaxInt64/d {
			return fmt.Errorf("shape %v is too large to address", shape)
		}
		n *= d
	}
	return nil
}

// dataBytes is the size of the array's data.
func (a *array) dataBytes() int64 {
	n := int64(a.size)
	for _, d := range a.shape {
		n *= d
	}
	return n
}

// openNPY opens a .npy file; its data is read per batch.
func (d *Dataset) openNPY(path string) (*array, error) {
	f, err := regular.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %v", path, errText(err))
	}
	d.closers = append(d.closers, f)
	a, hdr, err := parseNPY(f, path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size()-hdr < a.dataBytes() {
		return nil, fmt.Errorf("%s is truncated: shape %v needs %d data bytes, the file has %d; write it again", path, a.shape, a.dataBytes(), st.Size()-hdr)
	}
	a.r, a.off = f, hdr
	return a, nil
}

// npzArchive is an open .npz file.
type npzArchive struct {
	path string
	f    *os.File
	size int64 // of the file
	zr   *zip.Reader
}

func (d *Dataset) openNPZArchive(path string) (*npzArchive, error) {
	if z, ok := d.npz[path]; ok {
		return z, nil
	}
	f, err := regular.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %v", path, errText(err))
	}
	d.closers = append(d.closers, f)
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable .npz file (%v); write it with numpy.savez", path, err)
	}
	z := &npzArchive{path: path, f: f, size: st.Size(), zr: zr}
	d.npz[path] = z
	return z, nil
}

// names lists the archive's arrays.
func (z *npzArchive) names() []string {
	var out []string
	for _, f := range z.zr.File {
		out = append(out, strings.TrimSuffix(f.Name, ".npy"))
	}
	return out
}

// array opens the named member. A stored (uncompressed, np.savez) member is read in
// place per batch; a compressed one (np.savez_compressed) is inflated as far as the
// batches need and kept in memory.
func (d *Dataset) npzArray(z *npzArchive, name string) (*array, error) {
	var zf *zip.File
	for _, f := range z.zr.File {
		if f.Name == name+".npy" || f.Name == name {
			zf = f
			break
		}
	}
	what := z.path + ":" + name
	if zf == nil {
		return nil, fmt.Errorf("%s has no array %q (it holds %s); name one as %s:<array>", z.path, name, showList(z.names()), z.path)
	}
	if zf.Method == zip.Store {
		off, err := zf.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		sr := io.NewSectionReader(z.f, off, int64(zf.UncompressedSize64))
		a, hdr, err := parseNPY(sr, what)
		if err != nil {
			return nil, err
		}
		// The member's size comes from the archive's directory, which may be damaged: the
		// data must also be inside the file.
		if int64(zf.UncompressedSize64)-hdr < a.dataBytes() || z.size-off-hdr < a.dataBytes() {
			return nil, fmt.Errorf("%s is truncated: shape %v needs %d data bytes; write the archive again", what, a.shape, a.dataBytes())
		}
		a.r, a.off = z.f, off+hdr
		return a, nil
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	d.closers = append(d.closers, rc)
	a, hdr, err := parseNPY(rc, what)
	if err != nil {
		return nil, err
	}
	if int64(zf.UncompressedSize64)-hdr < a.dataBytes() {
		return nil, fmt.Errorf("%s is truncated: shape %v needs %d data bytes, the archive holds %d; write the archive again", what, a.shape, a.dataBytes(), int64(zf.UncompressedSize64)-hdr)
	}
	if err := checkInflated(a, min(int64(zf.CompressedSize64), z.size)); err != nil {
		return nil, err
	}
	a.r = newStreamReaderAt(rc, a.dataBytes())
	return a, nil
}

// splitNPZ splits "file.npz:array" into the file and the array name (def when none is
// given).
func splitNPZ(p, def string) (file, name string) {
	if i := strings.LastIndex(p, ".npz:"); i >= 0 {
		return p[:i+4], p[i+5:]
	}
	return p, def
}

// isNPZ reports whether a path names an npz file or member.
func isNPZ(p string) bool {
	return strings.HasSuffix(strings.ToLower(p), ".npz") || strings.Contains(p, ".npz:")
}

// openArray opens the npy file or npz member of an input (formats npy and npz accept
// either, told apart by the .npz suffix).
func (d *Dataset) openArray(in InputInfo) (source, error) {
	p := d.spec.Inputs[in.Name]
	var a *array
	var err error
	if isNPZ(p) {
		file, name := splitNPZ(p, in.Name)
		var z *npzArchive
		if z, err = d.openNPZArchive(file); err == nil {
			a, err = d.npzArray(z, name)
		}
	} else {
		a, err = d.openNPY(p)
	}
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", in.Name, err)
	}
	return rawSource(a), nil
}

// maxDeflateRatio bounds how far deflate (zip members, gzip) can expand data: one
// 258-byte match in two bits is 1032:1.
const maxDeflateRatio = 1032

// checkInflated refuses a compressed array whose header declares more data than its
// compressed bytes can expand to: its sample count would be the header's word alone.
func checkInflated(a *array, compressed int64) error {
	if limit := maxDeflateRatio*max(compressed, 0) + 1<<16; a.dataBytes() > limit {
		return fmt.Errorf("%s is damaged: its header declares shape %v (%d bytes), more than its %d compressed bytes can hold; write it again", a.what, a.shape, a.dataBytes(), compressed)
	}
	return nil
}

// streamReaderAt gives random access to a stream that has none (gzip, deflated zip
// members) by keeping what has been read in memory: it reads only as far as asked.
type streamReaderAt struct {
	mu  sync.Mutex
	r   io.Reader
	buf []byte
	err error
}

func newStreamReaderAt(r io.Reader, size int64) *streamReaderAt {
	// The buffer grows with what the batches read, not with what a header declares: a
	// small file may declare a huge shape.
	return &streamReaderAt{r: r, buf: make([]byte, 0, min(max(size, 0), 1<<20))}
}

// readTo reads the stream until the buffer holds its first end bytes, or it ends; it
// reports whether they are there. The buffer grows with what arrives (doubling), never
// to end at once: a header may declare far more than the stream holds.
func (s *streamReaderAt) readTo(end int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fill(end)
	return int64(len(s.buf)) >= end
}

// failed is the stream's read error, nil when it only ended.
func (s *streamReaderAt) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == io.EOF {
		return nil
	}
	return s.err
}

func (s *streamReaderAt) fill(need int64) {
	for int64(len(s.buf)) < need && s.err == nil {
		if len(s.buf) == cap(s.buf) {
			s.buf = slices.Grow(s.buf, int(min(need-int64(len(s.buf)), int64(max(1<<20, len(s.buf))))))
		}
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.err = err
		}
	}
}

func (s *streamReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fill(off + int64(len(p)))
	if off >= int64(len(s.buf)) {
		if s.err != nil && s.err != io.EOF {
			return 0, s.err
		}
		return 0, io.EOF
	}
	n := copy(p, s.buf[off:])
	if n < len(p) {
		if s.err != nil && s.err != io.EOF {
			return n, s.err
		}
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// errText shortens *PathError messages, whose path the caller already names.
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

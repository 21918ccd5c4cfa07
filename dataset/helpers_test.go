package dataset

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// npyBytes encodes v (a slice, nested for more dimensions) as .npy with npyio.
func npyBytes(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := npyio.Write(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeNPY writes v to dir/name and returns the path.
func writeNPY(t *testing.T, dir, name string, v any) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, npyBytes(t, v), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// patchHeader replaces old with new in a .npy header (new may be one byte shorter: the
// header is padded with a space to keep its length).
func patchHeader(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(old))
	end := bytes.IndexByte(b, '\n')
	if i < 0 || end < 0 || len(new) > len(old) {
		t.Fatalf("cannot patch %q in header %q", old, b[:min(len(b), 100)])
	}
	hdr := append([]byte{}, b[:i]...)
	hdr = append(hdr, new...)
	hdr = append(hdr, b[i+len(old):end]...)
	hdr = append(hdr, bytes.Repeat([]byte{' '}, len(old)-len(new))...)
	return append(hdr, b[end:]...)
}

type npzMember struct {
	name   string
	v      any
	stored bool
}

// writeNPZ writes an npz archive, each member stored or deflated.
func writeNPZ(t *testing.T, dir, name string, members ...npzMember) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, m := range members {
		method := zip.Deflate
		if m.stored {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name + ".npy", Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(npyBytes(t, m.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// writePB writes a TensorProto file.
func writePB(t *testing.T, p, name string, tensor *onnxio.Tensor) {
	t.Helper()
	tp, err := onnxio.EncodeTensor(name, tensor)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// open opens spec and registers Close.
func open(t *testing.T, spec *Spec, inputs ...InputInfo) *Dataset {
	t.Helper()
	d, err := Open(spec, inputs)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// collect reads every batch.
func collect(t *testing.T, d *Dataset) []*Batch {
	t.Helper()
	var out []*Batch
	for b, err := range d.Batches() {
		if err != nil {
			t.Fatalf("Batches: %v", err)
		}
		out = append(out, b)
	}
	return out
}

// rows concatenates the batches' rows.
func rows(bs []*Batch) []int {
	var out []int
	for _, b := range bs {
		out = append(out, b.Rows...)
	}
	return out
}

// float32s concatenates one input's data over the batches.
func float32s(t *testing.T, bs []*Batch, name string) []float32 {
	t.Helper()
	var out []float32
	for _, b := range bs {
		s, err := onnxio.Slice[float32](b.Inputs[name])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s...)
	}
	return out
}

// wantErr checks that err is non-nil, one line, and mentions every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// rowsData makes n samples of width w, sample i holding i*10+j.
func rowsData(n, w int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		for j := range w {
			out[i] = append(out[i], float32(i*10+j))
		}
	}
	return out
}

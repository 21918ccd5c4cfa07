package dataset

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// npyHeader is a version-1.0 .npy header for the dictionary text dict, padded as numpy
// pads it.
func npyHeader(dict string) []byte {
	h := dict
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	b.WriteByte(byte(len(h)))
	b.WriteByte(byte(len(h) >> 8))
	b.WriteString(h)
	return b.Bytes()
}

// badNPYs are .npy files that must be refused with an error naming the file.
func badNPYs() map[string][]byte {
	good := append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), make([]byte, 24)...)
	return map[string][]byte{
		"empty":                      {},
		"magic only":                 []byte("\x93NUMPY"),
		"cut in the length":          []byte("\x93NUMPY\x01\x00\x76"),
		"cut inside the header":      good[:30],
		"header length past the end": append([]byte("\x93NUMPY\x01\x00\xff\xff"), []byte("{'descr'")...),
		"negative dimension":         append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }"), make([]byte, 24)...),
		"negative inner dimension":   append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }"), make([]byte, 24)...),
		"overflowing shape":          append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }"), make([]byte, 24)...),
		"huge shape, short data":     append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1, 28, 28), }"), make([]byte, 24)...),
		"data cut":                   good[:len(good)-1],
		"not a dictionary":           append(npyHeader("[1, 2, 3]"), make([]byte, 24)...),
		"no shape":                   append(npyHeader("{'descr': '<f4', 'fortran_order': False, }"), make([]byte, 24)...),
		"shape not a tuple":          append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': 'x', }"), make([]byte, 24)...),
		"object dtype":               append(npyHeader("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }"), make([]byte, 24)...),
		"structured dtype":           append(npyHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }"), make([]byte, 24)...),
		"version 9":                  append([]byte("\x93NUMPY\x09\x00"), good[8:]...),
		"zero rows":                  npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }"),
	}
}

// A bad .npy file is an error that names it, never a panic or a huge allocation.
func TestBadNPY(t *testing.T) {
	dir := t.TempDir()
	for name, data := range badNPYs() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".npy")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			ds, err := Open(&Spec{Format: "npy", Inputs: map[string]string{"x": path}}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 3}}})
			if err == nil {
				for _, berr := range ds.Batches() {
					if berr != nil {
						err = berr
						break
					}
				}
				ds.Close()
			}
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v; want an error naming %s", err, path)
			}
		})
	}
}

// FuzzParseNPY: parseNPY never panics and never accepts a shape it cannot address.
func FuzzParseNPY(f *testing.F) {
	for _, data := range badNPYs() {
		f.Add(data)
	}
	f.Add(append(npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), make([]byte, 24)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, hdr, err := parseNPY(bytes.NewReader(data), "fuzz.npy")
		if err != nil {
			return
		}
		if hdr <= 0 || hdr > int64(len(data)) || a.dataBytes() < 0 {
			t.Fatalf("header %d bytes of %d, data %d bytes", hdr, len(data), a.dataBytes())
		}
	})
}

// A compressed .npz member that declares many samples is inflated only as far as the
// batches read: limit 64 of 100000 28x28 samples allocates a few MB, not the 313 MB the
// header declares.
func TestNPZCompressedReadsWhatItUses(t *testing.T) {
	if testing.Short() {
		t.Skip("deflates 313 MB")
	}
	const rows = 100000
	path := filepath.Join(t.TempDir(), "big.npz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "x.npy", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(npyHeader(fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 1, 28, 28), }", rows)))
	zero := make([]byte, 784*4*1000)
	for range rows / 1000 {
		w.Write(zero)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ds, err := Open(&Spec{Format: "npz", Inputs: map[string]string{"x": path}, Limit: 64}, []InputInfo{{Name: "x", Type: onnxio.TypeFloat, Shape: []int64{-1, 1, 28, 28}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	n := 0
	for b, err := range ds.Batches() {
		if err != nil {
			t.Fatal(err)
		}
		n += b.N
	}
	runtime.ReadMemStats(&after)
	if n != 64 {
		t.Fatalf("%d samples, want 64", n)
	}
	// 64 samples are 200 KB; the reader's buffer starts at 1 MiB and grows with the reads.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("reading 64 samples allocated %d MB; the declared array is %d MB", alloc>>20, rows*784*4>>20)
	}
}

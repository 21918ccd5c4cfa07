package onnxio

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	bigOnce sync.Once
	bigPath string
	bigErr  error
)

// bigModel writes (once per test binary) a model of about 100 MB of float weights: 24
// MatMul layers of 1024 x 1024.
func bigModel(tb testing.TB) string {
	tb.Helper()
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "onnxpipe-bench")
		if err != nil {
			bigErr = err
			return
		}
		b := NewBuilder(13)
		x := b.Input("x", TypeFloat, []int64{-1, 1024})
		rng := rand.New(rand.NewPCG(1, 1))
		for i := range 24 {
			w := make([]float32, 1024*1024)
			for j := range w {
				w[j] = float32(rng.NormFloat64()) * 0.03
			}
			wn := b.Initializer(fmt.Sprintf("w%d", i), NewTensor([]int64{1024, 1024}, w))
			x = b.Op("MatMul", []string{x, wn})
		}
		b.Output(x, TypeFloat, []int64{-1, 1024})
		m, err := b.Model()
		if err != nil {
			bigErr = err
			return
		}
		bigPath = filepath.Join(dir, "big.onnx")
		bigErr = m.Save(bigPath, SaveOptions{})
	})
	if bigErr != nil {
		tb.Fatal(bigErr)
	}
	return bigPath
}

// BenchmarkLoadSaveVsBytes times onnxio's Load + Save of a ~100 MB model against plain
// os.ReadFile + os.WriteFile of the same bytes, side by side in each iteration, and
// reports the ratio (target: <= 2).
func BenchmarkLoadSaveVsBytes(b *testing.B) {
	src := bigModel(b)
	dir := b.TempDir()
	st, _ := os.Stat(src)
	b.SetBytes(st.Size())
	var tBytes, tModel time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		data, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bytes.onnx"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		data = nil
		t1 := time.Now()
		m, err := Load(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Save(filepath.Join(dir, "model.onnx"), SaveOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		tBytes += t1.Sub(t0)
		tModel += t2.Sub(t1)
	}
	b.ReportMetric(float64(tModel)/float64(tBytes), "x_of_bytes")
	b.ReportMetric(float64(tModel.Milliseconds())/float64(b.N), "ms_onnxio")
	b.ReportMetric(float64(tBytes.Milliseconds())/float64(b.N), "ms_bytes")
}

// BenchmarkLoadSavePeakMemory runs Load + Save of the ~100 MB model in a fresh process
// and reports its peak resident memory divided by the file size (target: <= 2.5).
func BenchmarkLoadSavePeakMemory(b *testing.B) {
	src := bigModel(b)
	st, _ := os.Stat(src)
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPeakHelper$")
		cmd.Env = append(os.Environ(), "ONNXIO_PEAK_SRC="+src, "ONNXIO_PEAK_DST="+filepath.Join(b.TempDir(), "out.onnx"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		var kb int64
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM_kB="); ok {
				kb, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if kb == 0 {
			b.Fatalf("no peak reported: %s", out)
		}
		b.ReportMetric(float64(kb*1024)/float64(st.Size()), "peak_x_file")
		b.ReportMetric(float64(kb)/1024, "peak_MiB")
	}
}

// TestPeakHelper is the child process of BenchmarkLoadSavePeakMemory.
func TestPeakHelper(t *testing.T) {
	src := os.Getenv("ONNXIO_PEAK_SRC")
	if src == "" {
		t.Skip("helper process of BenchmarkLoadSavePeakMemory")
	}
	m, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(os.Getenv("ONNXIO_PEAK_DST"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fmt.Printf("VmHWM_kB=%s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

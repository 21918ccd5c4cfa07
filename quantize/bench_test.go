package quantize

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// resnet18 is testutil.ResNet18 at 224x224.
func resnet18(tb testing.TB, width float64) *onnxio.Model {
	tb.Helper()
	m, err := testutil.ResNet18(width, 224)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// calibrated returns m quantized (static, default options) with a minmax table from a
// few random images.
func calibrated(tb testing.TB, m *onnxio.Model, samples int) (*onnxio.Model, *Result, *calibrate.Table) {
	table := minmaxTable(tb, m, randomFeeds(rand.New(rand.NewPCG(8, 8)), samples, []int64{1, 3, 224, 224}))
	qm := m.Clone()
	res, err := Static(qm, table, DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	return qm, res, table
}

func latencyMS(tb testing.TB, s *ort.Session, feed map[string]*onnxio.Tensor, runs int) float64 {
	for range 3 {
		if _, err := s.Run(feed); err != nil {
			tb.Fatal(err)
		}
	}
	ms := make([]float64, runs)
	for i := range ms {
		t := time.Now()
		if _, err := s.Run(feed); err != nil {
			tb.Fatal(err)
		}
		ms[i] = float64(time.Since(t).Microseconds()) / 1000
	}
	// the median
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j] < ms[j-1]; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	return ms[len(ms)/2]
}

// BenchmarkResNet18Int8 measures, side by side in one run, onnxruntime CPU latency (2
// threads, median) of the float and the int8 QDQ ResNet-18 at batch 1 and 8, the size
// ratio and the int8-kernel ratio. Targets: latency <= 0.5x, size <= 0.27x, ratio >= 0.95.
func BenchmarkResNet18Int8(b *testing.B) {
	fm := resnet18(b, 1)
	qm, res, _ := calibrated(b, fm, 4)
	fb, _ := fm.Bytes()
	qb, _ := qm.Bytes()
	b.ReportMetric(float64(len(qb))/float64(len(fb)), "size_ratio")
	dir := b.TempDir()
	opt := filepath.Join(dir, "opt.onnx")
	s, err := ort.NewSession(qb, ort.Options{Threads: 2, OptimizedModelPath: opt})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	om, err := onnxio.Load(opt)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(FusionReport(res, qm, om).Ratio, "int8_kernel_ratio")
	fs, err := ort.NewSession(fb, ort.Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	qs, err := ort.NewSession(qb, ort.Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer qs.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < b.N; i++ {
		for _, bs := range []int64{1, 8} {
			feed := randomFeed(rng, "input", []int64{bs, 3, 224, 224})
			runs := 20
			if bs == 8 {
				runs = 8
			}
			f := latencyMS(b, fs, feed, runs)
			q := latencyMS(b, qs, feed, runs)
			b.ReportMetric(f, fmt.Sprintf("float_ms_b%d", bs))
			b.ReportMetric(q, fmt.Sprintf("int8_ms_b%d", bs))
			b.ReportMetric(q/f, fmt.Sprintf("latency_ratio_b%d", bs))
		}
	}
}

// BenchmarkRewriteVsLoadSave times Static (without calibration) on a ~100 MB model
// (ResNet-18 at 1.5x width) against onnxio Load + Save of the same model, side by side;
// target <= 2x.
func BenchmarkRewriteVsLoadSave(b *testing.B) {
	fm := resnet18(b, 1.5)
	dir := b.TempDir()
	src := filepath.Join(dir, "wide.onnx")
	if err := fm.Save(src, onnxio.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(src)
	b.ReportMetric(float64(st.Size())/(1<<20), "model_MiB")
	_, _, table := calibrated(b, fm, 1)
	var tRewrite, tIO time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		m, err := onnxio.Load(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Save(filepath.Join(dir, "copy.onnx"), onnxio.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := Static(m, table, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
		tRewrite += time.Since(t1)
		tIO += t1.Sub(t0)
	}
	b.ReportMetric(float64(tRewrite)/float64(tIO), "x_of_load_save")
	b.ReportMetric(float64(tRewrite.Milliseconds())/float64(b.N), "ms_rewrite")
}

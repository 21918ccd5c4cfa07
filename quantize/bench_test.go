package quantize

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// resnet18 builds ResNet-18 as a PyTorch export looks after BatchNormalization folding
// (Conv with bias + Relu), with seeded random weights scaled like Kaiming init; width
// multiplies the channel counts (1 = the real ResNet-18, 11.7 M parameters).
func resnet18(tb testing.TB, width float64) *onnxio.Model {
	tb.Helper()
	b := onnxio.NewBuilder(13)
	rng := rand.New(rand.NewPCG(7, 7))
	ch := func(c int) int { return int(math.Round(float64(c) * width)) }
	weight := func(shape ...int64) string {
		n, fan := int64(1), int64(1)
		for i, d := range shape {
			n *= d
			if i > 0 {
				fan *= d
			}
		}
		w := make([]float32, n)
		std := math.Sqrt(2 / float64(fan))
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
		}
		return b.Initializer(fmt.Sprintf("w%d", len(b.Graph().Initializer)), onnxio.NewTensor(shape, w))
	}
	bias := func(n int64) string {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.1)
		}
		return b.Initializer(fmt.Sprintf("b%d", len(b.Graph().Initializer)), onnxio.NewTensor([]int64{n}, v))
	}
	conv := func(x string, cin, cout, k, stride int, relu bool) string {
		y := b.Op("Conv", []string{x, weight(int64(cout), int64(cin), int64(k), int64(k)), bias(int64(cout))},
			onnxio.AttrInts("kernel_shape", int64(k), int64(k)), onnxio.AttrInts("strides", int64(stride), int64(stride)),
			onnxio.AttrInts("pads", int64(k/2), int64(k/2), int64(k/2), int64(k/2)))
		if relu {
			y = b.Op("Relu", []string{y})
		}
		return y
	}
	x := b.Input("input", onnxio.TypeFloat, []int64{-1, 3, 224, 224}, "batch")
	y := conv(x, 3, ch(64), 7, 2, true)
	y = b.Op("MaxPool", []string{y}, onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("strides", 2, 2), onnxio.AttrInts("pads", 1, 1, 1, 1))
	cin := ch(64)
	for i, c := range []int{64, 128, 256, 512} {
		for blk := 0; blk < 2; blk++ {
			stride := 1
			if i > 0 && blk == 0 {
				stride = 2
			}
			h := conv(y, cin, ch(c), 3, stride, true)
			h = conv(h, ch(c), ch(c), 3, 1, false)
			short := y
			if stride != 1 || cin != ch(c) {
				short = conv(y, cin, ch(c), 1, stride, false)
			}
			y = b.Op("Relu", []string{b.Op("Add", []string{h, short})})
			cin = ch(c)
		}
	}
	y = b.Op("GlobalAveragePool", []string{y})
	y = b.Op("Flatten", []string{y})
	y = b.Op("Gemm", []string{y, weight(1000, int64(cin)), bias(1000)}, onnxio.AttrInt("transB", 1))
	b.Output(y, onnxio.TypeFloat, []int64{-1, 1000}, "batch")
	m, err := b.Model()
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// calibrated returns m quantized (static, default options) with a minmax table from a
// few random images.
func calibrated(tb testing.TB, m *onnxio.Model, samples int) (*onnxio.Model, *Result, rangeTable) {
	rng := rand.New(rand.NewPCG(8, 8))
	var feeds []map[string]*onnxio.Tensor
	for range samples {
		feeds = append(feeds, randomFeed(rng, "input", []int64{1, 3, 224, 224}))
	}
	table := minmaxTable(tb, m, feeds)
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

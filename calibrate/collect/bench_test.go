package collect_test

// The benchmarks behind issue 4's targets (docs/benchmarks.md): calibration time against
// plain inference, and peak memory against the number of samples. They live in the
// external test package because they prepare the fixture with quantize, which imports
// calibrate.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/calibrate/collect"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/quantize"
)

// benchThreads is the onnxruntime intra-op thread count of both sides.
const benchThreads = 2

// benchModel loads a benchmark model, prepared as the pipeline prepares it.
func benchModel(tb testing.TB, name string) *onnxio.Model {
	tb.Helper()
	var m *onnxio.Model
	var err error
	switch name {
	case "resnet_small":
		m, err = onnxio.Load("../../testdata/models/resnet_small.onnx")
	case "resnet18":
		m, err = testutil.ResNet18(1, 224)
	default:
		err = fmt.Errorf("unknown benchmark model %q", name)
	}
	if err != nil {
		tb.Fatal(err)
	}
	eval := func(c *onnxio.Model) (map[string]*onnxio.Tensor, error) {
		data, err := c.Bytes()
		if err != nil {
			return nil, err
		}
		s, err := ort.NewSession(data, ort.Options{})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Run(map[string]*onnxio.Tensor{})
	}
	if _, err := quantize.Prepare(m, quantize.PrepareOptions{FoldBatchNorm: true, FoldConstants: true,
		ConstantsToInitializers: true, MinOpset: 13, Eval: eval}); err != nil {
		tb.Fatal(err)
	}
	return m
}

// benchData is n samples of random data in batches of 16, generated as they are read.
func benchData(tb testing.TB, m *onnxio.Model, n int) *dataset.Dataset {
	tb.Helper()
	ds, err := dataset.Open(&dataset.Spec{Format: "random", Samples: n, Seed: 1, Batch: 16}, dataset.InputsOf(m))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ds.Close() })
	return ds
}

// infer runs the plain float model over ds, as a user of onnxruntime would: one session
// (created inside the timing, as Collect creates its own), every batch.
func infer(tb testing.TB, m *onnxio.Model, ds *dataset.Dataset) {
	data, err := m.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Threads: benchThreads})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	for b, err := range ds.Batches() {
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Run(b.Inputs); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCollectVsInference times calibrating N samples (the activations the
// calibrate stage measures by default before a quantize stage with default options,
// quantize.CalibrationTensorsFor, exposed and folded; the aliases filled in) against N plain forward passes of the same prepared model, side by
// side in each iteration, with the same onnxruntime threads. Target: x_of_inference <= 2
// (aim 1.2).
func BenchmarkCollectVsInference(b *testing.B) {
	for _, tc := range []struct {
		model string
		n     int
	}{{"resnet_small", 512}, {"resnet18", 64}} {
		for _, method := range []calibrate.Method{calibrate.MinMax, calibrate.Percentile} {
			b.Run(fmt.Sprintf("%s/%s/N=%d", tc.model, method, tc.n), func(b *testing.B) {
				m := benchModel(b, tc.model)
				ds := benchData(b, m, tc.n)
				tensors, aliases, err := quantize.CalibrationTensorsFor(m, quantize.DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				var tCal, tInf, cCal, cInf time.Duration
				for b.Loop() {
					t0, c0 := time.Now(), cpuTime(b)
					infer(b, m, ds)
					t1, c1 := time.Now(), cpuTime(b)
					if _, err := collect.Run(context.Background(), m, ds, collect.Options{Method: method, Threads: benchThreads,
						Tensors: tensors, Aliases: aliases}); err != nil {
						b.Fatal(err)
					}
					tInf += t1.Sub(t0)
					tCal += time.Since(t1)
					cInf += c1 - c0
					cCal += cpuTime(b) - c1
				}
				b.ReportMetric(float64(tCal)/float64(tInf), "x_of_inference")
				b.ReportMetric(float64(cCal)/float64(cInf), "cpu_x_of_inference")
				b.ReportMetric(float64(tCal.Milliseconds())/float64(b.N), "ms_calibrate")
				b.ReportMetric(float64(tInf.Milliseconds())/float64(b.N), "ms_inference")
			})
		}
	}
}

// exposeAll is a copy of m with every node output a graph output, as Collect's
// augmented model has them.
func exposeAll(tb testing.TB, m *onnxio.Model) []byte {
	c := &onnxio.Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto)}
	g := c.Graph()
	have := map[string]bool{}
	for _, vi := range append(g.GetInput(), g.GetOutput()...) {
		have[vi.GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, out := range n.GetOutput() {
			if out != "" && !have[out] {
				have[out] = true
				g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(out)})
			}
		}
	}
	data, err := c.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// runAll runs model over ds in one session (created inside the timing) at optimization
// level opt, fetching every output, with Run (reuse false: new Go memory per batch,
// copied from onnxruntime's) or RunInto (reuse true: two sets of buffers used in turn, as
// Collect does).
func runAll(tb testing.TB, model []byte, ds *dataset.Dataset, opt string, reuse bool) {
	s, err := ort.NewSession(model, ort.Options{Threads: benchThreads, Optimization: opt})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	bufs := []*ort.Buffers{s.NewBuffers(), s.NewBuffers()}
	defer bufs[0].Release()
	defer bufs[1].Release()
	i := 0
	for b, err := range ds.Batches() {
		if err != nil {
			tb.Fatal(err)
		}
		if reuse {
			_, err = s.RunInto(bufs[i%2], b.Inputs)
		} else {
			_, err = s.Run(b.Inputs)
		}
		if err != nil {
			tb.Fatal(err)
		}
		i++
	}
}

// BenchmarkExposedOutputs separates what exposing every activation costs onnxruntime
// itself from what calibration adds on top: the augmented model (every node output a
// graph output) run with no folding, against the plain model (optimization "all"), side
// by side in each iteration. The augmented model runs at optimization "all" with its
// outputs written into reused buffers (x_reuse_of_plain) or copied into new Go memory
// per batch (x_copy_of_plain, what Collect did before ort.RunInto), and at "basic" with
// reused buffers (x_basic_of_plain, what Collect does).
func BenchmarkExposedOutputs(b *testing.B) {
	for _, tc := range []struct {
		model string
		n     int
	}{{"resnet_small", 512}, {"resnet18", 64}} {
		b.Run(fmt.Sprintf("%s/N=%d", tc.model, tc.n), func(b *testing.B) {
			m := benchModel(b, tc.model)
			ds := benchData(b, m, tc.n)
			plain, err := m.Bytes()
			if err != nil {
				b.Fatal(err)
			}
			aug := exposeAll(b, m)
			var tPlain, tReuse, tCopy, tBasic, cPlain, cReuse, cCopy, cBasic time.Duration
			for b.Loop() {
				t0, c0 := time.Now(), cpuTime(b)
				runAll(b, plain, ds, "", false)
				t1, c1 := time.Now(), cpuTime(b)
				runAll(b, aug, ds, "", true)
				t2, c2 := time.Now(), cpuTime(b)
				runAll(b, aug, ds, "", false)
				t3, c3 := time.Now(), cpuTime(b)
				runAll(b, aug, ds, "basic", true)
				tPlain += t1.Sub(t0)
				tReuse += t2.Sub(t1)
				tCopy += t3.Sub(t2)
				tBasic += time.Since(t3)
				cPlain += c1 - c0
				cReuse += c2 - c1
				cCopy += c3 - c2
				cBasic += cpuTime(b) - c3
			}
			b.ReportMetric(float64(tReuse)/float64(tPlain), "x_reuse_of_plain")
			b.ReportMetric(float64(tCopy)/float64(tPlain), "x_copy_of_plain")
			b.ReportMetric(float64(tBasic)/float64(tPlain), "x_basic_of_plain")
			b.ReportMetric(float64(cReuse)/float64(cPlain), "cpu_x_reuse_of_plain")
			b.ReportMetric(float64(cCopy)/float64(cPlain), "cpu_x_copy_of_plain")
			b.ReportMetric(float64(cBasic)/float64(cPlain), "cpu_x_basic_of_plain")
			b.ReportMetric(float64(tPlain.Milliseconds())/float64(b.N), "ms_plain")
		})
	}
}

// BenchmarkCollectMemory measures the peak memory of calibrating N = 64 and N = 1024
// samples (percentile: histograms, the method with the most state), each in a fresh
// process so that its peak RSS (VmHWM, which never goes down) is its own. Reported: the
// peak Go heap (Stats.PeakHeapBytes) and peak RSS of each N and their ratios (target:
// within 10%, i.e. ratio <= 1.1).
func BenchmarkCollectMemory(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("VmHWM is read from /proc/self/status")
	}
	for _, model := range []string{"resnet_small", "resnet18"} {
		b.Run(model, func(b *testing.B) {
			for b.Loop() {
				var heap, rss [2]float64
				for i, n := range []int{64, 1024} {
					heap[i], rss[i] = collectInChild(b, model, n)
					b.ReportMetric(heap[i]/(1<<20), fmt.Sprintf("heap_MiB_N%d", n))
					b.ReportMetric(rss[i]/(1<<20), fmt.Sprintf("rss_MiB_N%d", n))
				}
				b.ReportMetric(heap[1]/heap[0], "heap_ratio")
				b.ReportMetric(rss[1]/rss[0], "rss_ratio")
			}
		})
	}
}

// collectInChild runs TestCollectMemoryChild in a new process of this test binary and
// returns the peak heap and peak RSS it printed.
func collectInChild(b *testing.B, model string, n int) (heap, rss float64) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCollectMemoryChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("ONNXPIPE_BENCH_CHILD=%s:%d", model, n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var h, r float64
		if _, err := fmt.Sscanf(strings.TrimSpace(sc.Text()), "peak_heap %g peak_rss %g", &h, &r); err == nil {
			return h, r
		}
	}
	b.Fatalf("child printed no peaks:\n%s", out)
	return 0, 0
}

// TestCollectMemoryChild is BenchmarkCollectMemory's child process; it does nothing
// unless ONNXPIPE_BENCH_CHILD names the model and N.
func TestCollectMemoryChild(t *testing.T) {
	spec := os.Getenv("ONNXPIPE_BENCH_CHILD")
	if spec == "" {
		t.Skip("run by BenchmarkCollectMemory")
	}
	model, ns, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(ns)
	if err != nil {
		t.Fatal(err)
	}
	m := benchModel(t, model)
	ds := benchData(t, m, n)
	st, err := collect.Run(context.Background(), m, ds, collect.Options{Method: calibrate.Percentile, Threads: benchThreads})
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := vmHWM()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("peak_heap %d peak_rss %d\n", st.PeakHeapBytes, hwm)
}

// vmHWM is the process's peak resident set size in bytes.
func vmHWM() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

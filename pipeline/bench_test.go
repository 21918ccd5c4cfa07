package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

func writeBig(b *testing.B, path string) {
	bl := onnxio.NewBuilder(13)
	x := bl.Input("x", onnxio.TypeFloat, []int64{-1, 1024})
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range 24 {
		w := make([]float32, 1024*1024)
		for j := range w {
			w[j] = float32(rng.NormFloat64()) * 0.03
		}
		x = bl.Op("MatMul", []string{x, bl.Initializer(fmt.Sprintf("w%d", i), onnxio.NewTensor([]int64{1024, 1024}, w))})
	}
	bl.Output(x, onnxio.TypeFloat, []int64{-1, 1024})
	m, err := bl.Model()
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Save(path, onnxio.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEngineOverhead runs a config with no stages on a ~100 MB model (load, save,
// onnxruntime open check, hashes, report, manifest) against the bare round trip of
// onnxio.Load + Save + an onnxruntime session, side by side; target ratio <= 1.5.
func BenchmarkEngineOverhead(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "big.onnx")
	writeBig(b, src)
	cfgPath := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfgPath, []byte("model: big.onnx\noutput: out/big.copy.onnx\n"), 0o644)
	cfg, err := pipeline.Load(cfgPath, pipeline.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var tBare, tEngine time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		m, err := onnxio.Load(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := pipeline.OpensInRuntime(m, pipeline.Runtime{}); err != nil {
			b.Fatal(err)
		}
		if err := m.Save(filepath.Join(dir, "bare.onnx"), onnxio.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
		m = nil
		t1 := time.Now()
		jobs, err := cfg.Jobs()
		if err != nil {
			b.Fatal(err)
		}
		res, err := pipeline.Run(context.Background(), cfg, jobs, pipeline.RunOptions{Force: true})
		if err != nil || res.Failed() > 0 {
			b.Fatal(err, res.Outcomes[0].Err)
		}
		tEngine += time.Since(t1)
		tBare += t1.Sub(t0)
	}
	b.ReportMetric(float64(tEngine)/float64(tBare), "x_of_bare")
	b.ReportMetric(float64(tEngine.Milliseconds())/float64(b.N), "ms_engine")
	b.ReportMetric(float64(tBare.Milliseconds())/float64(b.N), "ms_bare")
}

// BenchmarkBatchTinyModels runs a batch of 200 tiny models with parallel 2 and reports
// jobs/s and the CPU time used per wall second (2.0 = both cores busy).
func BenchmarkBatchTinyModels(b *testing.B) {
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	for i := range 200 {
		bl := onnxio.NewBuilder(13)
		x := bl.Input("x", onnxio.TypeFloat, []int64{-1, 8})
		w := make([]float32, 64)
		for j := range w {
			w[j] = float32(i+j) / 100
		}
		y := bl.Op("MatMul", []string{x, bl.Initializer("w", onnxio.NewTensor([]int64{8, 8}, w))})
		y = bl.Op("Relu", []string{y})
		bl.Output(y, onnxio.TypeFloat, []int64{-1, 8})
		m, _ := bl.Model()
		m.Save(filepath.Join(dir, "models", fmt.Sprintf("m%03d.onnx", i)), onnxio.SaveOptions{})
	}
	cfgPath := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfgPath, []byte("models: [models/*.onnx]\noutput: out/{name}.onnx\nparallel: 2\nstages: [prepare]\n"), 0o644)
	cfg, err := pipeline.Load(cfgPath, pipeline.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	jobs, _ := cfg.Jobs()
	var wall, cpu time.Duration
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		t0 := time.Now()
		res, err := pipeline.Run(context.Background(), cfg, jobs, pipeline.RunOptions{Force: true})
		if err != nil || res.Failed() > 0 {
			b.Fatal(err)
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(200*b.N)/wall.Seconds(), "jobs/s")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu_per_wall")
}

package fp16

import (
	"fmt"
	"testing"
	"time"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// BenchmarkCPULatency times the float16 stage's default result (FoldShapes, then
// Convert with float32 inputs and outputs) against the float32 fixture on onnxruntime's
// CPU provider, one intra-op thread, full graph optimization. Each iteration runs the
// float32 model, the float32 model with its shapes folded and the float16 model once
// each, interleaved, so that the three see the same machine load; the metrics are each
// one's mean milliseconds per run and the ratios fp16/fp32 and folded/fp32 (below 1:
// faster than float32).
//
//	go test ./quantize/fp16 -run '^$' -bench CPULatency -benchtime 200x
func BenchmarkCPULatency(b *testing.B) {
	initORT(b)
	for _, f := range fixtures {
		for _, batch := range []int64{1, 16} {
			b.Run(fmt.Sprintf("%s/b%d", f.name, batch), func(b *testing.B) {
				orig := f.load(b)
				folded := orig.Clone()
				if _, err := FoldShapes(folded); err != nil {
					b.Fatal(err)
				}
				half := folded.Clone()
				if _, err := Convert(half, Options{KeepIOTypes: true}); err != nil {
					b.Fatal(err)
				}
				ff := f
				ff.shape = append([]int64{batch}, f.shape[1:]...)
				feeds := map[string]*onnxio.Tensor{"input": ff.input(1)}
				models := []*onnxio.Model{orig, folded, half}
				sessions := make([]*ort.Session, len(models))
				for i, m := range models {
					data, err := m.Bytes()
					if err != nil {
						b.Fatal(err)
					}
					s, err := ort.NewSession(data, ort.Options{Threads: 1, Optimization: "all"})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					sessions[i] = s
					for range 5 { // warm-up
						if _, err := s.Run(feeds); err != nil {
							b.Fatal(err)
						}
					}
				}
				spent := make([]time.Duration, len(sessions))
				b.ResetTimer()
				for b.Loop() {
					for i, s := range sessions {
						st := time.Now()
						if _, err := s.Run(feeds); err != nil {
							b.Fatal(err)
						}
						spent[i] += time.Since(st)
					}
				}
				n := float64(b.N)
				ms := func(d time.Duration) float64 { return float64(d) / 1e6 / n }
				b.ReportMetric(ms(spent[0]), "fp32-ms")
				b.ReportMetric(ms(spent[1]), "folded-ms")
				b.ReportMetric(ms(spent[2]), "fp16-ms")
				b.ReportMetric(float64(spent[2])/float64(spent[0]), "fp16/fp32")
				b.ReportMetric(float64(spent[1])/float64(spent[0]), "folded/fp32")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

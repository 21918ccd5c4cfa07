package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// rangeTable is a minmax calibration computed in the test: every node output is made a
// graph output and its observed range recorded.
type rangeTable map[string][2]float32

func (r rangeTable) Range(name string) (float32, float32, bool) {
	v, ok := r[name]
	return v[0], v[1], ok
}

func session(t testing.TB, m *onnxio.Model, opt string) *ort.Session {
	t.Helper()
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, ort.Options{Optimization: opt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// minmaxTable runs m on the inputs with every float value exposed and returns their ranges.
func minmaxTable(t testing.TB, m *onnxio.Model, feeds []map[string]*onnxio.Tensor) rangeTable {
	t.Helper()
	aug := m.Clone()
	g := aug.Graph()
	have := map[string]bool{}
	for _, vi := range g.GetOutput() {
		have[vi.GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" && !have[o] {
				have[o] = true
				g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(o)})
			}
		}
	}
	for _, vi := range g.GetInput() {
		if !have[vi.GetName()] {
			have[vi.GetName()] = true
		}
	}
	s := session(t, aug, "none")
	table := rangeTable{}
	for _, feed := range feeds {
		outs, err := s.Run(feed)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range feed {
			outs[name] = v
		}
		for name, v := range outs {
			if v.Type != onnxio.TypeFloat {
				continue
			}
			f := v.Data.([]float32)
			lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
			for _, x := range f {
				lo, hi = min(lo, x), max(hi, x)
			}
			old, ok := table[name]
			if ok {
				lo, hi = min(lo, old[0]), max(hi, old[1])
			}
			table[name] = [2]float32{lo, hi}
		}
	}
	return table
}

func randomFeed(rng *rand.Rand, name string, shape []int64) map[string]*onnxio.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return map[string]*onnxio.Tensor{name: onnxio.NewTensor(shape, v)}
}

// sqnr is 10 log10(Σref² / Σ(ref-cand)²) in dB.
func sqnr(ref, cand []float32) float64 {
	var s, e float64
	for i := range ref {
		d := float64(ref[i] - cand[i])
		s += float64(ref[i]) * float64(ref[i])
		e += d * d
	}
	if e == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s/e)
}

package quantize

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/calibrate/collect"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// collectTable calibrates m on feeds with the tensors and aliases given (none: every
// activation).
func collectTable(t *testing.T, m *onnxio.Model, feeds []map[string]*onnxio.Tensor, method calibrate.Method, opt string, tensors []string, aliases map[string]string) *calibrate.Table {
	t.Helper()
	spec, err := testutil.NPYDataset(t.TempDir(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Open(spec, dataset.InputsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	st, err := collect.Run(context.Background(), m, ds, collect.Options{Method: method, Percentile: 99.99,
		Optimization: opt, Tensors: tensors, Aliases: aliases})
	if err != nil {
		t.Fatal(err)
	}
	return st.Table
}

// quantizeAlike quantizes a copy of m with opts from each of the tables a and b, and
// reports whether the two QDQ models are the same, with what each quantization did.
func quantizeAlike(t *testing.T, m *onnxio.Model, a, b Ranges, opts Options) (ra, rb *Result, same bool) {
	t.Helper()
	ma, mb := m.Clone(), m.Clone()
	ra, err := Static(ma, a, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rb, err = Static(mb, b, opts); err != nil {
		t.Fatal(err)
	}
	return ra, rb, proto.Equal(ma.Proto, mb.Proto)
}

// optionTables calibrates m on feeds with minmax twice: every activation (full), and
// only what CalibrationTensorsFor(m, o) lists (forOpts, of n values).
func optionTables(t *testing.T, m *onnxio.Model, feeds []map[string]*onnxio.Tensor, o Options) (full, forOpts *calibrate.Table, n int) {
	t.Helper()
	only, aliases, err := CalibrationTensorsFor(m, o)
	if err != nil {
		t.Fatal(err)
	}
	return collectTable(t, m, feeds, calibrate.MinMax, "all", nil, nil),
		collectTable(t, m, feeds, calibrate.MinMax, "all", only, aliases), len(only)
}

// A table measured on CalibrationTensors' values quantizes every fixture exactly as a
// table of every activation does: the same QDQ model (nodes, scales, zero points,
// weights), for every profile and activation symmetry, with nodes excluded (what
// auto_exclude does), and the aliases carry their source's range. The tables are measured
// without onnxruntime's graph optimizations: with them, which outputs a session exposes
// decides which nodes it fuses, and a fused kernel may round a value 1 ulp apart (seen on
// AVX2 without VNNI), which moves a scale by 1 ulp and makes the models differ in bits.
func TestCalibrationTensorsQuantizeAlike(t *testing.T) {
	for _, tc := range []struct {
		path  string
		shape []int64
	}{
		{"../testdata/models/mnist_cnn.onnx", []int64{4, 1, 28, 28}},
		{"../testdata/models/resnet_small.onnx", []int64{4, 3, 32, 32}},
		{"../testdata/models/tiny_transformer.onnx", []int64{4, 16, 32}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			m := prepared(t, tc.path)
			feeds := randomFeeds(rand.New(rand.NewPCG(3, 4)), 3, tc.shape)
			all, _ := CalibrationTensors(m, true)
			expose, aliases := CalibrationTensors(m, false)
			t.Logf("%d activations: %d measured, %d aliases", len(all)+len(aliases), len(expose), len(aliases))
			// Every node output quantize could be asked to exclude, for the exclusion runs.
			var names []string
			for _, n := range m.Graph().GetNode() {
				if _, ok := rules[n.GetOpType()]; ok {
					names = append(names, n.GetName())
				}
			}
			sym := DefaultOptions()
			sym.ActivationType, sym.ActivationSymmetric = onnxio.TypeInt8, true
			trt := DefaultOptions()
			trt.Profile = ProfileTensorRT
			excl := DefaultOptions()
			for i := 0; i < len(names); i += 2 {
				excl.ExcludeNodes = append(excl.ExcludeNodes, names[i])
			}
			excl2 := DefaultOptions()
			for i := 1; i < len(names); i += 2 {
				excl2.ExcludeNodes = append(excl2.ExcludeNodes, names[i])
			}
			noRelu := DefaultOptions()
			for _, op := range SupportedOps() {
				if op != "Relu" && op != "Clip" {
					noRelu.OpTypes = append(noRelu.OpTypes, op)
				}
			}
			for _, method := range []calibrate.Method{calibrate.MinMax, calibrate.Percentile} {
				full := collectTable(t, m, feeds, method, "none", nil, nil)
				reduced := collectTable(t, m, feeds, method, "none", expose, aliases)
				for alias, src := range aliases {
					a, s := reduced.Tensors[alias], full.Tensors[alias]
					if a == nil && s == nil {
						continue // not float (a shape)
					}
					if a == nil || s == nil || a.AliasOf != src || a.Min != s.Min || a.Max != s.Max || a.Count != s.Count {
						t.Errorf("%s: alias %q of %q: %+v, measured %+v", method, alias, src, a, s)
					}
				}
				for name, opts := range map[string]Options{"cpu": DefaultOptions(), "symmetric": sym, "tensorrt": trt,
					"exclude even": excl, "exclude odd": excl2, "no relu": noRelu} {
					ra, rb, same := quantizeAlike(t, m, full, reduced, opts)
					if !same {
						t.Errorf("%s, %s: the QDQ models differ (%d and %d activations quantized)", method, name, ra.ActivationsQuantized, rb.ActivationsQuantized)
					}
					// The set for these options alone quantizes alike too, and is part
					// of the set for any options.
					only, oa, err := CalibrationTensorsFor(m, opts)
					if err != nil {
						t.Fatal(err)
					}
					for _, n := range only {
						if !slices.Contains(expose, n) {
							t.Errorf("%s: %q is read with these options but not with any", name, n)
						}
					}
					if method == calibrate.MinMax {
						t.Logf("%s: %d of %d values measured", name, len(only), len(expose))
					}
					own := collectTable(t, m, feeds, method, "none", only, oa)
					_, rc, same := quantizeAlike(t, m, full, own, opts)
					if !same {
						for _, n := range only {
							if a, b := full.Tensors[n], own.Tensors[n]; a != nil && b != nil && (a.Min != b.Min || a.Max != b.Max) {
								t.Logf("%s: %q measured [%g, %g] with every activation exposed, [%g, %g] with these", name, n, a.Min, a.Max, b.Min, b.Max)
							}
						}
						t.Errorf("%s, %s: the QDQ model from the table for these options differs (%d and %d activations quantized, %d and %d folded)",
							method, name, ra.ActivationsQuantized, rc.ActivationsQuantized, ra.ActivationsFolded, rc.ActivationsFolded)
					}
				}
			}
		})
	}
}

// A table made for the quantize stage's options serves auto_exclude's retries too: they
// quantize again with more nodes excluded (a node, and with a Relu or Clip the node it
// folds into), and must give what a table of every activation gives.
func TestCalibrationTensorsForServesExclusions(t *testing.T) {
	for _, tc := range []struct {
		path  string
		shape []int64
		every int // try every n-th node
	}{
		{"../testdata/models/mnist_cnn.onnx", []int64{4, 1, 28, 28}, 1},
		{"../testdata/models/resnet_small.onnx", []int64{4, 3, 32, 32}, 1},
		{"../testdata/models/tiny_transformer.onnx", []int64{4, 16, 32}, 7},
	} {
		t.Run(tc.path, func(t *testing.T) {
			m := prepared(t, tc.path)
			o := DefaultOptions()
			before := m.Clone()
			full, reduced, measured := optionTables(t, m, randomFeeds(rand.New(rand.NewPCG(5, 6)), 3, tc.shape), o)
			if !proto.Equal(before.Proto, m.Proto) {
				t.Fatal("CalibrationTensorsFor changed the model it planned on")
			}
			ix := onnxio.NewIndex(m.Graph())
			tried := 0
			for i, n := range m.Graph().GetNode() {
				if _, ok := rules[n.GetOpType()]; !ok || i%tc.every != 0 {
					continue
				}
				ex := o
				ex.ExcludeNodes = []string{n.GetName()}
				if op := n.GetOpType(); op == "Relu" || op == "Clip" {
					if p := ix.Producer[n.GetInput()[0]]; p != nil {
						ex.ExcludeNodes = append(ex.ExcludeNodes, p.GetName())
					}
				}
				if ra, rb, same := quantizeAlike(t, m, full, reduced, ex); !same {
					t.Errorf("excluding %v: the models differ (%d and %d activations quantized)", ex.ExcludeNodes, ra.ActivationsQuantized, rb.ActivationsQuantized)
				}
				tried++
			}
			t.Logf("%d exclusions tried, %d values measured", tried, measured)
		})
	}
}

// A MaxPool read only by an Add: with the MaxPool quantized the Add takes its parameters
// and needs no range of it; a retry with the MaxPool in float does. The table for the
// options holds it all the same.
func TestCalibrationTensorsForMoveThenOwn(t *testing.T) {
	b := onnxio.NewBuilder(17)
	x := b.Input("input", onnxio.TypeFloat, []int64{-1, 2, 8, 8})
	w := make([]float32, 4*2*3*3)
	for i := range w {
		w[i] = float32(i%7-3) / 8
	}
	wn := b.Initializer("W", onnxio.NewTensor([]int64{4, 2, 3, 3}, w))
	c := b.Op("Conv", []string{x, wn}, onnxio.AttrInts("pads", 1, 1, 1, 1))
	r := b.Op("Relu", []string{c})
	p := b.Op("MaxPool", []string{r}, onnxio.AttrInts("kernel_shape", 2, 2), onnxio.AttrInts("strides", 2, 2))
	y := b.Op("Add", []string{p, p})
	b.Output(y, onnxio.TypeFloat, []int64{-1, 4, 4, 4})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(m, PrepareOptions{}); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	full, reduced, _ := optionTables(t, m, randomFeeds(rand.New(rand.NewPCG(7, 8)), 2, []int64{2, 2, 8, 8}), o)
	var pool string
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "MaxPool" {
			pool = n.GetName()
		}
	}
	ex := o
	ex.ExcludeNodes = []string{pool}
	if ra, rb, same := quantizeAlike(t, m, full, reduced, ex); !same {
		t.Errorf("MaxPool excluded: the models differ (%v quantized with every range, %v with the table for the options)", ra.Quantized, rb.Quantized)
	}
}

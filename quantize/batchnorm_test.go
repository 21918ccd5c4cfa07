package quantize

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// bnCase builds a model x[1,3,5,5] -> producer -> BatchNormalization -> y, changed by edit.
type bnCase struct {
	name string
	// gemm builds Gemm on x[2,6] instead of Conv on x[1,3,5,5]; transpose ConvTranspose.
	gemm, transpose bool
	edit            func(b *onnxio.Builder, g *onnxpb.GraphProto)
	folded          int // BatchNormalizations Prepare must fold
}

func floats(rng *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return v
}

// buildBN builds the case's model: 4 output channels, random trained-looking parameters.
func buildBN(t *testing.T, c bnCase) *onnxio.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	b := onnxio.NewBuilder(17)
	const ch = 4
	var x, prod string
	switch {
	case c.gemm:
		x = b.Input("x", onnxio.TypeFloat, []int64{2, 6})
		w := b.Initializer("W", onnxio.NewTensor([]int64{ch, 6}, floats(rng, ch*6, -1, 1)))
		bias := b.Initializer("B", onnxio.NewTensor([]int64{ch}, floats(rng, ch, -1, 1)))
		prod = b.Op("Gemm", []string{x, w, bias}, onnxio.AttrInt("transB", 1), onnxio.AttrFloat("beta", 0.5))
	case c.transpose:
		x = b.Input("x", onnxio.TypeFloat, []int64{1, 3, 5, 5})
		w := b.Initializer("W", onnxio.NewTensor([]int64{3, ch, 3, 3}, floats(rng, 3*ch*9, -1, 1)))
		prod = b.Op("ConvTranspose", []string{x, w})
	default:
		x = b.Input("x", onnxio.TypeFloat, []int64{1, 3, 5, 5})
		w := b.Initializer("W", onnxio.NewTensor([]int64{ch, 3, 3, 3}, floats(rng, ch*27, -1, 1)))
		bias := b.Initializer("B", onnxio.NewTensor([]int64{ch}, floats(rng, ch, -1, 1)))
		prod = b.Op("Conv", []string{x, w, bias})
	}
	scale := b.Initializer("gamma", onnxio.NewTensor([]int64{ch}, floats(rng, ch, 0.5, 2)))
	beta := b.Initializer("beta", onnxio.NewTensor([]int64{ch}, floats(rng, ch, -1, 1)))
	mean := b.Initializer("mean", onnxio.NewTensor([]int64{ch}, floats(rng, ch, -1, 1)))
	variance := b.Initializer("var", onnxio.NewTensor([]int64{ch}, floats(rng, ch, 0.1, 3)))
	y := b.Op("BatchNormalization", []string{prod, scale, beta, mean, variance}, onnxio.AttrFloat("epsilon", 1e-3))
	b.Output(y, onnxio.TypeFloat, nil)
	if c.edit != nil {
		c.edit(b, b.Graph())
	}
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func findNode(g *onnxpb.GraphProto, op string) *onnxpb.NodeProto {
	for _, n := range g.GetNode() {
		if n.GetOpType() == op {
			return n
		}
	}
	return nil
}

func setInitializer(g *onnxpb.GraphProto, name string, t *onnxio.Tensor) {
	tp, err := onnxio.EncodeTensor(name, t)
	if err != nil {
		panic(err)
	}
	replaceInitializer(g, tp)
}

// Prepare's BatchNormalization folding is exact or not done: on every case the prepared
// model computes what the original computes (onnxruntime on both), and bad parameters
// leave the graph alone without a panic.
func TestFoldBatchNormsExactOrUntouched(t *testing.T) {
	cases := []bnCase{
		{name: "conv with bias", folded: 1},
		{name: "conv without bias", folded: 1, edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			n := findNode(g, "Conv")
			n.Input = n.Input[:2]
		}},
		{name: "gemm transB beta 0.5", gemm: true, folded: 1},
		{name: "conv transpose", transpose: true, folded: 1},
		{name: "bias through Dropout", edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			n := findNode(g, "Conv")
			d := b.Op("Dropout", []string{"B"})
			n.Input[2] = d
			g.Node = append([]*onnxpb.NodeProto{g.Node[len(g.Node)-1]}, g.Node[:len(g.Node)-1]...)
		}},
		{name: "bias is also a graph input", edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			g.Input = append(g.Input, onnxio.ValueInfo("B", onnxio.TypeFloat, []int64{4}))
		}},
		{name: "weight is also a graph input", edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			g.Input = append(g.Input, onnxio.ValueInfo("W", onnxio.TypeFloat, []int64{4, 3, 3, 3}))
		}},
		{name: "weight from a Constant node", folded: 1, edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			var wt *onnxpb.TensorProto
			for i, tp := range g.Initializer {
				if tp.GetName() == "W" {
					wt = tp
					g.Initializer = append(g.Initializer[:i], g.Initializer[i+1:]...)
					break
				}
			}
			c := &onnxpb.NodeProto{OpType: proto.String("Constant"), Output: []string{"W"}, Name: proto.String("Wconst"),
				Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: wt}}}
			g.Node = append([]*onnxpb.NodeProto{c}, g.Node...)
		}},
		{name: "weight shared by two convs", folded: 1, edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			other := b.Op("Conv", []string{"x", "W"})
			b.Output(other, onnxio.TypeFloat, nil)
		}},
		{name: "variance below -epsilon", edit: func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "var", onnxio.NewTensor([]int64{4}, []float32{1, -0.5, 1, 1}))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := buildBN(t, c)
			shape := []int64{1, 3, 5, 5}
			if c.gemm {
				shape = []int64{2, 6}
			}
			feed := randomFeed(rand.New(rand.NewPCG(3, 4)), "x", shape)
			want := runAll(t, m, feed)
			rep, err := Prepare(m, PrepareOptions{FoldBatchNorm: true})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if rep.BatchNormsFolded != c.folded {
				t.Errorf("folded %d BatchNormalizations, want %d (notes %q)", rep.BatchNormsFolded, c.folded, rep.Notes)
			}
			got := runAll(t, m, feed)
			for name, w := range want {
				if db := sqnr(w, got[name]); db < 100 {
					t.Errorf("output %s after Prepare is %.1f dB from the original; a fold must be exact", name, db)
				}
			}
		})
	}
}

// runAll runs m on feed with onnxruntime and returns every graph output.
func runAll(t *testing.T, m *onnxio.Model, feed map[string]*onnxio.Tensor) map[string][]float32 {
	t.Helper()
	s := session(t, m, "none")
	out, err := s.Run(feed)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for name, v := range out {
		f, err := v.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		res[name] = f
	}
	return res
}

// Malformed BatchNormalizations and producers that onnxruntime would reject: Prepare
// leaves them alone (or says why) and never panics.
func TestFoldBatchNormsMalformed(t *testing.T) {
	cases := map[string]func(b *onnxio.Builder, g *onnxpb.GraphProto){
		"scale shorter than channels": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "gamma", onnxio.NewTensor([]int64{2}, []float32{1, 1}))
		},
		"mean shorter than scale": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "mean", onnxio.NewTensor([]int64{1}, []float32{0}))
		},
		"empty parameters": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			for _, n := range []string{"gamma", "beta", "mean", "var"} {
				setInitializer(g, n, onnxio.NewTensor([]int64{0}, []float32{}))
			}
		},
		"two-dimensional scale": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "gamma", onnxio.NewTensor([]int64{2, 2}, []float32{1, 1, 1, 1}))
		},
		"conv without a weight": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			findNode(g, "Conv").Input = []string{"x"}
		},
		"conv with an empty weight name": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			findNode(g, "Conv").Input[1] = ""
		},
		"conv without outputs": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			findNode(g, "Conv").Output = nil
		},
		"batchnorm without outputs": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			findNode(g, "BatchNormalization").Output = nil
		},
		"batchnorm with three inputs": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			n := findNode(g, "BatchNormalization")
			n.Input = n.Input[:3]
		},
		"weight of one dimension": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "W", onnxio.NewTensor([]int64{4}, []float32{1, 2, 3, 4}))
		},
		"weight whose data is short": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			for _, tp := range g.Initializer {
				if tp.GetName() == "W" {
					tp.RawData = tp.RawData[:8]
				}
			}
		},
		"training mode": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			onnxio.SetAttr(findNode(g, "BatchNormalization"), onnxio.AttrInt("training_mode", 1))
		},
		"bias of the wrong length": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "B", onnxio.NewTensor([]int64{1}, []float32{0.3}))
		},
		"int64 weight": func(b *onnxio.Builder, g *onnxpb.GraphProto) {
			setInitializer(g, "W", onnxio.NewTensor([]int64{4, 3, 3, 3}, make([]int64, 108)))
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			m := buildBN(t, bnCase{edit: edit})
			before, err := proto.Marshal(m.Proto)
			if err != nil {
				t.Fatal(err)
			}
			n, _, err := foldBatchNorms(m.Graph())
			if err != nil {
				t.Fatalf("foldBatchNorms: %v", err)
			}
			after, _ := proto.Marshal(m.Proto)
			if n != 0 || string(before) != string(after) {
				t.Errorf("folded %d; the malformed graph was changed", n)
			}
		})
	}
}

package onnxio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// quantModel builds small quantized models the way onnxruntime's quantizer writes them.
func quantModel(t testing.TB, format string) *Model {
	t.Helper()
	b := NewBuilder(21)
	x := b.Input("x", TypeFloat, []int64{1, 8})
	scale := b.Initializer("scale", NewTensor([]int64{}, []float32{0.05}))
	zp := b.Initializer("zp", NewTensor([]int64{}, []int8{0}))
	wq := b.Initializer("W_q", NewTensor([]int64{8, 4}, make([]int8, 32)))
	var y string
	switch format {
	case "qdq": // activations Q->DQ, weights DQ(initializer)
		xq := b.Op("QuantizeLinear", []string{x, scale, zp})
		xdq := b.Op("DequantizeLinear", []string{xq, scale, zp})
		w := b.Op("DequantizeLinear", []string{wq, scale, zp})
		y = b.Op("MatMul", []string{xdq, w})
	case "weight-only qdq": // int4 weights, DQ only
		w4 := b.Initializer("W4", &Tensor{Type: TypeInt4, Shape: []int64{8, 4}, Data: make([]int8, 32)})
		w := b.Op("DequantizeLinear", []string{w4, scale, zp})
		y = b.Op("MatMul", []string{x, w})
	case "com.microsoft qdq":
		xq := b.Op("QuantizeLinear", []string{x, scale, zp})
		xdq := b.Op("DequantizeLinear", []string{xq, scale, zp})
		for _, n := range b.Graph().Node {
			n.Domain = proto.String("com.microsoft")
		}
		y = b.Op("Relu", []string{xdq})
	case "qoperator": // Q at the input, QLinear ops, DQ at the output
		xq := b.Op("QuantizeLinear", []string{x, scale, zp})
		yq := b.Op("QLinearMatMul", []string{xq, scale, zp, wq, scale, zp, scale, zp})
		yq = b.Op("DequantizeLinear", []string{yq, scale, zp})
		r := b.Op("Softmax", []string{yq}) // an op left in float between quantized ones
		rq := b.Op("QuantizeLinear", []string{r, scale, zp})
		sum := b.Op("QLinearAdd", []string{rq, scale, zp, rq, scale, zp, scale, zp})
		for _, n := range b.Graph().Node {
			if n.GetOpType() == "QLinearAdd" {
				n.Domain = proto.String("com.microsoft")
			}
		}
		y = b.Op("DequantizeLinear", []string{sum, scale, zp})
	case "dynamic":
		outs := b.Node("DynamicQuantizeLinear", []string{x}, 3)
		mm := b.Op("MatMulInteger", []string{outs[0], wq, outs[2]})
		f := b.Op("Cast", []string{mm}, AttrInt("to", int64(TypeFloat)))
		y = b.Op("Mul", []string{f, outs[1]})
	case "qdq+qoperator": // a QLinear op and a separate QDQ weight
		xq := b.Op("QuantizeLinear", []string{x, scale, zp})
		yq := b.Op("QLinearMatMul", []string{xq, scale, zp, wq, scale, zp, scale, zp})
		yf := b.Op("DequantizeLinear", []string{yq, scale, zp})
		w := b.Op("DequantizeLinear", []string{wq, scale, zp})
		y = b.Op("Add", []string{yf, w})
	default:
		t.Fatalf("unknown format %s", format)
	}
	b.Output(y, TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if format == "com.microsoft qdq" || format == "qoperator" {
		m.SetOpset("com.microsoft", 1)
	}
	checkOK(t, m, format)
	return m
}

func TestSummarizeQuantization(t *testing.T) {
	for _, test := range []struct {
		format string
		want   string
	}{
		{"qdq", "qdq"},
		{"weight-only qdq", "qdq"},
		{"com.microsoft qdq", "qdq"},
		{"qoperator", "qoperator"},
		{"dynamic", "dynamic"},
		{"qdq+qoperator", "qdq+qoperator"},
	} {
		s := Summarize(quantModel(t, test.format))
		if s.Quantization != test.want {
			t.Errorf("%s: Quantization = %q, want %q (ops %v)", test.format, s.Quantization, test.want, s.Ops)
		}
	}
	if s := Summarize(mlpModel(t)); s.Quantization != "none" {
		t.Errorf("float model: Quantization = %q", s.Quantization)
	}
	// A QDQ pair inside an If branch counts.
	m := ifModel(t)
	then := Attr(findNode(t, m.Graph(), "if"), "then_branch").G
	then.Initializer = append(then.Initializer, mustEncode(t, "wq_sub", NewTensor([]int64{2}, []int8{1, 2})))
	then.Node = append(then.Node, node("sub_dq", "DequantizeLinear", []string{"wq_sub", "w"}, []string{"sub_w"}))
	m.Graph().Node = append(m.Graph().Node, node("", "QLinearAdd", nil, nil))
	if s := Summarize(m); s.Quantization != "qdq+qoperator" {
		t.Errorf("QDQ in a subgraph: Quantization = %q", s.Quantization)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(mlpModel(t))
	want := &Summary{
		SchemaVersion: 1,
		IRVersion:     8,
		Producer:      "onnxpipe",
		Opsets:        []OpsetSummary{{"ai.onnx", 17}},
		Inputs:        []ValueSummary{{Name: "x", Type: "float", Shape: []any{"batch", int64(8)}}},
		Outputs:       []ValueSummary{{Name: "MatMul_1_out0", Type: "float", Shape: []any{"batch", int64(4)}}},
		Nodes:         4,
		Ops:           map[string]int{"MatMul": 2, "Add": 1, "Relu": 1},
		Params: ParamSummary{Count: 128 + 16 + 64, Bytes: 4 * (128 + 16 + 64), Tensors: 3,
			ByType: map[string]Count{"float": {Elements: 208, Bytes: 832}}},
		ExternalData: []string{},
		Quantization: "none",
	}
	if !reflect.DeepEqual(s, want) {
		got, _ := json.MarshalIndent(s, "", " ")
		exp, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("Summarize(mlp) =\n%s\nwant\n%s", got, exp)
	}
	if got := s.SortedOps(); !reflect.DeepEqual(got, []OpCount{{"MatMul", 2}, {"Add", 1}, {"Relu", 1}}) {
		t.Errorf("SortedOps = %v", got)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("json: %v", err)
	}
}

// TestSummarizeConstantWeights: weights held by Constant nodes (value tensors and the
// value_floats/value_ints forms) count as parameters.
func TestSummarizeConstantWeights(t *testing.T) {
	b := NewBuilder(17)
	x := b.Input("x", TypeFloat, []int64{1, 4})
	w := b.Op("Constant", nil, AttrTensor("value", mustEncode(t, "w", ramp(4, 4))))
	bias := b.Op("Constant", nil, AttrFloats("value_floats", 1, 2, 3, 4))
	shape := b.Op("Constant", nil, AttrInts("value_ints", 1, 4))
	alpha := b.Op("Constant", nil, AttrFloat("value_float", 0.5))
	h := b.Op("MatMul", []string{x, w})
	h = b.Op("Add", []string{h, bias})
	h = b.Op("Mul", []string{h, alpha})
	y := b.Op("Reshape", []string{h, shape})
	b.Output(y, TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	checkOK(t, m, "constant weights")
	s := Summarize(m)
	if s.Params.InConstantNodes != 4 || s.Params.Tensors != 4 {
		t.Errorf("InConstantNodes = %d, Tensors = %d, want 4 and 4", s.Params.InConstantNodes, s.Params.Tensors)
	}
	wantByType := map[string]Count{"float": {Elements: 16 + 4 + 1, Bytes: 84}, "int64": {Elements: 2, Bytes: 16}}
	if !reflect.DeepEqual(s.Params.ByType, wantByType) || s.Params.Count != 23 || s.Params.Bytes != 100 {
		t.Errorf("Params = %+v, want by type %v", s.Params, wantByType)
	}
	if s.Ops["Constant"] != 4 || s.Nodes != 8 {
		t.Errorf("Ops = %v, Nodes = %d", s.Ops, s.Nodes)
	}
}

func TestSummarizeSubgraphs(t *testing.T) {
	s := Summarize(ifModel(t))
	if s.Nodes != 6 || s.SubgraphNodes != 3 {
		t.Errorf("Nodes = %d, SubgraphNodes = %d, want 6 and 3", s.Nodes, s.SubgraphNodes)
	}
	wantOps := map[string]int{"Relu": 2, "If": 1, "Add": 1, "Constant": 1, "Neg": 1}
	if !reflect.DeepEqual(s.Ops, wantOps) {
		t.Errorf("Ops = %v, want %v", s.Ops, wantOps)
	}
	// w (2 floats) in the main graph, e_c (2 floats) in the else branch's Constant.
	if s.Params.Count != 4 || s.Params.Tensors != 2 || s.Params.InConstantNodes != 1 {
		t.Errorf("Params = %+v", s.Params)
	}
	if got := s.Inputs; len(got) != 2 || got[0].Type != "bool" || !reflect.DeepEqual(got[0].Shape, []any{}) {
		t.Errorf("Inputs = %+v", got)
	}

	// Nested Loop/If, custom-domain ops.
	m := wrapGraph(nestedGraph(t))
	m.Graph().Node = append(m.Graph().Node, &onnxpb.NodeProto{OpType: proto.String("FusedGemm"), Domain: proto.String("com.microsoft")})
	s = Summarize(m)
	if s.Nodes != 7 || s.SubgraphNodes != 3 || s.Ops["com.microsoft.FusedGemm"] != 1 || s.Ops["If"] != 1 || s.Ops["Loop"] != 1 {
		t.Errorf("nested: Nodes=%d SubgraphNodes=%d Ops=%v", s.Nodes, s.SubgraphNodes, s.Ops)
	}
	// w in the main graph and branch_b's initializer "outer" (a float each), trip (int64).
	if s.Params.Tensors != 3 || s.Params.ByType["float"].Elements != 2 || s.Params.ByType["int64"].Elements != 1 {
		t.Errorf("nested: Params = %+v", s.Params)
	}
}

func TestSummarizeFloat16(t *testing.T) {
	for _, test := range []struct {
		name         string
		half, single int // elements
		want         bool
	}{
		{"all float16", 100, 0, true},
		{"mostly float16", 100, 20, true},
		{"mostly float32", 10, 100, false},
		{"half and half", 50, 50, false},
		{"float32 only", 0, 100, false},
	} {
		b := NewBuilder(17)
		x := b.Input("x", TypeFloat16, []int64{1})
		y := x
		if test.half > 0 {
			w := b.Initializer("h", NewTensor([]int64{int64(test.half)}, make([]float16.Float16, test.half)))
			y = b.Op("Add", []string{y, w})
		}
		if test.single > 0 {
			w := b.Initializer("f", NewTensor([]int64{int64(test.single)}, make([]float32, test.single)))
			y = b.Op("Add", []string{y, w})
		}
		b.Output(y, TypeFloat16, nil)
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		if got := Summarize(m).Float16; got != test.want {
			t.Errorf("%s: Float16 = %v, want %v", test.name, got, test.want)
		}
	}
	// bfloat16 counts as half precision too.
	b := NewBuilder(17)
	w := b.Initializer("bf", NewTensor([]int64{4}, make([]BFloat16, 4)))
	b.Output(w, TypeBFloat16, nil)
	m, _ := b.Model()
	if s := Summarize(m); !s.Float16 || s.Params.ByType["bfloat16"].Bytes != 8 {
		t.Errorf("bfloat16: Float16=%v Params=%+v", s.Float16, s.Params)
	}
}

func TestSummarizeDetails(t *testing.T) {
	m := mlpModel(t)
	m.Proto.ProducerVersion = proto.String("1.2")
	m.Proto.MetadataProps = []*onnxpb.StringStringEntryProto{{Key: proto.String("author"), Value: proto.String("me")}}
	m.SetOpset("com.microsoft", 1)
	g := m.Graph()
	// An old-style input that is an initializer is left out; odd types are described.
	g.Input = append(g.Input,
		ValueInfo("W1", TypeFloat, []int64{8, 16}),
		&onnxpb.ValueInfoProto{Name: proto.String("seq"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{}}}},
		&onnxpb.ValueInfoProto{Name: proto.String("untyped")},
		&onnxpb.ValueInfoProto{Name: proto.String("unknown_dim"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(TypeInt64)),
			Shape:    &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{{}}},
		}}}},
	)
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := m.Save(path, SaveOptions{External: ExternalAlways, Threshold: 100}); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(loaded)
	st, _ := os.Stat(path)
	if s.Path != path || s.FileBytes != st.Size() || s.ProducerVersion != "1.2" || len(s.ExternalData) != 1 || !strings.HasPrefix(s.ExternalData[0], "m.onnx.") || !strings.HasSuffix(s.ExternalData[0], ".data") {
		t.Errorf("Path=%q FileBytes=%d ProducerVersion=%q ExternalData=%q", s.Path, s.FileBytes, s.ProducerVersion, s.ExternalData)
	}
	if !reflect.DeepEqual(s.Metadata, map[string]string{"author": "me"}) {
		t.Errorf("Metadata = %v", s.Metadata)
	}
	if !reflect.DeepEqual(s.Opsets, []OpsetSummary{{"ai.onnx", 17}, {"com.microsoft", 1}}) {
		t.Errorf("Opsets = %v", s.Opsets)
	}
	wantInputs := []ValueSummary{
		{Name: "x", Type: "float", Shape: []any{"batch", int64(8)}},
		{Name: "seq", Type: "non-tensor"},
		{Name: "untyped", Type: "unknown"},
		{Name: "unknown_dim", Type: "int64", Shape: []any{nil}},
	}
	if !reflect.DeepEqual(s.Inputs, wantInputs) {
		t.Errorf("Inputs = %#v", s.Inputs)
	}
	// An empty model does not crash Summarize.
	empty := Summarize(&Model{Proto: &onnxpb.ModelProto{}})
	if empty.Nodes != 0 || empty.Quantization != "none" || empty.Inputs == nil {
		t.Errorf("empty model: %+v", empty)
	}
}

// TestRealModels loads the exported fixtures in testdata/models (committed), checks
// them, summarizes them, and round-trips them through external data.
func TestRealModels(t *testing.T) {
	for _, test := range []struct {
		file         string
		nodes        int
		initializers int
	}{
		{"mnist_cnn.onnx", 12, 16},
		{"resnet_small.onnx", 31, 47},
		{"tiny_transformer.onnx", 222, -1},
	} {
		path := filepath.Join("..", "testdata", "models", test.file)
		m, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", test.file, err)
		}
		checkOK(t, m, test.file)
		s := Summarize(m)
		if s.Nodes != test.nodes || (test.initializers >= 0 && len(m.Graph().Initializer) != test.initializers) {
			t.Errorf("%s: %d nodes, %d initializers", test.file, s.Nodes, len(m.Graph().Initializer))
		}
		if s.Quantization != "none" || s.Float16 || len(s.Inputs) != 1 || s.Inputs[0].Shape[0] != "batch" {
			t.Errorf("%s: summary %+v", test.file, s)
		}
		sorted := append([]*onnxpb.NodeProto(nil), m.Graph().Node...)
		if err := TopoSort(m.Graph()); err != nil || !reflect.DeepEqual(sorted, m.Graph().Node) {
			t.Errorf("%s: TopoSort changed an exported (sorted) graph: %v", test.file, err)
		}
		before := proto.Clone(m.Proto)
		out := filepath.Join(t.TempDir(), test.file)
		if err := m.Save(out, SaveOptions{External: ExternalAlways, Threshold: 256}); err != nil {
			t.Fatal(err)
		}
		back, err := Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(back.Proto, before) || !proto.Equal(m.Proto, before) {
			t.Errorf("%s: external data round trip changed the model", test.file)
		}
	}
}

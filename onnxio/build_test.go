package onnxio

import (
	"reflect"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestBuilder(t *testing.T) {
	b := NewBuilder(13)
	x := b.Input("Relu", TypeFloat, []int64{-1, 3}, "batch") // a name the Builder would invent
	r := b.Op("Relu", []string{x})
	outs := b.Node("Split", []string{r}, 3, AttrInt("axis", 1))
	b.Output(outs[2], TypeFloat, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	checkOK(t, m, "builder model")
	if m.Opset("") != 13 || m.Proto.GetIrVersion() != 8 || m.Graph() != b.Graph() {
		t.Errorf("model header: opset %d, IR %d", m.Opset(""), m.Proto.GetIrVersion())
	}
	g := b.Graph()
	if got := nodeNames(g.Node); !reflect.DeepEqual(got, []string{"Relu_1", "Split"}) {
		t.Errorf("node names %q", got)
	}
	if r != "Relu_1_out0" || !reflect.DeepEqual(outs, []string{"Split_out0", "Split_out1", "Split_out2"}) {
		t.Errorf("outputs %q %q", r, outs)
	}
	if a := Attr(g.Node[1], "axis"); a == nil || a.GetI() != 1 || a.GetType() != onnxpb.AttributeProto_INT {
		t.Errorf("axis attribute %v", a)
	}
	if Attr(g.Node[1], "nope") != nil {
		t.Errorf("Attr of a missing attribute is not nil")
	}
	SetAttr(g.Node[1], AttrInt("axis", 0))
	SetAttr(g.Node[1], AttrInts("split", 1, 1, 1))
	if len(g.Node[1].Attribute) != 2 || Attr(g.Node[1], "axis").GetI() != 0 {
		t.Errorf("after SetAttr: %v", g.Node[1].Attribute)
	}
	dims, names, ok := ValueShape(g.Input[0])
	if !ok || !reflect.DeepEqual(dims, []int64{-1, 3}) || !reflect.DeepEqual(names, []string{"batch", ""}) {
		t.Errorf("input shape %v %q", dims, names)
	}
	for _, test := range []struct {
		a    *onnxpb.AttributeProto
		want onnxpb.AttributeProto_AttributeType
	}{
		{AttrFloat("f", 1), onnxpb.AttributeProto_FLOAT},
		{AttrFloats("fs", 1, 2), onnxpb.AttributeProto_FLOATS},
		{AttrString("s", "v"), onnxpb.AttributeProto_STRING},
		{AttrTensor("t", floatInit(t, "t", 1)), onnxpb.AttributeProto_TENSOR},
		{AttrGraph("g", &onnxpb.GraphProto{}), onnxpb.AttributeProto_GRAPH},
		{AttrInts("is", 1), onnxpb.AttributeProto_INTS},
	} {
		if test.a.GetType() != test.want {
			t.Errorf("attribute %s has type %v, want %v", test.a.GetName(), test.a.GetType(), test.want)
		}
	}
}

func TestBuilderInitializerError(t *testing.T) {
	b := NewBuilder(17)
	b.Initializer("ok", ramp(2))
	b.Initializer("bad", NewTensor([]int64{3}, []float32{1}))
	b.Initializer("later_bad", NewTensor([]int64{-1}, []float32{}))
	_, err := b.Model()
	wantErr(t, "bad initializer", err, `"bad"`, "1 elements for shape [3]")
	for i, tp := range b.Graph().Initializer {
		if tp == nil {
			t.Errorf("initializer %d is nil", i)
		}
	}
}

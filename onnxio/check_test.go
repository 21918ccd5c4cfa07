package onnxio

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestCheckValid(t *testing.T) {
	for _, test := range []struct {
		name string
		m    *Model
	}{
		{"mlp", mlpModel(t)},
		{"if", ifModel(t)},
		{"loop with nested if", wrapGraph(nestedGraph(t))},
		{"shared weights", func() *Model {
			m := wrapGraph(sharedWeightsGraph(t))
			m.SetOpset("com.example", 1)
			return m
		}()},
		{"external test model", externalTestModel(t)},
	} {
		checkOK(t, test.m, test.name)
	}
	// IR < 4: initializers are listed among the graph inputs too.
	m := mlpModel(t)
	m.Proto.IrVersion = proto.Int64(3)
	for _, tp := range m.Graph().Initializer {
		m.Graph().Input = append(m.Graph().Input, ValueInfo(tp.GetName(), TypeFloat, tp.GetDims()))
	}
	checkOK(t, m, "initializers listed as inputs")
	// A custom domain that is imported, and "ai.onnx" spelled out.
	m = mlpModel(t)
	m.SetOpset("com.microsoft", 1)
	m.Graph().Node[0].Domain = proto.String("ai.onnx")
	m.Graph().Node[1].Domain = proto.String("com.microsoft")
	checkOK(t, m, "imported custom domain")
}

// TestCheckProblems breaks one rule at a time, on models built with the Builder and by
// hand; each must be reported, naming the node and the value involved.
func TestCheckProblems(t *testing.T) {
	for _, test := range []struct {
		name  string
		model func(t *testing.T) *Model
		want  []string // substrings of one problem
	}{
		{
			name:  "no ir_version",
			model: func(t *testing.T) *Model { m := mlpModel(t); m.Proto.IrVersion = nil; return m },
			want:  []string{"ir_version is missing"},
		},
		{
			name:  "no default opset",
			model: func(t *testing.T) *Model { m := mlpModel(t); m.Proto.OpsetImport = nil; return m },
			want:  []string{"no opset_import for the default ONNX domain"},
		},
		{
			name: "domain imported twice",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("ai.onnx"), Version: proto.Int64(13)})
				return m
			},
			want: []string{`opset domain "ai.onnx" is imported twice`},
		},
		{
			name: "custom domain not imported",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Node[2].Domain = proto.String("com.microsoft")
				return m
			},
			want: []string{`node "Relu" (Relu)`, `domain "com.microsoft" is not in opset_import`},
		},
		{
			name: "dangling input (Builder)",
			model: func(t *testing.T) *Model {
				b := NewBuilder(17)
				x := b.Input("x", TypeFloat, []int64{2})
				y := b.Op("Add", []string{x, "missing_bias"})
				b.Output(y, TypeFloat, []int64{2})
				m, err := b.Model()
				if err != nil {
					t.Fatal(err)
				}
				return m
			},
			want: []string{`node "Add" (Add)`, `input "missing_bias" is not defined before use`},
		},
		{
			name: "input used before it is produced",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				g := m.Graph()
				g.Node[0], g.Node[1] = g.Node[1], g.Node[0]
				return m
			},
			want: []string{`node "Add" (Add)`, `input "MatMul_out0" is not defined before use (node "MatMul" (MatMul) produces it later)`},
		},
		{
			name: "nodes out of order",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				g := m.Graph()
				g.Node[0], g.Node[1] = g.Node[1], g.Node[0]
				return m
			},
			want: []string{"graph: nodes are not in topological order"},
		},
		{
			name: "cycle",
			model: func(t *testing.T) *Model {
				return wrapGraph(&onnxpb.GraphProto{
					Input: []*onnxpb.ValueInfoProto{ValueInfo("x", TypeFloat, nil)},
					Node: []*onnxpb.NodeProto{
						node("a", "Add", []string{"x", "b_out"}, []string{"a_out"}),
						node("b", "Relu", []string{"a_out"}, []string{"b_out"}),
					},
					Output: []*onnxpb.ValueInfoProto{ValueInfo("b_out", TypeFloat, nil)},
				})
			},
			want: []string{`node "a" (Add)`, `input "b_out" is not defined before use (node "b" (Relu) produces it later)`},
		},
		{
			name: "cycle is named",
			model: func(t *testing.T) *Model {
				return wrapGraph(&onnxpb.GraphProto{
					Input: []*onnxpb.ValueInfoProto{ValueInfo("x", TypeFloat, nil)},
					Node: []*onnxpb.NodeProto{
						node("a", "Add", []string{"x", "b_out"}, []string{"a_out"}),
						node("b", "Relu", []string{"a_out"}, []string{"b_out"}),
					},
					Output: []*onnxpb.ValueInfoProto{ValueInfo("b_out", TypeFloat, nil)},
				})
			},
			want: []string{`graph: graph has a cycle through nodes "a" (Add), "b" (Relu)`},
		},
		{
			name: "value produced twice",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				g := m.Graph()
				g.Node[2].Output[0] = g.Node[1].Output[0]
				g.Node[3].Input[0] = g.Node[1].Output[0]
				return m
			},
			want: []string{`value "Add_out0" is defined twice`, `output of node "Relu" (Relu)`},
		},
		{
			name: "node output shadows an initializer",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Node[2].Output[0] = "W2"
				m.Graph().Node[3].Input[0] = "W2"
				return m
			},
			want: []string{`value "W2" is defined twice`},
		},
		{
			name: "graph input and initializer differ only by listing",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Input = append(m.Graph().Input, ValueInfo("x", TypeFloat, nil))
				return m
			},
			want: []string{`value "x" is defined twice (graph input)`},
		},
		{
			name: "node name used twice",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Node[1].Name = proto.String("MatMul")
				return m
			},
			want: []string{`node name "MatMul" is used twice`},
		},
		{
			name: "graph output not produced",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Output = append(m.Graph().Output, ValueInfo("ghost", TypeFloat, nil))
				return m
			},
			want: []string{`output "ghost" is not produced by any node`},
		},
		{
			name: "initializer shorter than its shape",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				w := m.Graph().Initializer[0]
				w.RawData = w.RawData[:100]
				return m
			},
			want: []string{`initializer "W1"`, "raw_data has 100 bytes", "needs 512"},
		},
		{
			name: "typed initializer with too many values",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer[1] = &onnxpb.TensorProto{Name: proto.String("B1"), DataType: proto.Int32(int32(TypeFloat)), Dims: []int64{16}, FloatData: make([]float32, 17)}
				return m
			},
			want: []string{`initializer "B1"`, "has 17 values", "needs 16"},
		},
		{
			name: "initializer without a data type",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer[1].DataType = nil
				return m
			},
			want: []string{`initializer "B1"`, "data_type is missing"},
		},
		{
			name: "initializer with an unknown data type",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer[1].DataType = proto.Int32(77)
				return m
			},
			want: []string{`initializer "B1"`, "unknown data_type 77"},
		},
		{
			name: "initializer with a negative dimension",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer[1].Dims = []int64{-16}
				return m
			},
			want: []string{`initializer "B1"`, "negative dimension"},
		},
		{
			name: "unnamed initializer",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer = append(m.Graph().Initializer, floatInit(t, "", 1))
				return m
			},
			want: []string{"an initializer has no name"},
		},
		{
			name: "unnamed graph input",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Input = append(m.Graph().Input, &onnxpb.ValueInfoProto{})
				return m
			},
			want: []string{"a graph input has no name"},
		},
		{
			name: "Constant node tensor shorter than its shape",
			model: func(t *testing.T) *Model {
				m := wrapGraph(sharedWeightsGraph(t))
				c := findNode(t, m.Graph(), "c_tensor")
				c.Attribute[0].T.RawData = c.Attribute[0].T.RawData[:4]
				return m
			},
			want: []string{`node "c_tensor" (Constant) attribute "value"`, "raw_data has 4 bytes"},
		},
		{
			name: "string tensor with raw_data",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer = append(m.Graph().Initializer, &onnxpb.TensorProto{Name: proto.String("S"), DataType: proto.Int32(int32(TypeString)), Dims: []int64{1}, RawData: []byte("a")})
				return m
			},
			want: []string{`initializer "S"`, "string tensor with raw_data"},
		},
		{
			name: "external tensor with the wrong length",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				w := m.Graph().Initializer[0]
				w.RawData = nil
				w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
				w.ExternalData = []*onnxpb.StringStringEntryProto{
					{Key: proto.String("location"), Value: proto.String("w.bin")},
					{Key: proto.String("length"), Value: proto.String("12")},
				}
				return m
			},
			want: []string{`initializer "W1"`, "external data length 12", "needs 512 bytes"},
		},
		{
			name: "node without op_type",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Node[2].OpType = nil
				return m
			},
			want: []string{`node "Relu" ()`, "no op_type"},
		},
		{
			name:  "no graph",
			model: func(t *testing.T) *Model { m := mlpModel(t); m.Proto.Graph = nil; return m },
			want:  []string{"graph: missing"},
		},
		{
			name: "If branch reads an undefined value",
			model: func(t *testing.T) *Model {
				m := ifModel(t)
				then := Attr(findNode(t, m.Graph(), "if"), "then_branch").G
				then.Node[0].Input[1] = "nowhere"
				return m
			},
			want: []string{`node "if" (If) attribute "then_branch"`, `node "then_add" (Add)`, `input "nowhere" is not defined before use`},
		},
		{
			name: "If branch reads a value produced after the If",
			model: func(t *testing.T) *Model {
				m := ifModel(t)
				then := Attr(findNode(t, m.Graph(), "if"), "then_branch").G
				then.Node[0].Input[1] = "y"
				return m
			},
			want: []string{`node "then_add" (Add)`, `input "y" is not defined before use`},
		},
		{
			name: "subgraph output not produced",
			model: func(t *testing.T) *Model {
				m := ifModel(t)
				then := Attr(findNode(t, m.Graph(), "if"), "then_branch").G
				then.Output[0].Name = proto.String("never")
				return m
			},
			want: []string{`attribute "then_branch": output "never" is not produced by any node`},
		},
		{
			name: "subgraph node output shadows an outer value",
			model: func(t *testing.T) *Model {
				m := ifModel(t)
				els := Attr(findNode(t, m.Graph(), "if"), "else_branch").G
				els.Node[0].Output[0] = "h"
				els.Node[1].Input[0] = "h"
				return m
			},
			want: []string{`node "else_const" (Constant)`, `output "h" shadows a value of an enclosing graph`},
		},
		{
			name: "attribute given twice",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				n := m.Graph().Node[2]
				n.Attribute = append(n.Attribute, AttrInt("axis", 1), AttrInt("axis", 2))
				return m
			},
			want: []string{`node "Relu" (Relu)`, `attribute "axis" appears twice`},
		},
		{
			name: "subgraph node name used twice",
			model: func(t *testing.T) *Model {
				m := ifModel(t)
				els := Attr(findNode(t, m.Graph(), "if"), "else_branch").G
				els.Node[1].Name = els.Node[0].Name
				return m
			},
			want: []string{`node name "else_const" is used twice`},
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			m := test.model(t)
			err := Check(m)
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("Check = %v, want a *CheckError", err)
			}
			found := false
			for _, p := range ce.Problems {
				ok := true
				for _, s := range test.want {
					if !strings.Contains(p, s) {
						ok = false
					}
				}
				found = found || ok
			}
			if !found {
				t.Errorf("no problem mentions all of %q; problems:\n%s", test.want, strings.Join(ce.Problems, "\n"))
			}
			if !strings.HasPrefix(err.Error(), "invalid model: ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestCheckErrorMessage(t *testing.T) {
	var probs []string
	for i := range 13 {
		probs = append(probs, "p"+string(rune('a'+i)))
	}
	msg := (&CheckError{Problems: probs}).Error()
	if !strings.Contains(msg, "pa; pb") || !strings.Contains(msg, "pj (and 3 more)") || strings.Contains(msg, "pk") {
		t.Errorf("CheckError message %q", msg)
	}
}

func TestCheckTensorSize(t *testing.T) {
	ext := func(length string) *onnxpb.TensorProto {
		tp := &onnxpb.TensorProto{Name: proto.String("E"), DataType: proto.Int32(int32(TypeInt4)), Dims: []int64{3},
			DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
			ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("e.bin")}}}
		if length != "" {
			tp.ExternalData = append(tp.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String("length"), Value: proto.String(length)})
		}
		return tp
	}
	for _, test := range []struct {
		name string
		tp   *onnxpb.TensorProto
		want string // "" for no error
	}{
		{"external, right length", ext("2"), ""},
		{"external, no length", ext(""), ""},
		{"external, wrong length", ext("3"), "external data length 3"},
		{"external, bad length", ext("x"), "is not a number"},
		{"int4 typed", &onnxpb.TensorProto{DataType: proto.Int32(int32(TypeInt4)), Dims: []int64{3}, Int32Data: []int32{1, 2}}, ""},
		{"int4 typed, unpacked", &onnxpb.TensorProto{DataType: proto.Int32(int32(TypeInt4)), Dims: []int64{3}, Int32Data: []int32{1, 2, 3}}, "has 3 values"},
		{"uint32 in uint64_data", &onnxpb.TensorProto{DataType: proto.Int32(int32(TypeUint32)), Dims: []int64{1}, Uint64Data: []uint64{1}}, ""},
		{"complex128", &onnxpb.TensorProto{DataType: proto.Int32(int32(TypeComplex128)), Dims: []int64{1}, DoubleData: []float64{1}}, "has 1 values"},
		{"huge shape, empty raw", &onnxpb.TensorProto{DataType: proto.Int32(int32(TypeFloat)), Dims: []int64{1 << 62}, RawData: []byte{}}, "raw_data has 0 bytes"},
	} {
		err := CheckTensorSize(test.tp)
		if test.want == "" {
			if err != nil {
				t.Errorf("%s: %v", test.name, err)
			}
			continue
		}
		wantErr(t, test.name, err, test.want)
	}
}

// TestCheckArity: a node of a common op with too few or too many inputs or outputs, or
// an empty name where one is required, is a problem naming the node; optional inputs
// and outputs left out (trailing empty names) are fine. So is a Constant without exactly
// one value. (A Relu without inputs went through and panicked in the quantizer.)
func TestCheckArity(t *testing.T) {
	relu := func(edit func(n *onnxpb.NodeProto)) *Model {
		m := mlpModel(t)
		for _, n := range m.Graph().Node {
			if n.GetOpType() == "Relu" {
				edit(n)
			}
		}
		return m
	}
	for _, test := range []struct {
		name string
		m    *Model
		want string // "" for valid
	}{
		{"no inputs", relu(func(n *onnxpb.NodeProto) { n.Input = nil }), `node "Relu" (Relu): Relu takes 1 input, the node has 0`},
		{"two inputs", relu(func(n *onnxpb.NodeProto) { n.Input = append(n.Input, n.Input[0]) }), "Relu takes 1 input, the node has 2"},
		{"empty input", relu(func(n *onnxpb.NodeProto) { n.Input[0] = "" }), "Relu takes 1 input, the node has 0"},
		{"no outputs", relu(func(n *onnxpb.NodeProto) { n.Output = nil }), "Relu takes 1 output, the node has 0"},
		{"trailing empty output", relu(func(n *onnxpb.NodeProto) { n.Output = append(n.Output, "") }), ""},
		{"unlisted op", relu(func(n *onnxpb.NodeProto) { n.OpType = proto.String("Custom"); n.Input = nil }), ""},
		{"custom domain", func() *Model {
			m := relu(func(n *onnxpb.NodeProto) { n.Domain = proto.String("com.example"); n.Input = nil })
			m.SetOpset("com.example", 1)
			return m
		}(), ""},
	} {
		err := Check(test.m)
		if test.want == "" {
			if err != nil {
				t.Errorf("%s: %v", test.name, err)
			}
			continue
		}
		wantErr(t, test.name, err, test.want)
	}

	constant := func(attrs ...*onnxpb.AttributeProto) *Model {
		b := NewBuilder(13)
		x := b.Input("x", TypeFloat, []int64{2})
		b.Graph().Node = append(b.Graph().Node, &onnxpb.NodeProto{Name: proto.String("c"), OpType: proto.String("Constant"), Output: []string{"c_out"}, Attribute: attrs})
		b.Output(b.Op("Add", []string{x, "c_out"}), TypeFloat, []int64{2})
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := Check(constant(AttrFloat("value_float", 1))); err != nil {
		t.Errorf("one value: %v", err)
	}
	wantErr(t, "no value", Check(constant()), `node "c" (Constant): a Constant needs exactly one of the attributes`)
	two := constant(AttrFloat("value_float", 1), AttrFloats("value_floats", 1, 2))
	wantErr(t, "two values", Check(two), "it has 2 [value_float value_floats]")
	if _, ok := ConstantNodeTensor(two.Graph().Node[0]); ok {
		t.Error("ConstantNodeTensor took one of two values")
	}
}

// TestCheckIOElemTypes: a main-graph input or output whose tensor type has no element
// type, or an unknown one, is a problem naming it (onnxruntime only said "Invalid tensor
// data type 0").
func TestCheckIOElemTypes(t *testing.T) {
	m := mlpModel(t)
	m.Graph().Input[0].Type.GetTensorType().ElemType = proto.Int32(0)
	wantErr(t, "undefined input", Check(m), `graph: input "`+m.Graph().Input[0].GetName()+`": its tensor type has no element type`)
	m = mlpModel(t)
	m.Graph().Output[0].Type.GetTensorType().ElemType = proto.Int32(99)
	wantErr(t, "unknown output", Check(m), `graph: output "`+m.Graph().Output[0].GetName()+`": unknown element type 99`)
}

// TestCheckFunctionCall: a call of a local function with more inputs or outputs than the
// function has names the node and the function (onnxruntime said "actuals.size() <=
// formals.size() was false").
func TestCheckFunctionCall(t *testing.T) {
	m := mlpModel(t)
	m.SetOpset("local", 1)
	m.Proto.Functions = []*onnxpb.FunctionProto{{Name: proto.String("MyRelu"), Domain: proto.String("local"), Input: []string{"x"}, Output: []string{"y"},
		Node:        []*onnxpb.NodeProto{{OpType: proto.String("Relu"), Input: []string{"x"}, Output: []string{"y"}}},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}}}}
	var call *onnxpb.NodeProto
	for _, n := range m.Graph().Node {
		if n.GetOpType() == "Relu" {
			call = n
		}
	}
	call.OpType, call.Domain = proto.String("MyRelu"), proto.String("local")
	checkOK(t, m, "a call of a local function")
	call.Input = append(call.Input, call.Input[0])
	wantErr(t, "two inputs", Check(m), `(MyRelu): local function local.MyRelu takes 1 input, the node passes 2`)
	call.Input = call.Input[:1]
	call.Output = append(call.Output, "extra")
	wantErr(t, "two outputs", Check(m), `local function local.MyRelu has 1 output, the node takes 2`)
}

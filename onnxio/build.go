package onnxio

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Builder assembles a model in code: for tests, and for graphs onnxpipe generates
// (student architectures, augmented calibration models). Names passed in are used as
// given; Node invents unique output names.
type Builder struct {
	g     *onnxpb.GraphProto
	mp    *onnxpb.ModelProto
	namer *Namer
	err   error
}

// NewBuilder starts a model importing version opset of the default ONNX domain, with IR
// version 8 (understood by onnxruntime 1.10 and later).
func NewBuilder(opset int64) *Builder {
	g := &onnxpb.GraphProto{Name: proto.String("main")}
	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(8),
		ProducerName:    proto.String("onnxpipe"),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph:           g,
		ProducerVersion: proto.String(""),
	}
	return &Builder{g: g, mp: mp, namer: NewNamer(g)}
}

// Graph returns the graph being built.
func (b *Builder) Graph() *onnxpb.GraphProto { return b.g }

// ValueInfo makes a tensor ValueInfoProto; a negative dimension becomes a symbolic one
// named dimNames[i] if given, else "N".
func ValueInfo(name string, dt DataType, shape []int64, dimNames ...string) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}
	if shape != nil {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for i, d := range shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			if d >= 0 {
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
			} else {
				p := "N"
				if i < len(dimNames) && dimNames[i] != "" {
					p = dimNames[i]
				}
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, dim)
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}

// Input adds a graph input and returns its name.
func (b *Builder) Input(name string, dt DataType, shape []int64, dimNames ...string) string {
	b.namer.used[name] = true
	b.g.Input = append(b.g.Input, ValueInfo(name, dt, shape, dimNames...))
	return name
}

// Output marks a value as a graph output, with its type and shape (shape may be nil).
func (b *Builder) Output(name string, dt DataType, shape []int64, dimNames ...string) {
	b.g.Output = append(b.g.Output, ValueInfo(name, dt, shape, dimNames...))
}

// Initializer adds a constant tensor and returns its name.
func (b *Builder) Initializer(name string, t *Tensor) string {
	tp, err := EncodeTensor(name, t)
	b.namer.used[name] = true
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return name // Model reports the error; the graph gets no nil initializer
	}
	b.g.Initializer = append(b.g.Initializer, tp)
	return name
}

// Node appends a node of opType with the given inputs and attributes and returns the
// names of its nOut outputs (fresh names derived from opType).
func (b *Builder) Node(opType string, inputs []string, nOut int, attrs ...*onnxpb.AttributeProto) []string {
	name := b.namer.Name(opType)
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = b.namer.Name(fmt.Sprintf("%s_out%d", name, i))
	}
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		Name: proto.String(name), OpType: proto.String(opType),
		Input: inputs, Output: outs, Attribute: attrs,
	})
	return outs
}

// Op is Node for the common single-output case.
func (b *Builder) Op(opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.Node(opType, inputs, 1, attrs...)[0]
}

// Model returns the built model, or the first error met (a tensor that did not encode).
func (b *Builder) Model() (*Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	return &Model{Proto: b.mp}, nil
}

// AttrInt makes an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrInts makes an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrFloat makes a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrFloats makes a FLOATS attribute.
func AttrFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: v}
}

// AttrString makes a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrTensor makes a TENSOR attribute (the `value` of a Constant node).
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// AttrGraph makes a GRAPH attribute (If branches, Loop bodies).
func AttrGraph(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

// Attr returns n's attribute called name, or nil.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// SetAttr replaces or adds an attribute of n.
func SetAttr(n *onnxpb.NodeProto, a *onnxpb.AttributeProto) {
	for i, old := range n.Attribute {
		if old.GetName() == a.GetName() {
			n.Attribute[i] = a
			return
		}
	}
	n.Attribute = append(n.Attribute, a)
}

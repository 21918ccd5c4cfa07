package ort

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// fetch says how one of the model's outputs comes back from onnxruntime.
//
// onnxruntime_go v1.27 copies an output it allocated into a new Go-backed tensor, and
// that copy fails for outputs of rank 0 (it refuses empty shapes) and for float16 and
// bfloat16 outputs (it copies one byte per element). Such outputs are fetched through
// nodes appended to a copy of the model: an exact Cast to float32, and for rank 0 or
// unknown rank a Reshape to one dimension plus a Shape node that gives the real shape.
type fetch struct {
	info  ValueInfo
	value string          // the onnxruntime output that holds the data
	shape string          // the onnxruntime output that holds the shape; "" when value has it
	cast  onnxio.DataType // TypeFloat16 or TypeBFloat16 when value holds float32 to narrow; 0 otherwise
}

// needsHelp reports whether output info cannot be fetched as it is.
func needsHelp(info ValueInfo) (cast, flatten bool) {
	cast = info.Type == onnxio.TypeFloat16 || info.Type == onnxio.TypeBFloat16
	flatten = len(info.Shape) == 0
	return cast, flatten
}

// rewriter collects nodes, outputs and inputs to append to a model's graph, with names
// that clash with none of the model's. The additions are encoded as a second ModelProto
// whose graph protobuf merges into the model's (repeated fields concatenate), so the
// model itself is never decoded and re-encoded.
type rewriter struct {
	g     *onnxpb.GraphProto // the additions
	opset int64
	used  map[string]bool
	minus string // the name of the constant [-1] that Reshape flattens with
}

func newRewriter(mi *modelInfo) *rewriter {
	used := make(map[string]bool, len(mi.names))
	for n := range mi.names {
		used[n] = true
	}
	return &rewriter{g: &onnxpb.GraphProto{}, opset: mi.opset, used: used}
}

// apply returns a copy of model with the additions appended.
func (r *rewriter) apply(model []byte) ([]byte, error) {
	extra, err := proto.Marshal(&onnxpb.ModelProto{Graph: r.g})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(model)+len(extra))
	return append(append(out, model...), extra...), nil
}

// fresh returns a new unique name based on base.
func (r *rewriter) fresh(base string) string {
	name := "onnxpipe_ort/" + base
	for i := 1; r.used[name]; i++ {
		name = fmt.Sprintf("onnxpipe_ort/%s_%d", base, i)
	}
	r.used[name] = true
	return name
}

// node appends an op on inputs, named after the output it serves, and returns its output.
func (r *rewriter) node(output, op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := r.fresh(output + "/" + op)
	r.g.Node = append(r.g.Node, &onnxpb.NodeProto{
		Name:      proto.String(out),
		OpType:    proto.String(op),
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

func (r *rewriter) output(name string, dt onnxio.DataType) {
	r.g.Output = append(r.g.Output, &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}}},
	})
}

// add appends what output info needs and returns how to fetch it.
func (r *rewriter) add(info ValueInfo) (fetch, error) {
	cast, flatten := needsHelp(info)
	f := fetch{info: info, value: info.Name}
	if cast {
		need := int64(6) // Cast with an integer "to"
		if info.Type == onnxio.TypeBFloat16 {
			need = 13
		}
		if r.opset < need {
			return f, fmt.Errorf("output %q is %s, which onnxruntime_go can only fetch through a Cast from opset %d, but the model imports opset %d: upgrade the model's opset", info.Name, info.Type, need, r.opset)
		}
		f.value = r.node(info.Name, "Cast", []string{f.value}, &onnxpb.AttributeProto{
			Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnxio.TypeFloat))})
		f.cast = info.Type
	}
	dt := info.Type
	if cast {
		dt = onnxio.TypeFloat
	}
	if flatten {
		if r.opset < 5 {
			return f, fmt.Errorf("output %q has rank 0 or no declared shape, which onnxruntime_go can only fetch through Reshape from opset 5, but the model imports opset %d: upgrade the model's opset", info.Name, r.opset)
		}
		if r.minus == "" {
			r.minus = r.fresh("minus_one")
			r.g.Node = append(r.g.Node, &onnxpb.NodeProto{
				Name:   proto.String(r.minus),
				OpType: proto.String("Constant"),
				Output: []string{r.minus},
				Attribute: []*onnxpb.AttributeProto{{
					Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(),
					T: &onnxpb.TensorProto{Dims: []int64{1}, DataType: proto.Int32(int32(onnxio.TypeInt64)), Int64Data: []int64{-1}},
				}},
			})
		}
		f.value = r.node(info.Name, "Reshape", []string{f.value, r.minus})
		f.shape = r.node(info.Name, "Shape", []string{info.Name})
		r.output(f.shape, onnxio.TypeInt64)
	}
	if f.value != info.Name {
		r.output(f.value, dt)
	}
	return f, nil
}

// dummyInput adds an unused input to a model that has none, because onnxruntime_go cannot
// run a session without inputs; it returns the input's name.
func (r *rewriter) dummyInput() string {
	name := r.fresh("unused_input")
	r.g.Input = append(r.g.Input, &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxio.TypeBool)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}}}},
		}}},
	})
	return name
}

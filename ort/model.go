package ort

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// modelInfo is what the bridge reads from a model's protobuf itself. scanModel gets it
// without decoding initializers, so a large model is not copied into Go memory.
type modelInfo struct {
	opset    int64                             // the default domain's opset version
	hasGraph bool                              // the model has a graph
	values   map[string]*onnxpb.ValueInfoProto // graph inputs and outputs by name
	inputs   []string                          // graph inputs, in order
	outputs  []string                          // graph outputs, in order
	names    map[string]bool                   // every value and node name in the graph, subgraphs included
	fed      map[string]bool                   // the main graph's inputs and initializers
	inits    map[string]bool                   // the main graph's initializers
}

// Field numbers in onnx.proto.
const (
	modelOpsetImport   = 8
	modelGraph         = 7
	graphNode          = 1
	graphInitializer   = 5
	graphInput         = 11
	graphOutput        = 12
	graphValueInfo     = 13
	graphSparseInit    = 15
	tensorName         = 8
	sparseTensorValues = 1
)

var errWire = errors.New("malformed protobuf")

// eachBytesField calls f with every length-delimited field of message b.
func eachBytesField(b []byte, f func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errWire
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}

func scanModel(b []byte) (*modelInfo, error) {
	mi := &modelInfo{values: map[string]*onnxpb.ValueInfoProto{}, names: map[string]bool{}, fed: map[string]bool{}, inits: map[string]bool{}}
	err := eachBytesField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case modelOpsetImport:
			var op onnxpb.OperatorSetIdProto
			if err := proto.Unmarshal(v, &op); err != nil {
				return err
			}
			if d := op.GetDomain(); d == "" || d == "ai.onnx" {
				mi.opset = op.GetVersion()
			}
		case modelGraph:
			mi.hasGraph = true
			return mi.scanGraph(v)
		}
		return nil
	})
	return mi, err
}

func (mi *modelInfo) scanGraph(b []byte) error {
	return eachBytesField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case graphNode:
			var n onnxpb.NodeProto
			if err := proto.Unmarshal(v, &n); err != nil {
				return err
			}
			mi.addNode(&n)
		case graphInput, graphOutput, graphValueInfo:
			var vi onnxpb.ValueInfoProto
			if err := proto.Unmarshal(v, &vi); err != nil {
				return err
			}
			mi.names[vi.GetName()] = true
			if num != graphValueInfo {
				mi.values[vi.GetName()] = &vi
			}
			if num == graphOutput {
				mi.outputs = append(mi.outputs, vi.GetName())
			}
			if num == graphInput {
				mi.inputs = append(mi.inputs, vi.GetName())
				mi.fed[vi.GetName()] = true
			}
		case graphInitializer:
			name := mi.addTensorName(v)
			mi.fed[name], mi.inits[name] = true, true
		case graphSparseInit:
			return eachBytesField(v, func(num protowire.Number, v []byte) error {
				if num == sparseTensorValues {
					name := mi.addTensorName(v)
					mi.fed[name], mi.inits[name] = true, true
				}
				return nil
			})
		}
		return nil
	})
}

// addTensorName records the name of an encoded TensorProto without decoding its data,
// and returns it.
func (mi *modelInfo) addTensorName(b []byte) (name string) {
	_ = eachBytesField(b, func(num protowire.Number, v []byte) error {
		if num == tensorName {
			name = string(v)
			mi.names[name] = true
		}
		return nil
	})
	return name
}

func (mi *modelInfo) addNode(n *onnxpb.NodeProto) {
	mi.names[n.GetName()] = true
	for _, s := range n.GetInput() {
		mi.names[s] = true
	}
	for _, s := range n.GetOutput() {
		mi.names[s] = true
	}
	for _, a := range n.GetAttribute() {
		graphs := a.GetGraphs()
		if a.GetG() != nil {
			graphs = append(graphs, a.GetG())
		}
		for _, g := range graphs {
			for _, sub := range g.GetNode() {
				mi.addNode(sub)
			}
			for _, vs := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetOutput(), g.GetValueInfo()} {
				for _, v := range vs {
					mi.names[v.GetName()] = true
				}
			}
			for _, t := range g.GetInitializer() {
				mi.names[t.GetName()] = true
			}
		}
	}
}

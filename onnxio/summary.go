package onnxio

import (
	"os"
	"sort"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Summary describes a model for `onnxpipe inspect`; its JSON form is documented in
// docs/inspect.md (schema_version 1).
type Summary struct {
	SchemaVersion   int            `json:"schema_version"`
	Path            string         `json:"path,omitempty"`
	FileBytes       int64          `json:"file_bytes,omitempty"`
	IRVersion       int64          `json:"ir_version"`
	Producer        string         `json:"producer"`
	ProducerVersion string         `json:"producer_version,omitempty"`
	Opsets          []OpsetSummary `json:"opsets"`
	Inputs          []ValueSummary `json:"inputs"`
	Outputs         []ValueSummary `json:"outputs"`
	Nodes           int            `json:"nodes"`          // including nodes of subgraphs
	SubgraphNodes   int            `json:"subgraph_nodes"` // how many of Nodes are in subgraphs
	Ops             map[string]int `json:"ops"`            // op type (domain-qualified outside ai.onnx) -> count
	Params          ParamSummary   `json:"params"`
	ExternalData    []string       `json:"external_data"`
	// Quantization is "none", "qdq", "qoperator", "dynamic", or several joined by "+".
	Quantization string `json:"quantization"`
	// Float16 is true when float16/bfloat16 initializers hold most of the float weights.
	Float16  bool              `json:"float16"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Runtime is filled by the caller that opens the model in onnxruntime.
	Runtime *RuntimeCheck `json:"runtime,omitempty"`
}

// OpsetSummary is one opset import.
type OpsetSummary struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// ValueSummary is a graph input or output.
type ValueSummary struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Shape []any  `json:"shape"` // int64 sizes, dim_param names as strings, null when unknown
}

// ParamSummary counts constant tensors (initializers and Constant-node values, subgraphs
// included) by element type.
type ParamSummary struct {
	Count           int64            `json:"count"`   // elements
	Bytes           int64            `json:"bytes"`   // raw size
	ByType          map[string]Count `json:"by_type"` // element type -> count and bytes
	Tensors         int              `json:"tensors"`
	InConstantNodes int              `json:"in_constant_nodes"` // tensors held by Constant nodes
}

// Count is a number of elements and their bytes.
type Count struct {
	Elements int64 `json:"elements"`
	Bytes    int64 `json:"bytes"`
}

// RuntimeCheck records whether onnxruntime opened the model.
type RuntimeCheck struct {
	Opens   bool   `json:"opens"`
	Version string `json:"onnxruntime_version,omitempty"`
	Error   string `json:"error,omitempty"`
}

var (
	qoperatorOps = map[string]bool{"QLinearConv": true, "QLinearMatMul": true, "QGemm": true, "QLinearAdd": true,
		"QLinearMul": true, "QLinearConcat": true, "QLinearAveragePool": true, "QLinearGlobalAveragePool": true,
		"QLinearSigmoid": true, "QLinearLeakyRelu": true, "QLinearSoftmax": true, "QAttention": true, "QLinearWhere": true}
	dynamicOps = map[string]bool{"DynamicQuantizeLinear": true, "MatMulInteger": true, "ConvInteger": true,
		"DynamicQuantizeMatMul": true, "MatMulIntegerToFloat": true}
)

// Summarize describes m.
func Summarize(m *Model) *Summary {
	mp := m.Proto
	s := &Summary{
		SchemaVersion:   1,
		Path:            m.Path,
		IRVersion:       mp.GetIrVersion(),
		Producer:        mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		Ops:             map[string]int{},
		Params:          ParamSummary{ByType: map[string]Count{}},
		ExternalData:    append([]string{}, m.External...),
	}
	for _, o := range mp.GetOpsetImport() {
		d := o.GetDomain()
		if d == "" {
			d = "ai.onnx"
		}
		s.Opsets = append(s.Opsets, OpsetSummary{Domain: d, Version: o.GetVersion()})
	}
	if m.Path != "" {
		if st, err := os.Stat(m.Path); err == nil {
			s.FileBytes = st.Size()
		}
	}
	g := mp.GetGraph()
	s.Inputs = valueSummaries(g.GetInput(), g.GetInitializer())
	s.Outputs = valueSummaries(g.GetOutput(), nil)
	var floatBytes, halfBytes int64
	addParams := func(tp *onnxpb.TensorProto) {
		dt := DataType(tp.GetDataType())
		n, err := NumElements(tp.GetDims())
		if err != nil {
			return
		}
		c := s.Params.ByType[dt.String()]
		c.Elements += n
		c.Bytes += dt.ByteSize(n)
		s.Params.ByType[dt.String()] = c
		s.Params.Count += n
		s.Params.Bytes += dt.ByteSize(n)
		s.Params.Tensors++
		switch dt {
		case TypeFloat, TypeDouble:
			floatBytes += dt.ByteSize(n)
		case TypeFloat16, TypeBFloat16:
			halfBytes += dt.ByteSize(n)
		}
	}
	countNodes(g, s, false, addParams)
	WalkTensors(mp, func(tp *onnxpb.TensorProto, _ string) bool {
		addParams(tp)
		return true
	})
	s.Float16 = halfBytes > 0 && halfBytes*2 > floatBytes
	var q []string
	for _, set := range []struct {
		ops  map[string]bool
		name string
	}{{qoperatorOps, "qoperator"}, {dynamicOps, "dynamic"}} {
		for op := range set.ops {
			if s.Ops[op] > 0 || s.Ops["com.microsoft."+op] > 0 {
				q = append(q, set.name)
				break
			}
		}
	}
	// QOperator models also hold a QuantizeLinear at their inputs and a DequantizeLinear
	// at their outputs: call a model QDQ when a DequantizeLinear reads a QuantizeLinear or
	// a constant (a quantized weight), or when Q/DQ nodes are all the quantization there is.
	qdqOps := 0
	for _, op := range []string{"QuantizeLinear", "DequantizeLinear"} {
		qdqOps += s.Ops[op] + s.Ops["com.microsoft."+op]
	}
	if qdqOps > 0 && (len(q) == 0 || hasQDQPair(g)) {
		q = append([]string{"qdq"}, q...)
	}
	s.Quantization = "none"
	if len(q) > 0 {
		s.Quantization = strings.Join(q, "+")
	}
	if len(mp.GetMetadataProps()) > 0 {
		s.Metadata = map[string]string{}
		for _, kv := range mp.GetMetadataProps() {
			s.Metadata[kv.GetKey()] = kv.GetValue()
		}
	}
	return s
}

func countNodes(g *onnxpb.GraphProto, s *Summary, sub bool, addParams func(*onnxpb.TensorProto)) {
	for _, n := range g.GetNode() {
		s.Nodes++
		if sub {
			s.SubgraphNodes++
		}
		op := n.GetOpType()
		if d := canonicalDomain(n.GetDomain()); d != "" {
			op = d + "." + op
		}
		s.Ops[op]++
		if op == "Constant" {
			s.Params.InConstantNodes++
			// WalkTensors counts the `value` tensor; the value_float(s)/value_int(s)
			// forms hold no TensorProto, so count them here.
			if a := Attr(n, "value"); a == nil || a.T == nil {
				if tp, ok := ConstantNodeTensor(n); ok {
					addParams(tp)
				}
			}
		}
		for _, sg := range Subgraphs(n) {
			countNodes(sg, s, true, addParams)
		}
	}
}

// isQOp reports whether n is op in the ONNX domain or in com.microsoft (which has its
// own QuantizeLinear/DequantizeLinear for types older opsets lack).
func isQOp(n *onnxpb.NodeProto, op string) bool {
	d := canonicalDomain(n.GetDomain())
	return n.GetOpType() == op && (d == "" || d == "com.microsoft")
}

// hasQDQPair reports whether g or one of its subgraphs has a DequantizeLinear whose
// input comes from a QuantizeLinear or is a constant.
func hasQDQPair(g *onnxpb.GraphProto) bool {
	ix := NewIndex(g)
	for _, n := range g.GetNode() {
		if isQOp(n, "DequantizeLinear") && len(n.GetInput()) > 0 {
			in := n.GetInput()[0]
			if p := ix.Producer[in]; p != nil && isQOp(p, "QuantizeLinear") {
				return true
			}
			if _, ok := ix.ConstantTensor(in); ok {
				return true
			}
		}
		for _, sg := range Subgraphs(n) {
			if hasQDQPair(sg) {
				return true
			}
		}
	}
	return false
}

// valueSummaries describes graph inputs or outputs, leaving out inputs that are
// initializers (old IR versions list them).
func valueSummaries(vis []*onnxpb.ValueInfoProto, inits []*onnxpb.TensorProto) []ValueSummary {
	isInit := map[string]bool{}
	for _, t := range inits {
		isInit[t.GetName()] = true
	}
	out := []ValueSummary{}
	for _, vi := range vis {
		if isInit[vi.GetName()] {
			continue
		}
		v := ValueSummary{Name: vi.GetName(), Type: "unknown"}
		if tt := vi.GetType().GetTensorType(); tt != nil {
			v.Type = DataType(tt.GetElemType()).String()
		} else if vi.GetType() != nil {
			v.Type = "non-tensor"
		}
		if dims, names, ok := ValueShape(vi); ok {
			v.Shape = []any{}
			for i, d := range dims {
				switch {
				case d >= 0:
					v.Shape = append(v.Shape, d)
				case names[i] != "":
					v.Shape = append(v.Shape, names[i])
				default:
					v.Shape = append(v.Shape, nil)
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// OpCount is one entry of the op histogram.
type OpCount struct {
	Op    string
	Count int
}

// SortedOps returns the op histogram sorted by count (descending), then name.
func (s *Summary) SortedOps() []OpCount {
	out := make([]OpCount, 0, len(s.Ops))
	for op, c := range s.Ops {
		out = append(out, OpCount{op, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Op < out[j].Op
	})
	return out
}

package quantize

import (
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// UpgradeOpset raises the default-domain opset import of m to version to (at least 7 and
// at most 21), rewriting the nodes of the main graph whose signature changed on the way:
//
//	Slice, TopK (10): starts/ends/axes/steps and k move from attributes to inputs
//	Clip, Pad (11): min/max and pads/value move to inputs
//	Resize (11): a roi input is added; version 10's coordinate mapping is kept explicitly
//	Dropout (12): the ratio attribute is dropped (inference)
//	Squeeze, Unsqueeze, ReduceSum, Split (13): axes and split move to inputs
//	Softmax, LogSoftmax, Hardmax (13): the axis becomes explicit where the 2-D coercion
//	  of older versions is the same as the new per-axis semantics (the axis is the last
//	  one); elsewhere, and where the input's rank is unknown, the old semantics is
//	  written out: Reshape(op(Flatten(x, axis), axis=1), Shape(x))
//	BatchNormalization (14): a node with the training outputs (it normalizes with the
//	  batch's statistics) gets training_mode=1 and keeps Y, mean and var (saved_mean
//	  and saved_var read by a node are an error)
//	RoiAlign (16): the old output_half_pixel coordinate mapping is kept explicitly (the
//	  new default is half_pixel)
//	ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
//	  ReduceLogSumExp, ReduceSumSquare (18): axes moves to an input
//	Split (18): without a split input, num_outputs is set to the number of outputs
//	DFT (20): axis moves to an input, explicit (the default changed from 1 to -2)
//	GridSample (20): modes bilinear and bicubic are renamed linear and cubic
//	GroupNormalization (21): scale and bias per group become per channel (constant
//	  scale and bias and a known channel count needed, else an error)
//	BatchNormalization: legacy spatial/consumed_inputs attributes are dropped
//
// The other changes of opsets 14 to 21 only add optional inputs, attributes whose
// default keeps the old behaviour, or types (Reshape's allowzero, the layout of RNNs,
// Shape's start/end, the reduction of ScatterElements/ScatterND, Pad's axes, Resize's
// antialias/axes/keep_aspect_ratio_policy, LpPool's ceil_mode, Cast's saturate,
// QuantizeLinear's block_size/output_dtype, ...), so nodes using them stay as they are.
// Ops in subgraphs and an opset below 7 are refused with an error naming them.
func UpgradeOpset(m *onnxio.Model, to int64) error {
	from := m.Opset("")
	if from >= to {
		return nil
	}
	if from == 0 {
		return fmt.Errorf("the model imports no opset of the default domain (ai.onnx), so its ops have no version; re-export it, or add the opset_import its exporter left out")
	}
	if from < 7 {
		return fmt.Errorf("opset %d is too old to upgrade (7 or newer needed); re-export the model with a newer exporter", from)
	}
	if to > 21 {
		return fmt.Errorf("opset upgrade is implemented up to 21, not %d", to)
	}
	g := m.Graph()
	u := &upgrader{g: g, ix: onnxio.NewIndex(g), namer: onnxio.NewNamer(g)}
	for _, n := range g.GetNode() {
		if len(onnxio.Subgraphs(n)) > 0 && n.GetDomain() == "" {
			return fmt.Errorf("node %s: upgrading the opset of models with If/Loop/Scan subgraphs is not supported; re-export with opset %d", onnxio.NodeLabel(n), to)
		}
		if n.GetDomain() != "" {
			continue
		}
		if err := u.node(n, from, to); err != nil {
			return fmt.Errorf("opset upgrade %d -> %d: node %s: %w", from, to, onnxio.NodeLabel(n), err)
		}
	}
	u.placeInserted()
	m.SetOpset("", to)
	if m.Proto.GetIrVersion() < 7 {
		m.Proto.IrVersion = proto.Int64(7)
	}
	return nil
}

type upgrader struct {
	g     *onnxpb.GraphProto
	ix    *onnxio.Index
	namer *onnxio.Namer
	// before holds nodes to insert in front of a node of the graph (they compute its
	// inputs), placed when every node is upgraded.
	before map[*onnxpb.NodeProto][]*onnxpb.NodeProto
}

// coerced2D rewrites a Softmax, LogSoftmax or Hardmax of an opset before 13, which
// flattens its input to 2-D at axis and normalizes each row, as that computation in
// opset 13 terms: Shape(x) and Flatten(x, axis) then the op on axis 1 of the 2-D
// tensor, and n becomes the Reshape back to x's shape (keeping n's output name).
func (u *upgrader) coerced2D(n *onnxpb.NodeProto, axis int64) {
	x, op, name := n.GetInput()[0], n.GetOpType(), n.GetName()
	if name == "" {
		name = n.GetOutput()[0]
	}
	mk := func(opType string, in []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		out := u.namer.Name(name + "_" + opType)
		return &onnxpb.NodeProto{Name: proto.String(out), OpType: proto.String(opType), Input: in, Output: []string{out}, Attribute: attrs}
	}
	shape := mk("Shape", []string{x})
	flat := mk("Flatten", []string{x}, onnxio.AttrInt("axis", axis))
	norm := mk(op, []string{flat.GetOutput()[0]}, onnxio.AttrInt("axis", 1))
	if u.before == nil {
		u.before = map[*onnxpb.NodeProto][]*onnxpb.NodeProto{}
	}
	u.before[n] = []*onnxpb.NodeProto{shape, flat, norm}
	n.OpType = proto.String("Reshape")
	n.Input = []string{norm.GetOutput()[0], shape.GetOutput()[0]}
	n.Attribute = nil
}

// placeInserted puts the nodes of u.before in front of their nodes.
func (u *upgrader) placeInserted() {
	if len(u.before) == 0 {
		return
	}
	var nodes []*onnxpb.NodeProto
	for _, n := range u.g.GetNode() {
		nodes = append(nodes, u.before[n]...)
		nodes = append(nodes, n)
	}
	u.g.Node = nodes
}

// crosses reports whether the upgrade passes version v (from < v <= to).
func crosses(from, to, v int64) bool { return from < v && v <= to }

// intsInput moves an INTS attribute to an int64 initializer input at position pos
// (inputs before it padded with ""); a missing attribute leaves the input empty.
func (u *upgrader) intsInput(n *onnxpb.NodeProto, attr string, pos int) {
	a := onnxio.Attr(n, attr)
	name := ""
	if a != nil {
		name = u.const64(n, attr, a.GetInts())
		removeAttr(n, attr)
	}
	setInput(n, pos, name)
}

func (u *upgrader) const64(n *onnxpb.NodeProto, what string, v []int64) string {
	name := u.namer.Name(n.GetOutput()[0] + "_" + what)
	t, _ := onnxio.EncodeTensor(name, onnxio.NewTensor([]int64{int64(len(v))}, v))
	u.g.Initializer = append(u.g.Initializer, t)
	return name
}

func (u *upgrader) scalar(n *onnxpb.NodeProto, what string, t *onnxio.Tensor) string {
	name := u.namer.Name(n.GetOutput()[0] + "_" + what)
	tp, _ := onnxio.EncodeTensor(name, t)
	u.g.Initializer = append(u.g.Initializer, tp)
	return name
}

func setInput(n *onnxpb.NodeProto, pos int, name string) {
	for len(n.Input) <= pos {
		n.Input = append(n.Input, "")
	}
	n.Input[pos] = name
	for len(n.Input) > 0 && n.Input[len(n.Input)-1] == "" { // trailing empties are omitted
		n.Input = n.Input[:len(n.Input)-1]
	}
}

func removeAttr(n *onnxpb.NodeProto, name string) {
	out := n.Attribute[:0]
	for _, a := range n.Attribute {
		if a.GetName() != name {
			out = append(out, a)
		}
	}
	n.Attribute = out
}

// signatureChanges lists the ops node rewrites; each needs a data input and an output.
var signatureChanges = map[string]bool{
	"Slice": true, "TopK": true, "Clip": true, "Pad": true, "Resize": true, "Dropout": true,
	"Squeeze": true, "Unsqueeze": true, "ReduceSum": true, "Split": true,
	"Softmax": true, "LogSoftmax": true, "Hardmax": true,
	"ReduceMean": true, "ReduceMax": true, "ReduceMin": true, "ReduceProd": true, "ReduceL1": true,
	"ReduceL2": true, "ReduceLogSum": true, "ReduceLogSumExp": true, "ReduceSumSquare": true,
	"DFT": true, "GroupNormalization": true,
}

func (u *upgrader) node(n *onnxpb.NodeProto, from, to int64) error {
	if signatureChanges[n.GetOpType()] {
		if len(n.GetInput()) == 0 || n.GetInput()[0] == "" {
			return fmt.Errorf("the node has no data input, so the model is not valid ONNX; check it with onnx.checker and re-export it")
		}
		if len(n.GetOutput()) == 0 || n.GetOutput()[0] == "" {
			return fmt.Errorf("the node has no output, so the model is not valid ONNX; check it with onnx.checker and re-export it")
		}
	}
	switch op := n.GetOpType(); op {
	case "Slice":
		if crosses(from, to, 10) {
			for i, a := range []string{"starts", "ends", "axes"} {
				u.intsInput(n, a, i+1)
			}
		}
	case "TopK":
		if crosses(from, to, 10) {
			k := onnxio.Attr(n, "k")
			if k == nil {
				return fmt.Errorf("TopK without k")
			}
			setInput(n, 1, u.const64(n, "k", []int64{k.GetI()}))
			removeAttr(n, "k")
		}
	case "Clip":
		if crosses(from, to, 11) {
			var lo, hi = float32(-3.4028235e38), float32(3.4028235e38)
			if a := onnxio.Attr(n, "min"); a != nil {
				lo = a.GetF()
			}
			if a := onnxio.Attr(n, "max"); a != nil {
				hi = a.GetF()
			}
			removeAttr(n, "min")
			removeAttr(n, "max")
			setInput(n, 1, u.scalar(n, "min", &onnxio.Tensor{Type: onnxio.TypeFloat, Shape: []int64{}, Data: []float32{lo}}))
			setInput(n, 2, u.scalar(n, "max", &onnxio.Tensor{Type: onnxio.TypeFloat, Shape: []int64{}, Data: []float32{hi}}))
		}
	case "Pad":
		if crosses(from, to, 11) {
			value := float32(0)
			if a := onnxio.Attr(n, "value"); a != nil {
				value = a.GetF()
			}
			u.intsInput(n, "pads", 1)
			removeAttr(n, "value")
			setInput(n, 2, u.scalar(n, "value", &onnxio.Tensor{Type: onnxio.TypeFloat, Shape: []int64{}, Data: []float32{value}}))
		}
	case "Resize":
		if crosses(from, to, 11) {
			if len(n.Input) < 2 {
				return fmt.Errorf("a Resize without scales cannot be upgraded; re-export the model at opset 11 or later")
			}
			roi := "" // optional from opset 13
			if to < 13 {
				// Opsets 11 and 12 require the roi input; it is read only with
				// tf_crop_and_resize, so an empty one does.
				roi = u.scalar(n, "roi", &onnxio.Tensor{Type: onnxio.TypeFloat, Shape: []int64{0}, Data: []float32{}})
			}
			n.Input = []string{n.Input[0], roi, n.Input[1]}
			onnxio.SetAttr(n, onnxio.AttrString("coordinate_transformation_mode", "asymmetric"))
			if a := onnxio.Attr(n, "mode"); a == nil || string(a.GetS()) == "nearest" {
				onnxio.SetAttr(n, onnxio.AttrString("nearest_mode", "floor"))
			}
		}
	case "Upsample":
		return fmt.Errorf("the Upsample op is deprecated since opset 10; re-export the model with Resize")
	case "Dropout":
		if crosses(from, to, 12) {
			removeAttr(n, "ratio")
		}
	case "Squeeze", "Unsqueeze", "ReduceSum":
		if crosses(from, to, 13) {
			u.intsInput(n, "axes", 1)
		}
	case "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare":
		if crosses(from, to, 18) {
			u.intsInput(n, "axes", 1)
		}
	case "Split":
		if crosses(from, to, 13) {
			u.intsInput(n, "split", 1)
		}
		// From 18 on, a Split without sizes needs num_outputs (equal parts, as before).
		if crosses(from, to, 18) && (len(n.GetInput()) < 2 || n.GetInput()[1] == "") && onnxio.Attr(n, "num_outputs") == nil {
			onnxio.SetAttr(n, onnxio.AttrInt("num_outputs", int64(len(n.GetOutput()))))
		}
	case "RoiAlign":
		if crosses(from, to, 16) && onnxio.Attr(n, "coordinate_transformation_mode") == nil {
			onnxio.SetAttr(n, onnxio.AttrString("coordinate_transformation_mode", "output_half_pixel"))
		}
	case "DFT":
		if crosses(from, to, 20) {
			axis := int64(1)
			if a := onnxio.Attr(n, "axis"); a != nil {
				axis = a.GetI()
			}
			removeAttr(n, "axis")
			setInput(n, 2, u.scalar(n, "axis", &onnxio.Tensor{Type: onnxio.TypeInt64, Shape: []int64{}, Data: []int64{axis}}))
		}
	case "GridSample":
		if crosses(from, to, 20) {
			if a := onnxio.Attr(n, "mode"); a != nil {
				switch string(a.GetS()) {
				case "bilinear":
					onnxio.SetAttr(n, onnxio.AttrString("mode", "linear"))
				case "bicubic":
					onnxio.SetAttr(n, onnxio.AttrString("mode", "cubic"))
				}
			}
		}
	case "GroupNormalization":
		if crosses(from, to, 21) {
			if err := u.groupNormPerChannel(n); err != nil {
				return err
			}
		}
	case "Softmax", "LogSoftmax", "Hardmax":
		if crosses(from, to, 13) {
			axis := int64(1)
			if a := onnxio.Attr(n, "axis"); a != nil {
				axis = a.GetI()
			}
			dims, _, ok := u.ix.Shape(n.GetInput()[0])
			rank := int64(len(dims))
			switch {
			case ok && (axis == rank-1 || axis == -1):
				onnxio.SetAttr(n, onnxio.AttrInt("axis", axis))
			case !ok && axis == -1:
				onnxio.SetAttr(n, onnxio.AttrInt("axis", -1))
			default:
				u.coerced2D(n, axis)
			}
		}
	case "BatchNormalization":
		if crosses(from, to, 14) {
			if err := u.trainingMode(n); err != nil {
				return err
			}
		}
		if a := onnxio.Attr(n, "spatial"); a != nil && a.GetI() == 0 {
			return fmt.Errorf("BatchNormalization with spatial=0 has no opset 9+ equivalent")
		}
		removeAttr(n, "spatial")
		removeAttr(n, "consumed_inputs")
		removeAttr(n, "is_test")
	case "Add", "Sub", "Mul", "Div":
		removeAttr(n, "broadcast") // opset 7 made broadcasting numpy-style
		removeAttr(n, "axis")
	}
	return nil
}

// trainingMode rewrites a BatchNormalization before opset 14 that has the training
// outputs (Y, mean, var, saved_mean, saved_var: it normalizes with the batch's
// statistics) as opset 14's training mode, training_mode=1 with outputs Y,
// running_mean, running_var; saved_mean and saved_var are gone at 14, so either being
// read is an error.
func (u *upgrader) trainingMode(n *onnxpb.NodeProto) error {
	if len(n.GetOutput()) <= 1 {
		return nil
	}
	for _, o := range n.GetOutput()[min(3, len(n.GetOutput())):] {
		if o != "" && (len(u.ix.Consumers[o]) > 0 || u.ix.IsGraphOutput(o)) {
			return fmt.Errorf("output %q of the BatchNormalization is saved_mean or saved_var, which opset 14 does not have; re-export the model in inference mode", o)
		}
	}
	n.Output = n.Output[:min(3, len(n.Output))]
	onnxio.SetAttr(n, onnxio.AttrInt("training_mode", 1))
	return nil
}

// groupNormPerChannel turns the per-group scale and bias of a GroupNormalization before
// opset 21 (shape [num_groups]) into the per-channel ones of 21 (shape [C]), each group's
// value repeated over its C/num_groups channels, as new initializers.
func (u *upgrader) groupNormPerChannel(n *onnxpb.NodeProto) error {
	a := onnxio.Attr(n, "num_groups")
	if a == nil || a.GetI() <= 0 {
		return fmt.Errorf("GroupNormalization without a positive num_groups")
	}
	groups := a.GetI()
	if len(n.GetInput()) < 3 {
		return fmt.Errorf("GroupNormalization needs scale and bias inputs")
	}
	dims, _, ok := u.ix.Shape(n.GetInput()[0])
	if !ok || len(dims) < 2 || dims[1] <= 0 {
		return fmt.Errorf("GroupNormalization takes scale and bias per group before opset 21 and per channel from 21 on; upgrading it needs the channel count (dimension 1 of input %q) to be recorded in the model", n.GetInput()[0])
	}
	channels := dims[1]
	if channels%groups != 0 {
		return fmt.Errorf("GroupNormalization: %d channels are not a multiple of num_groups %d", channels, groups)
	}
	if channels == groups {
		return nil // one channel a group: per group is per channel
	}
	for i, what := range []string{"scale", "bias"} {
		name := n.GetInput()[i+1]
		tp, ok := u.ix.ConstantTensor(name)
		if !ok {
			return fmt.Errorf("GroupNormalization takes %s per group before opset 21 and per channel from 21 on; upgrading it needs %s %q to be a constant", what, what, name)
		}
		t, err := onnxio.DecodeTensor(tp)
		if err != nil {
			return fmt.Errorf("GroupNormalization %s %q: %w", what, name, err)
		}
		if len(t.Shape) != 1 || t.Shape[0] != groups {
			return fmt.Errorf("GroupNormalization %s %q has shape %v, not [num_groups] = [%d]", what, name, t.Shape, groups)
		}
		src := reflect.ValueOf(t.Data)
		per := int(channels / groups)
		dst := reflect.MakeSlice(src.Type(), int(channels), int(channels))
		for c := range int(channels) {
			dst.Index(c).Set(src.Index(c / per))
		}
		setInput(n, i+1, u.scalar(n, what, &onnxio.Tensor{Type: t.Type, Shape: []int64{channels}, Data: dst.Interface()}))
	}
	return nil
}

package collect

import (
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// BoundedOutputs returns the values of m's main graph made by an op whose output is
// bounded by construction, with that bound: Sigmoid, HardSigmoid and Softmax [0, 1],
// Tanh [-1, 1], Clip with constant bounds [min, max] (ReLU6: [0, 6]). Their ranges are
// these bounds whatever the method (calibrate.SetOptions.Bounded): such a tensor has no
// outlier tail to cut, few values per sample (a squeeze-and-excitation gate has one per
// channel) make the histogram methods cut real values, and calibration data that never
// reaches the top (a wake-word score on speech without the wake word) would clip the
// values that matter most.
func BoundedOutputs(m *onnxio.Model) map[string][2]float32 {
	ix := onnxio.NewIndex(m.Graph())
	out := map[string][2]float32{}
	for _, n := range m.Graph().GetNode() {
		if n.GetDomain() != "" || len(n.GetOutput()) == 0 {
			continue
		}
		var r [2]float32
		switch n.GetOpType() {
		case "Sigmoid", "HardSigmoid", "Softmax":
			r = [2]float32{0, 1}
		case "Tanh":
			r = [2]float32{-1, 1}
		case "Clip":
			var ok bool
			if r, ok = clipBounds(ix, n); !ok {
				continue
			}
		default:
			continue
		}
		out[n.GetOutput()[0]] = r
	}
	return out
}

// clipBounds reads a Clip's constant bounds: attributes before opset 11, inputs after;
// ok is false when either is missing or computed.
func clipBounds(ix *onnxio.Index, n *onnxpb.NodeProto) (r [2]float32, ok bool) {
	in := n.GetInput()
	if len(in) < 2 {
		lo, hi := onnxio.Attr(n, "min"), onnxio.Attr(n, "max")
		if lo == nil || hi == nil {
			return r, false
		}
		return [2]float32{lo.GetF(), hi.GetF()}, lo.GetF() <= hi.GetF()
	}
	if len(in) < 3 || in[1] == "" || in[2] == "" {
		return r, false
	}
	for i, name := range in[1:3] {
		tp, ok := ix.ConstantTensor(name)
		if !ok {
			return r, false
		}
		t, err := onnxio.DecodeTensor(tp)
		if err != nil {
			return r, false
		}
		v, err := t.Float32s()
		if err != nil || len(v) != 1 {
			return r, false
		}
		r[i] = v[0]
	}
	return r, r[0] <= r[1]
}

package collect

import (
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// BoundedOutputs returns the values of m's main graph made by an op whose output is
// bounded by construction: Sigmoid, HardSigmoid and Softmax ([0, 1]), Tanh ([-1, 1]),
// and Clip with constant bounds (ReLU6). Their ranges are their observed extremes
// whatever the method (calibrate.SetOptions.Bounded): such a tensor has no outlier tail,
// and few values per sample (a squeeze-and-excitation gate has one per channel) make
// the histogram methods cut real values.
func BoundedOutputs(m *onnxio.Model) map[string]bool {
	ix := onnxio.NewIndex(m.Graph())
	out := map[string]bool{}
	for _, n := range m.Graph().GetNode() {
		if n.GetDomain() != "" || len(n.GetOutput()) == 0 {
			continue
		}
		switch n.GetOpType() {
		case "Sigmoid", "HardSigmoid", "Softmax", "Tanh":
		case "Clip":
			in := n.GetInput()
			if len(in) < 3 { // opset < 11: bounds as attributes, both needed
				if onnxio.Attr(n, "min") == nil || onnxio.Attr(n, "max") == nil || len(in) > 1 {
					continue
				}
			} else if in[1] == "" || in[2] == "" || !ix.IsConstant(in[1]) || !ix.IsConstant(in[2]) {
				continue
			}
		default:
			continue
		}
		out[n.GetOutput()[0]] = true
	}
	return out
}

package collect

import (
	"math"

	"github.com/onnxpipe/onnxpipe/onnxio"
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
			lo, hi, ok := ix.ClipBounds(n)
			if !ok || math.IsInf(float64(lo), 0) || math.IsInf(float64(hi), 0) || lo > hi {
				continue
			}
			r = [2]float32{lo, hi}
		default:
			continue
		}
		out[n.GetOutput()[0]] = r
	}
	return out
}

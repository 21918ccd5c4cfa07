package calibrate

import (
	"fmt"
	"math"
)

// ScaleZeroPoint maps the real range [rmin, rmax] onto the integers [qmin, qmax] as
// onnxruntime's compute_scale_zp (quant_utils.py) does. It is the one implementation in
// onnxpipe: quantize derives every activation, weight and constant scale with it.
//
//	rmin = min(rmin, 0), rmax = max(rmax, 0)            (0 must be exact)
//	symmetric: a = max(|rmin|, |rmax|), rmin = -a, rmax = a
//	scale = (rmax - rmin)/(qmax - qmin)                  (the difference in float32, the division in float64)
//	symmetric: zp = round((qmin + qmax)/2)               (int8 [-127, 127] and [-128, 127] 0, uint8 [0, 254] 127,
//	                                                      uint8 [0, 255] 128, uint16 [0, 65535] 32768)
//	otherwise: zp = round(qmin - rmin/scale)             (in float64, with the unrounded scale)
//	scale < 2^-126 (float32's smallest normal, e.g. an all-zero range): scale = 1, zp = 0
//
// rounding half to even (numpy.round), and scale returned as float32. The one deviation:
// the asymmetric zero point is clamped to [qmin, qmax] (onnxruntime does not clamp; the
// clamp changes nothing unless rounding pushes it out). An all-zero channel of symmetric
// uint8 per-channel weights thus gets zero point 0 beside the others' 127, as with
// onnxruntime's quantizer; onnxruntime 1.30 runs such a QLinearConv correctly (quantize's
// tests check it).
// It panics unless qmin ≤ 0 ≤ qmax, qmin < qmax and the range is finite.
func ScaleZeroPoint(rmin, rmax float32, qmin, qmax int32, symmetric bool) (scale float32, zp int32) {
	if qmin > 0 || qmax < 0 || qmin >= qmax {
		panic(fmt.Sprintf("calibrate: integer range [%d, %d] must contain 0 and more than one value", qmin, qmax))
	}
	if !finite(rmin) || !finite(rmax) {
		panic(fmt.Sprintf("calibrate: scale of the non-finite range [%g, %g]", rmin, rmax))
	}
	lo, hi := min32(rmin, 0), max32(rmax, 0)
	if symmetric {
		a := max32(abs32(lo), abs32(hi))
		lo, hi = -a, a
	}
	s := float64(hi-lo) / (float64(qmax) - float64(qmin))
	if s < 0x1p-126 {
		return 1, 0
	}
	if symmetric {
		return float32(s), int32(math.RoundToEven((float64(qmin) + float64(qmax)) / 2))
	}
	z := math.RoundToEven(float64(qmin) - float64(lo)/s)
	z = math.Max(float64(qmin), math.Min(float64(qmax), z))
	return float32(s), int32(z)
}

package quantize

import (
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// QRange is the integer range of a quantized type.
type QRange struct{ Min, Max int32 }

// IntRange returns the range quantized values of dt take, following onnxruntime's
// quantizer: int8 [-128, 127] ([-127, 127] when symmetric), uint8 [0, 255] ([0, 254]
// when symmetric, zero point 127: onnxruntime's
// get_qmin_qmax_for_qType), int16/uint16 likewise; reduceRange keeps 7 bits
// (int8 [-64, 64], uint8 [0, 127]) for CPUs without VNNI whose u8s8 dot products saturate.
func IntRange(dt onnxio.DataType, symmetric, reduceRange bool) (QRange, error) {
	switch dt {
	case onnxio.TypeInt8:
		switch {
		case reduceRange:
			return QRange{-64, 64}, nil
		case symmetric:
			return QRange{-127, 127}, nil
		}
		return QRange{-128, 127}, nil
	case onnxio.TypeUint8:
		switch {
		case reduceRange:
			return QRange{0, 127}, nil
		case symmetric:
			return QRange{0, 254}, nil
		}
		return QRange{0, 255}, nil
	case onnxio.TypeInt16:
		if symmetric {
			return QRange{-32767, 32767}, nil
		}
		return QRange{-32768, 32767}, nil
	case onnxio.TypeUint16:
		if symmetric {
			return QRange{0, 65534}, nil
		}
		return QRange{0, 65535}, nil
	case onnxio.TypeInt4:
		if symmetric {
			return QRange{-7, 7}, nil
		}
		return QRange{-8, 7}, nil
	case onnxio.TypeUint4:
		if symmetric {
			return QRange{0, 14}, nil
		}
		return QRange{0, 15}, nil
	}
	return QRange{}, fmt.Errorf("%s is not a quantized type (int8, uint8, int16, uint16, int4, uint4)", dt)
}

// scaleZeroPoint is calibrate.ScaleZeroPoint (onnxruntime's compute_scale_zp) on q. The
// range must be finite.
func scaleZeroPoint(rmin, rmax float32, q QRange, symmetric bool) (scale float32, zp int32) {
	return calibrate.ScaleZeroPoint(rmin, rmax, q.Min, q.Max, symmetric)
}

// finite reports whether every value of v is finite.
func finite(v ...float32) bool {
	for _, x := range v {
		if x-x != 0 { // NaN - NaN and Inf - Inf are NaN; every finite x gives 0
			return false
		}
	}
	return true
}

// smallestWeight is the magnitude below which a weight tensor cannot be quantized: its
// scale (its range over at most 255 steps) could fall below float32's smallest normal
// number, where ScaleZeroPoint gives scale 1 and every value becomes 0.
const smallestWeight = 0x1p-126 * 255

// tooSmall reports whether v has non-zero values but none reaching smallestWeight: the
// tensor would quantize to all zeros, a different function (an all-zero tensor is fine).
func tooSmall(v []float32) bool {
	var m float32
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	return m > 0 && m < smallestWeight
}

// Quantize maps x to clamp(round_half_even(x/scale) + zp) as QuantizeLinear computes it.
func Quantize(x, scale float32, zp int32, q QRange) int32 {
	v := math.RoundToEven(float64(x)/float64(scale)) + float64(zp)
	switch {
	case v < float64(q.Min):
		return q.Min
	case v > float64(q.Max):
		return q.Max
	}
	return int32(v)
}

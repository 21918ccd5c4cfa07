package quantize

import (
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// QRange is the integer range of a quantized type.
type QRange struct{ Min, Max int32 }

// IntRange returns the range quantized values of dt take, following onnxruntime's
// quantizer: int8 [-128, 127] ([-127, 127] when symmetric), uint8 [0, 255] ([0, 254]
// when symmetric, zero point 127), int16/uint16 likewise; reduceRange keeps 7 bits
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

// ScaleZeroPoint maps the real range [rmin, rmax] onto q, as onnxruntime's
// compute_scale_zp does: the range is first widened to contain 0; symmetric uses
// ±max(|rmin|, |rmax|) with the zero point in the middle of q;
//
//	scale = (rmax - rmin) / (q.Max - q.Min),  zp = round(q.Min - rmin/scale)
//
// (rounded half to even, clamped to q). An empty range gives scale 1 and zero point
// q.Min (or the middle when symmetric), so that 0 is exact.
func ScaleZeroPoint(rmin, rmax float32, q QRange, symmetric bool) (scale float32, zp int32) {
	lo := math.Min(float64(rmin), 0)
	hi := math.Max(float64(rmax), 0)
	if symmetric {
		abs := math.Max(-lo, hi)
		lo, hi = -abs, abs
	}
	if hi-lo == 0 || math.IsNaN(hi-lo) {
		if symmetric {
			return 1, (q.Min + q.Max) / 2
		}
		return 1, q.Min
	}
	s := (hi - lo) / float64(q.Max-q.Min)
	if symmetric {
		return float32(s), (q.Min + q.Max) / 2
	}
	z := math.RoundToEven(float64(q.Min) - lo/s)
	z = math.Max(float64(q.Min), math.Min(float64(q.Max), z))
	return float32(s), int32(z)
}

// Quantize maps x to clamp(round_half_even(x/scale) + zp) as QuantizeLinear computes it.
func Quantize(x, scale float32, zp int32, q QRange) int32 {
	v := math.RoundToEven(float64(x)/float64(scale)) + float64(zp)
	return int32(math.Max(float64(q.Min), math.Min(float64(q.Max), v)))
}

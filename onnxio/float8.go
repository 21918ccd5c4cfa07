package onnxio

import "math"

// float8Decoder returns the function that decodes one element code of an 8-bit or 4-bit
// float type to float32, or nil when dt is not such a type.
func float8Decoder(dt DataType) func(uint8) float32 {
	switch dt {
	case TypeFloat8E4M3FN:
		return func(b uint8) float32 { return minifloat(b, 4, 3, 7, fnNaN(0x7f)) }
	case TypeFloat8E4M3FNUZ:
		return func(b uint8) float32 { return minifloat(b, 4, 3, 8, uzNaN) }
	case TypeFloat8E5M2:
		return decodeE5M2
	case TypeFloat8E5M2FNUZ:
		return func(b uint8) float32 { return minifloat(b, 5, 2, 16, uzNaN) }
	case TypeFloat8E8M0:
		return func(b uint8) float32 {
			if b == 0xff {
				return float32(math.NaN())
			}
			return float32(math.Ldexp(1, int(b)-127))
		}
	case TypeFloat4E2M1:
		return func(b uint8) float32 { return minifloat(b&0xf, 2, 1, 1, func(uint8) bool { return false }) }
	}
	return nil
}

// fnNaN: the "finite" formats have one NaN pattern per sign (all ones below the sign).
func fnNaN(mask uint8) func(uint8) bool { return func(b uint8) bool { return b&0x7f == mask } }

// uzNaN: the "unsigned zero" formats use the negative-zero pattern as their only NaN.
func uzNaN(b uint8) bool { return b == 0x80 }

// minifloat decodes a sign/exponent/mantissa code with the given field widths and bias;
// isNaN says which codes are NaN. These formats have no infinities.
func minifloat(b uint8, ebits, mbits uint, bias int, isNaN func(uint8) bool) float32 {
	if isNaN(b) {
		return float32(math.NaN())
	}
	sign := b >> (ebits + mbits) & 1
	e := int(b>>mbits) & (1<<ebits - 1)
	m := float64(b & (1<<mbits - 1))
	var v float64
	if e == 0 {
		v = math.Ldexp(m, 1-bias-int(mbits))
	} else {
		v = math.Ldexp(1+m/float64(int(1)<<mbits), e-bias)
	}
	if sign == 1 {
		v = -v
	}
	return float32(v)
}

// decodeE5M2 decodes FLOAT8E5M2, which follows IEEE 754 (infinities and NaNs).
func decodeE5M2(b uint8) float32 {
	switch {
	case b&0x7f == 0x7c:
		if b&0x80 != 0 {
			return float32(math.Inf(-1))
		}
		return float32(math.Inf(1))
	case b&0x7f > 0x7c:
		return float32(math.NaN())
	}
	return minifloat(b, 5, 2, 15, func(uint8) bool { return false })
}

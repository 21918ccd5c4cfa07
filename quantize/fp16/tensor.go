package fp16

import (
	"encoding/binary"
	"math"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// convertTensor rewrites a float32 tensor as c.target in place (raw_data, little
// endian), clamping and raising values as onnxruntime's float16.py does and counting
// them in the report.
func (c *converter) convertTensor(tp *onnxpb.TensorProto) error {
	if onnxio.DataType(tp.GetDataType()) != float32T {
		return nil
	}
	vals, err := onnxio.TensorFloat32s(tp)
	if err != nil {
		return err
	}
	raw, clamped, flushed := narrow(vals, c.target, c.opts.MinPositive, c.opts.MaxFinite)
	c.rep.Clamped += clamped
	c.rep.Flushed += flushed
	tp.DataType = proto.Int32(int32(c.target))
	tp.FloatData = nil
	tp.Int32Data = nil
	tp.RawData = raw
	return nil
}

// narrow converts vals to float16 or bfloat16 bytes. Finite values beyond ±maxFinite
// become ±maxFinite (clamped) and non-zero values below minPositive in magnitude become
// ±minPositive (flushed); zeros, infinities and NaNs are kept.
func narrow(vals []float32, t onnxio.DataType, minPositive, maxFinite float32) (raw []byte, clamped, flushed int64) {
	raw = make([]byte, 2*len(vals))
	for i, v := range vals {
		a := float32(math.Abs(float64(v)))
		switch {
		case a > maxFinite && !math.IsInf(float64(v), 0):
			v = float32(math.Copysign(float64(maxFinite), float64(v)))
			clamped++
		case a > 0 && a < minPositive:
			v = float32(math.Copysign(float64(minPositive), float64(v)))
			flushed++
		}
		var bits uint16
		if t == onnxio.TypeBFloat16 {
			bits = uint16(onnxio.BFloat16FromFloat32(v))
		} else {
			bits = float16.Fromfloat32(v).Bits()
		}
		binary.LittleEndian.PutUint16(raw[2*i:], bits)
	}
	return raw, clamped, flushed
}

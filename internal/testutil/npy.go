package testutil

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// NPY is t as a .npy file (format 1.0, little-endian, C order): float32, float64,
// int64, int32, int8, uint8 or bool data.
func NPY(t *onnxio.Tensor) ([]byte, error) {
	var descr string
	switch t.Data.(type) {
	case []float32:
		descr = "<f4"
	case []float64:
		descr = "<f8"
	case []int64:
		descr = "<i8"
	case []int32:
		descr = "<i4"
	case []int8:
		descr = "|i1"
	case []uint8:
		descr = "|u1"
	case []bool:
		descr = "|b1"
	default:
		return nil, fmt.Errorf("NPY: %T is not supported", t.Data)
	}
	var data bytes.Buffer
	if err := binary.Write(&data, binary.LittleEndian, t.Data); err != nil {
		return nil, err
	}
	return NPYRaw(descr, false, NPYShape(t.Shape), data.Bytes()), nil
}

// NPYRaw is a .npy file with this header (descr, fortran_order, the shape's text as in
// "(4, 1, 28, 28)") and these data bytes, unchecked.
func NPYRaw(descr string, fortran bool, shape string, data []byte) []byte {
	f := "False"
	if fortran {
		f = "True"
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, f, shape)
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&buf, binary.LittleEndian, uint16(len(header)))
	buf.WriteString(header)
	buf.Write(data)
	return buf.Bytes()
}

// NPYShape is shape as a .npy header writes it: "(2, 3)", "(4,)".
func NPYShape(shape []int64) string {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	s := strings.Join(dims, ", ")
	if len(dims) == 1 {
		s += ","
	}
	return "(" + s + ")"
}

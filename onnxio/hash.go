package onnxio

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"
)

// GraphHash is the sha256 of the main graph's deterministic serialization: nodes,
// initializers, inputs, outputs and value_info. A calibration table records it so that
// quantization can refuse a table made for another graph.
func (m *Model) GraphHash() string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto.GetGraph())
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

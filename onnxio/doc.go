// Package onnxio reads, indexes, edits, checks and writes ONNX models.
//
// A Model wraps the protobuf message (package onnxpb) with the folder its external data
// lives in. Load reads a file and every tensor stored outside it; Save writes atomically
// (a temporary file, then a rename), moving large tensors to an external data file when
// asked or when the model would pass protobuf's 2 GiB limit. A round trip keeps every
// field, including fields this schema does not know.
//
// Index answers graph queries (producers, consumers, initializers, Constant-node tensors,
// value types); the edit helpers (InsertAfter, ReplaceUses, RemoveDeadNodes, ...) keep the
// graph valid, subgraphs of If/Loop/Scan included. Check is a structural checker in the
// spirit of onnx.checker. Tensor converts between TensorProto and typed Go slices for every
// numeric element type.
package onnxio

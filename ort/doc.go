// Package ort is onnxpipe's bridge to onnxruntime, built on github.com/yalue/onnxruntime_go.
//
// Init loads onnxruntime's shared library once per process (FindLibrary says where it
// looks: an explicit path, $ONNXPIPE_ORT_LIB, third_party/onnxruntime beside the binary
// or above the working folder, then the system's library path). NewSession loads a model
// from its bytes with Options (threads, graph optimization level, execution provider,
// where to save the optimized graph) and discovers every input and output; Session.Run
// takes and returns onnxio.Tensor values, checks inputs against the model's declared
// names, element types and fixed dimensions, and copies every result into Go memory, so
// nothing returned refers to onnxruntime's memory. A Session may Run from several
// goroutines at once. Session.RunInto is Run for loops over batches: onnxruntime writes
// the outputs straight into Go memory kept in a Buffers from one call to the next (no
// allocation or copy per call once the input shapes repeat), and the returned tensors
// hold their values until the next call with the same Buffers.
//
// Element types: float32, float64, int8 to int64, uint8 to uint64, bool, float16,
// bfloat16 and string, as inputs and outputs. Outputs of other types (float8, int4,
// complex) and non-tensor outputs (sequences, maps) are left out of Session.Outputs;
// models whose inputs use them are refused.
//
// GPU providers (CUDA, TensorRT) come through onnxruntime's provider libraries; when
// they cannot be loaded or used, NewSession returns an *UnavailableError, so callers can
// fall back to the CPU with errors.As.
//
// Limits that come from onnxruntime_go v1.27, and how the bridge works around them:
// it copies the outputs it allocates wrongly for float16 and bfloat16 (one byte per
// element) and refuses those of rank 0, and it cannot run a session without inputs.
// For models that need it, the session runs a copy of the model with a few nodes
// appended (an exact Cast to float32 for 16-bit float outputs; a Reshape to one
// dimension plus a Shape node for scalar or unknown-rank outputs; an unused input for
// a model with none); Run narrows and reshapes the results back, so callers see the
// model's own types and shapes, and OptimizedModelPath still gets the optimized graph
// of the model as given. Scalar (rank 0) float16, bfloat16 and string inputs cannot be
// passed. Models must hold their tensors inside (no external data files).
package ort

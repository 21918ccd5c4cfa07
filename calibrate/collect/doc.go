// Package collect measures a model's activations on a dataset in onnxruntime: it runs the
// model batch by batch with the tensors to calibrate exposed as outputs and folds each
// batch into calibrate's streaming collectors at once. The statistics and the methods
// that turn them into ranges are package calibrate's, which needs no onnxruntime.
package collect

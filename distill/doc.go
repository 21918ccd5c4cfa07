// Package distill trains a student model by knowledge distillation from an ONNX
// teacher, with the Go training engine of package train.
//
// Run takes the teacher, the student (nil in Self mode, where the student is the
// teacher's architecture re-initialised), the training data, optional validation data
// and a Config: the mode (Offline, the teacher's outputs computed once by onnxruntime;
// Online, the teacher trained alongside; Self, born-again generations), the losses
// (soft, hard, MSE and hint losses between intermediate tensors), the optimizer and the
// checkpoint file. It returns a Result: the student with its best epoch's weights (of
// the last generation), the trained teacher in Online mode, the per-epoch history and
// the per-generation summaries. Architecture builds an MLP or CNN student with the
// teacher's input and output names.
package distill

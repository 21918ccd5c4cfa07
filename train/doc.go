// Package train runs ONNX graphs in Go with reverse-mode gradients, so that a network
// given as ONNX can be trained; distillation builds on it.
//
// Compile turns an onnxio.Model into a Graph: nodes in topological order, values by
// name, the weights among the float initializers as trainable parameters (Params: what
// a layer reads as its weight, bias, normalization scale or shift, or embedding table,
// directly or through Identity, Transpose, Reshape or QuantizeLinear → DequantizeLinear;
// constants of the computation held as initializers, such as Pow exponents, epsilons
// and GELU's constants, are not; CompileOptions.Frozen keeps some weights constant and
// CompileOptions.Trainable replaces the rule), BatchNormalization's running mean
// and variance as state, and every node that reads only constants (Constant nodes,
// frozen initializers, shape arithmetic on them) folded at compile time. Shape
// subgraphs that depend on an input's shape (Shape → Gather → Concat → Reshape, as
// PyTorch exports them) are int64 nodes evaluated on each run.
//
// A training step:
//
//	tape, err := g.Forward(map[string]*train.Tensor{"input": x}, true)
//	loss, grad := train.CrossEntropy(tape.Output("logits"), labels)
//	opt.ZeroGrad()
//	err = tape.Backward(map[string]*train.Tensor{"logits": grad})
//	opt.Step()
//	tape.Release() // optional: the next Forward reuses the tape's buffers
//
// Backward takes seed gradients for any float values (outputs or intermediate values,
// for feature losses) and adds the parameters' gradients to Param.Grad. Export writes
// the model back with the trained parameters and running statistics; nothing else in
// the model changes, so onnxruntime runs it as it runs the model given to Compile.
//
// Tensors are float32 (int64 for shapes and indices). Matrix products (Gemm, MatMul,
// and Conv through im2col) go through sgemm (gemm.go): on amd64 with AVX-512F or
// AVX2+FMA, a packed GEMM with an assembly micro-kernel (8x32 or 6x16 tiles of C held
// in registers; gemm_packed.go, gemm_amd64.s), where each element of C is one fused
// multiply-add sum over k in order, as onnxruntime's MLAS computes it; elsewhere (or
// with -tags purego) pure-Go kernels of long dot products or rank-1 updates of L1-sized
// tiles on gonum's level-1 and level-2 routines. Blocks of a product are handed to
// runtime.GOMAXPROCS goroutines as they free up; the other kernels split their rows into
// as many contiguous chunks. Each element is computed in one fixed order, so results are
// deterministic for a given seed and GOMAXPROCS (matrix products do not even depend on
// GOMAXPROCS, and the AVX-512 and AVX2 paths give the same bits).
//
// Speed: scripts/bench-train.sh (make bench-train) runs BenchmarkTrainStepMLP800 and
// the same step in PyTorch side by side; docs/benchmarks.md has the numbers.
//
// # Ops
//
// The default ONNX domain, forward and backward, with the attribute and input forms of
// each op's opset versions (the tests cover opsets 9 to 18); Ops lists them with their
// limits:
//
//	Gemm, MatMul                      numpy broadcasting and 1-D promotion for MatMul
//	Add, Sub, Mul, Div, Pow           numpy broadcasting; Add/Sub/Mul/Div also on int64
//	Relu, LeakyRelu, Sigmoid, Tanh, Erf, Sqrt, Exp, Log, Neg, Abs
//	HardSigmoid, HardSwish
//	Clip                              min and max as attributes (opset 6) or inputs (11+)
//	Max, Min                          any number of inputs, numpy broadcasting
//	Where, Expand                     numpy broadcasting (Where's X and Y float or int64)
//	Softmax, LogSoftmax               opset 13 single axis; earlier opsets flatten
//	Conv                              1-D and 2-D: strides, pads, dilations, group, auto_pad
//	MaxPool, AveragePool              1-D and 2-D: strides, pads, ceil_mode, auto_pad,
//	                                  count_include_pad, dilations (MaxPool); no Indices
//	GlobalAveragePool
//	BatchNormalization                batch statistics when training (running statistics
//	                                  updated with momentum), running ones otherwise
//	LayerNormalization                axis, epsilon; scale and bias trainable
//	Dropout                           ratio; drops only when training, seeded
//	Flatten, Reshape, Transpose, Concat, Slice, Gather, Unsqueeze, Squeeze, Identity
//	Shape, Cast, Constant             shape arithmetic (no gradients through int64)
//	ReduceMean, ReduceSum             axes as attribute or input, keepdims
//	QuantizeLinear, DequantizeLinear  per tensor, per axis, blocked; uint8, int8, uint16,
//	                                  int16, uint4, int4 (int32 for DequantizeLinear);
//	                                  straight-through gradients, learnable scales (LSQ)
//	                                  with CompileOptions.LearnScales; see ops_quant.go
//
// An op outside this list, or an attribute outside these limits, is a Compile error that
// lists every offending node.
//
// A Graph is not safe for concurrent use: one Forward, Backward or optimizer Step at a
// time. Separate Graphs (a teacher and a student) may run in parallel.
package train

// Package qat prepares models for quantization-aware training and writes the trained
// result back as a QDQ model.
//
// Three conversions, all on onnxio models, none of which touches the caller's model:
//
//   - Trainable turns the QDQ model that quantize.Static wrote (integer weight
//     initializers behind a DequantizeLinear, int32 biases behind a DequantizeLinear,
//     activations through QuantizeLinear → DequantizeLinear) into a fake-quantized
//     training graph: each integer weight becomes a float initializer holding its
//     dequantized value followed by QuantizeLinear → DequantizeLinear with the same
//     scale, zero point and axis, so train.Compile makes it a trainable parameter whose
//     forward is exactly the quantized model's; each int32 bias becomes a float bias,
//     trained without fake quantization (QuantizeLinear has no int32 output, and the
//     int32 rounding error, at a scale of input scale × weight scale, is below float32
//     noise); activation Q/DQ pairs stay as they are.
//   - FakeQuantWeights inserts the same weight fake quantization into a float model, for
//     low-bit weights (int4 or uint4, which raise the opset to 21; int8 or uint8) of
//     Conv, ConvTranspose, Gemm and MatMul, per output channel, or per tensor where a
//     weight has no channel axis (a 1-D MatMul weight) or PerTensor asks for it. Fold
//     BatchNormalization first (quantize.Prepare), or the Conv weights are quantized
//     before the fold.
//   - Finalize writes a trained fake-quantized model back as a QDQ model: each float
//     weight behind QuantizeLinear → DequantizeLinear becomes an integer initializer (the
//     QuantizeLinear evaluated as onnxruntime does, so the QDQ model computes exactly what
//     training saw), with the scales the model holds (the original or learned ones) or,
//     with RecomputeScales, new ones from the trained weights' ranges; biases of
//     Conv/ConvTranspose/Gemm whose input and weight are dequantized become int32 again,
//     with scale = input scale × weight scale and zero point 0.
//
// Training between Trainable (or FakeQuantWeights) and Finalize is train's: Compile the
// trainable model (Info.LearnScales selects the scales to learn, LSQ), run Forward and
// Backward with a loss against the labels or a float teacher, step an optimizer, and
// Export. The trainable model runs in onnxruntime too, and its outputs match the
// engine's forward.
package qat

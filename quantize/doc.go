// Package quantize rewrites float ONNX graphs for deployment: Prepare cleans a graph up
// (constant and BatchNormalization folding, Constant nodes to initializers, opset
// upgrade); Static rewrites it into int8 QuantizeLinear/DequantizeLinear (QDQ) form from
// a calibration table, placing the nodes so that onnxruntime fuses them into QLinearConv,
// QLinearMatMul, QGemm and friends; Dynamic writes DynamicQuantizeLinear with
// MatMulInteger/ConvInteger. Nothing here reads YAML: a Go program calls
// quantize.Static(model, table, opts) directly.
package quantize

package quantize

import (
	"fmt"
	"sort"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// int8Kernels maps a quantized op type to the op types onnxruntime runs it as when its
// Q/DQ group fuses (ONNX and com.microsoft domains, as Summarize names them).
var int8Kernels = map[string][]string{
	"Conv":          {"QLinearConv", "com.microsoft.QLinearConv", "ConvInteger"},
	"ConvTranspose": {"com.microsoft.QLinearConvTranspose", "QLinearConvTranspose"},
	"Gemm":          {"com.microsoft.QGemm", "com.microsoft.DynamicQuantizeMatMul", "com.microsoft.MatMulIntegerToFloat"},
	"MatMul":        {"QLinearMatMul", "com.microsoft.MatMulIntegerToFloat", "com.microsoft.DynamicQuantizeMatMul", "MatMulInteger", "com.microsoft.QGemm"},
}

// Fusion says how many quantized Conv/ConvTranspose/Gemm/MatMul nodes onnxruntime runs
// as int8 kernels, read from the graph onnxruntime optimized.
type Fusion struct {
	// Quantized counts the quantized compute nodes by op type.
	Quantized map[string]int `json:"quantized"`
	// Int8 counts the int8 kernels found for each of them.
	Int8 map[string]int `json:"int8"`
	// Float lists the quantized nodes that still run in float (found by name).
	Float []string `json:"float,omitempty"`
	// Ratio is the fused share of quantized compute nodes (1 when there are none).
	Ratio float64 `json:"ratio"`
}

// FusionReport compares the quantizer's result with onnxruntime's optimized graph of the
// quantized model.
func FusionReport(res *Result, quantized, optimized *onnxio.Model) *Fusion {
	f := &Fusion{Quantized: map[string]int{}, Int8: map[string]int{}}
	ops := onnxio.Summarize(optimized).Ops
	total, fused := 0, 0
	for op, kernels := range int8Kernels {
		n := res.Quantized[op]
		if n == 0 {
			continue
		}
		f.Quantized[op] = n
		k := 0
		for _, kop := range kernels {
			k += ops[kop]
		}
		f.Int8[op] = k
		total += n
		fused += min(n, k)
	}
	// Quantized nodes whose name survives, with their float op type, in the optimized graph.
	names := map[string]string{}
	for _, n := range quantized.Graph().GetNode() {
		if _, ok := int8Kernels[n.GetOpType()]; ok && n.GetName() != "" {
			names[n.GetName()] = n.GetOpType()
		}
	}
	for _, n := range optimized.Graph().GetNode() {
		if op, ok := names[n.GetName()]; ok && op == n.GetOpType() {
			f.Float = append(f.Float, fmt.Sprintf("%s (%s)", n.GetName(), op))
		}
	}
	sort.Strings(f.Float)
	f.Ratio = 1
	if total > 0 {
		f.Ratio = float64(fused) / float64(total)
	}
	return f
}

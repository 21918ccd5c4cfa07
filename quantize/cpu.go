package quantize

import (
	"runtime"

	"golang.org/x/sys/cpu"
)

// HostSaturatesU8S8 reports whether this machine's CPU is one on which onnxruntime's
// int8 kernels can saturate with full-range int8 weights: x86-64 without VNNI
// (AVX2 or AVX-512 without AVX512_VNNI or AVX_VNNI). There MLAS multiplies uint8
// activations by int8 weights with VPMADDUBSW, whose pairwise sums are clamped to int16
// (255·127·2 = 64770 > 32767); 7-bit weights (ReduceRange) keep every pair in range.
// Machines with VNNI, ARM's dot-product instructions and GPUs have no such limit.
func HostSaturatesU8S8() bool {
	return runtime.GOARCH == "amd64" && !cpu.X86.HasAVX512VNNI && !cpu.X86.HasAVXVNNI
}

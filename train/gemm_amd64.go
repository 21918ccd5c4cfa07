//go:build amd64 && !purego

package train

import "golang.org/x/sys/cpu"

// gemmAsm says whether sgemm runs on the packed assembly kernels (gemm_packed.go,
// gemm_amd64.s), which need AVX2 and FMA; without them it takes the pure-Go kernels.
// gemm512 picks the AVX-512 micro-kernel over the AVX2 one where the CPU (and the OS)
// have AVX-512F. Variables, so that tests can compare the paths.
var (
	gemmAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	gemm512 = gemmAsm && cpu.X86.HasAVX512F
)

// gemmAVX512 is the AVX-512 blocking: 8×32 tiles (16 of the 32 ZMM registers), slices of
// k up to 256 (a B micro-panel of 32 KiB in L1), blocks of 96×128.
var gemmAVX512 = gemmBlocking{mr: 8, nr: 32, kc: gemmKC, mc: 12 * 8, nc: 4 * 32, kernel: gemmKernel8x32}

// gemmAsmKernels lists the assembly micro-kernels this machine runs (for the tests).
func gemmAsmKernels() []gemmBlocking {
	var ks []gemmBlocking
	if gemmAsm {
		ks = append(ks, gemmAVX2)
	}
	if gemm512 {
		ks = append(ks, gemmAVX512)
	}
	return ks
}

func gemmBlock() gemmBlocking {
	if gemm512 {
		return gemmAVX512
	}
	return gemmAVX2
}

// gemmKernel6x16 computes a 6×16 tile of C from a packed 6-row panel of A and 16
// columns of B (rows ldb apart: a packed panel or B itself) over k with AVX2 and FMA
// (gemm_amd64.s): C = alpha·A·B, or with load C = alpha·A·B + beta·C. Each element's k products are summed in order in one
// register lane with fused multiply-adds.
//
//go:noescape
func gemmKernel6x16(k int, a, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, load bool)

// gemmKernel8x32 is gemmKernel6x16 for an 8×32 tile with AVX-512 (same sums, same order).
//
//go:noescape
func gemmKernel8x32(k int, a, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, load bool)

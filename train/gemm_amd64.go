//go:build amd64 && !purego

package train

import "golang.org/x/sys/cpu"

// gemmAsm says whether sgemm runs on the packed AVX2/FMA kernel (gemm_packed.go,
// gemm_amd64.s); without AVX2 and FMA it takes the pure-Go kernels. A variable, so that
// tests can compare the two paths.
var gemmAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gemmKernel6x16 computes a 6×16 tile of C from a packed 6-row panel of A and a packed
// 16-column panel of B over k (gemm_amd64.s): C = alpha·A·B, or with load
// C = alpha·A·B + beta·C. Each element's k products are summed in order in one
// register lane with fused multiply-adds.
//
//go:noescape
func gemmKernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, load bool)

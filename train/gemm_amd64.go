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
var gemmAVX512 = gemmBlocking{mr: 8, nr: 32, kc: gemmKC, mc: 12 * 8, nc: 4 * 32}

// gemmMicro calls the micro-kernel of the blocking whose tiles are nr wide (direct
// calls, so that a tile on the caller's stack stays there).
func gemmMicro(nr, k int, a, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, load bool) {
	if nr == 32 {
		gemmKernel8x32(k, a, b, ldb, c, ldc, alpha, beta, load)
		return
	}
	gemmKernel6x16(k, a, b, ldb, c, ldc, alpha, beta, load)
}

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

// transposePack8 transposes 8 rows of src (lds floats apart) into 8 columns of dst (rows
// ldd floats apart) for the first 8·n8 columns of src, with AVX (gemm_amd64.s):
// dst[p·ldd+r] = src[r·lds+p].
//
//go:noescape
func transposePack8(dst *float32, ldd int, src *float32, lds int, n8 int)

// packBTrans8 packs 8 columns of op(B) = 8 rows of B (transposed) into a k-major panel
// with transposePack8 where the assembly kernels run (and returns false elsewhere).
func packBTrans8(dst []float32, ldd int, src []float32, lds, k int) bool {
	if !gemmAsm || k < 8 {
		return false
	}
	k8 := k / 8
	_ = src[7*lds+k8*8-1]
	_ = dst[(k8*8-1)*ldd+7]
	transposePack8(&dst[0], ldd, &src[0], lds, k8)
	for p := k8 * 8; p < k; p++ {
		for r := range 8 {
			dst[p*ldd+r] = src[r*lds+p]
		}
	}
	return true
}

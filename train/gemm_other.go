//go:build !amd64 || purego

package train

// gemmAsm is false where there is no assembly micro-kernel: sgemm takes the pure-Go
// kernels (sgemmDot, sgemmGer, gonum's Sgemm).
var gemmAsm = false

// gemm512 (the AVX-512 micro-kernel) is false here too.
var gemm512 = false

// gemmAsmKernels lists the assembly micro-kernels this machine runs: none here.
func gemmAsmKernels() []gemmBlocking { return nil }

func gemmBlock() gemmBlocking { return gemmAVX2 }

// gemmMicro runs the Go micro-kernel (6×16 tiles only).
func gemmMicro(nr, k int, a, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, load bool) {
	gemmKernel6x16(k, a, b, ldb, c, ldc, alpha, beta, load)
}

// gemmKernel6x16 is the packed micro-kernel in Go (gemmKernelGo), for the tests of the
// packed driver on other architectures; sgemm does not use it there.
func gemmKernel6x16(k int, a, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, load bool) {
	gemmKernelGo(gemmMR, gemmNR, k, a, b, ldb, c, ldc, alpha, beta, load)
}

// packBTrans8 has no assembly here: packB takes its Go loops.
func packBTrans8(dst []float32, ldd int, src []float32, lds, k int) bool { return false }

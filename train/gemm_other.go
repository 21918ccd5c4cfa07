//go:build !amd64 || purego

package train

// gemmAsm is false where there is no assembly micro-kernel: sgemm takes the pure-Go
// kernels (sgemmDot, sgemmGer, gonum's Sgemm).
var gemmAsm = false

// gemmKernel6x16 is the packed micro-kernel in Go (gemmKernelGo), for the tests of the
// packed driver on other architectures; sgemm does not use it there.
func gemmKernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, load bool) {
	gemmKernelGo(k, a, b, c, ldc, alpha, beta, load)
}

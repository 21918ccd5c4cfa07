//go:build !amd64 || purego

package calibrate

// scanAVX2 is false: no assembly kernel on this architecture (or with -tags purego).
var scanAVX2 = false

// scanBlocks folds whole blocks of x into acc until a block holds a non-finite value,
// and returns the number of blocks folded.
func scanBlocks(x []float32, k float64, acc *scanAcc) int { return scanBlocksGo(x, k, acc) }

// binBlocks bins nothing without the assembly kernel: binSplit's Go loop does it all.
func binBlocks(x []float32, abs bool, k int, off int64, part []uint32, nbins int, amin *float32) (done int, zeros int64) {
	return 0, 0
}

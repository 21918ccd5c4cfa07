//go:build amd64 && !purego

package calibrate

import (
	"math"

	"golang.org/x/sys/cpu"
)

// scanAVX2 says whether scanBlocks runs the assembly kernel (a variable, so that tests
// compare it with the pure-Go one).
var scanAVX2 = cpu.X86.HasAVX2

// scanBlocksAVX2 is scanBlocksGo on blocks whole blocks from x, in AVX2 (scan_amd64.s).
//
//go:noescape
func scanBlocksAVX2(x *float32, blocks int, k float64, acc *scanAcc) int

// scanBlocks folds whole blocks of x into acc until a block holds a non-finite value,
// and returns the number of blocks folded.
func scanBlocks(x []float32, k float64, acc *scanAcc) int {
	if !scanAVX2 || len(x) < scanLanes {
		return scanBlocksGo(x, k, acc)
	}
	return scanBlocksAVX2(&x[0], len(x)/scanLanes, k, acc)
}

//go:noescape
func binSignedAVX2(x *float32, blocks int, inv float32, off int32, part *uint32, nbins int) (done, zeros int)

//go:noescape
func binAbsAVX2(x *float32, blocks int, inv float32, part *uint32, nbins int, amin *float32) (done, zeros int)

// binBlocks bins the whole blocks of 8 at the start of x (every value finite and inside
// the window) into the four partial histograms part (binSplit's), value i of a block
// into partial i mod 4, in AVX2; it returns how many values it binned (0 when the kernel
// cannot: no AVX2, a width whose inverse is no normal float32, a window too far from 0
// for 32-bit bin numbers; it also stops before a block with a value outside the window,
// which the Go loop then meets) and how many were ±0. For an |x| histogram (abs) it lowers
// *amin to the smallest |v|.
func binBlocks(x []float32, abs bool, k int, off int64, part []uint32, nbins int, amin *float32) (done int, zeros int64) {
	blocks := len(x) / 8
	if !scanAVX2 || blocks == 0 || k < -126 || k > 126 || off < -1<<30 || off > 1<<30 {
		return 0, 0
	}
	inv := float32(math.Ldexp(1, -k))
	var blk, z int
	if abs {
		blk, z = binAbsAVX2(&x[0], blocks, inv, &part[0], nbins, amin)
	} else {
		blk, z = binSignedAVX2(&x[0], blocks, inv, int32(off), &part[0], nbins)
	}
	return blk * 8, int64(z)
}

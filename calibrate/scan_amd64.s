//go:build amd64 && !purego

#include "textflag.h"

// func scanBlocksAVX2(x *float32, blocks int, k float64, acc *scanAcc) int
//
// scanBlocksGo in AVX2 (scan.go): for each block of 16 floats, stop before it if a value
// is not finite (v-v is not +0), else lane l's minimum and maximum (VMINPS/VMAXPS with the
// running value first: the running one stays unless the new one is smaller/larger) and
// its sums Σd and Σd², d = float64(v)-k (a multiply and an add: no FMA, as in Go).
// Registers: Y0..Y3 the sums Σd of lanes 0-3, 4-7, 8-11, 12-15; Y4..Y7 the sums Σd²;
// Y8, Y9 the minima of lanes 0-7, 8-15; Y10, Y11 the maxima; Y12, Y13 the block; Y14 a
// temporary; Y15 k in each lane.
TEXT ·scanBlocksAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	VBROADCASTSD k+16(FP), Y15
	MOVQ acc+24(FP), DI
	VMOVUPD 0(DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
	VMOVUPD 128(DI), Y4
	VMOVUPD 160(DI), Y5
	VMOVUPD 192(DI), Y6
	VMOVUPD 224(DI), Y7
	VMOVUPS 256(DI), Y8
	VMOVUPS 288(DI), Y9
	VMOVUPS 320(DI), Y10
	VMOVUPS 352(DI), Y11
	XORQ AX, AX

loop:
	CMPQ AX, CX
	JGE  done
	VMOVUPS 0(SI), Y12
	VMOVUPS 32(SI), Y13
	VSUBPS  Y12, Y12, Y14
	VPTEST  Y14, Y14
	JNE     done
	VSUBPS  Y13, Y13, Y14
	VPTEST  Y14, Y14
	JNE     done

	VMINPS Y12, Y8, Y8
	VMINPS Y13, Y9, Y9
	VMAXPS Y12, Y10, Y10
	VMAXPS Y13, Y11, Y11

	VCVTPS2PD    X12, Y14
	VSUBPD       Y15, Y14, Y14
	VADDPD       Y14, Y0, Y0
	VMULPD       Y14, Y14, Y14
	VADDPD       Y14, Y4, Y4
	VEXTRACTF128 $1, Y12, X14
	VCVTPS2PD    X14, Y14
	VSUBPD       Y15, Y14, Y14
	VADDPD       Y14, Y1, Y1
	VMULPD       Y14, Y14, Y14
	VADDPD       Y14, Y5, Y5
	VCVTPS2PD    X13, Y14
	VSUBPD       Y15, Y14, Y14
	VADDPD       Y14, Y2, Y2
	VMULPD       Y14, Y14, Y14
	VADDPD       Y14, Y6, Y6
	VEXTRACTF128 $1, Y13, X14
	VCVTPS2PD    X14, Y14
	VSUBPD       Y15, Y14, Y14
	VADDPD       Y14, Y3, Y3
	VMULPD       Y14, Y14, Y14
	VADDPD       Y14, Y7, Y7

	ADDQ $64, SI
	INCQ AX
	JMP  loop

done:
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VMOVUPD Y4, 128(DI)
	VMOVUPD Y5, 160(DI)
	VMOVUPD Y6, 192(DI)
	VMOVUPD Y7, 224(DI)
	VMOVUPS Y8, 256(DI)
	VMOVUPS Y9, 288(DI)
	VMOVUPS Y10, 320(DI)
	VMOVUPS Y11, 352(DI)
	VZEROUPPER
	MOVQ AX, ret+32(FP)
	RET

// COUNT8 adds 1 to the count of each of the 8 bins in Y1, bin i in the partial
// histogram at R8, R9, R10, R11 for i mod 4 = 0, 1, 2, 3 (clobbers X2, AX, BX, DX).
#define COUNT8 \
	VEXTRACTI128 $1, Y1, X2 \
	VMOVQ        X1, AX \
	VPEXTRQ      $1, X1, BX \
	MOVL         AX, DX \
	SHRQ         $32, AX \
	INCL         (R8)(DX*4) \
	INCL         (R9)(AX*4) \
	MOVL         BX, DX \
	SHRQ         $32, BX \
	INCL         (R10)(DX*4) \
	INCL         (R11)(BX*4) \
	VMOVQ        X2, AX \
	VPEXTRQ      $1, X2, BX \
	MOVL         AX, DX \
	SHRQ         $32, AX \
	INCL         (R8)(DX*4) \
	INCL         (R9)(AX*4) \
	MOVL         BX, DX \
	SHRQ         $32, BX \
	INCL         (R10)(DX*4) \
	INCL         (R11)(BX*4)

// SUMZEROS adds the 8 int32 counts of Y12 into AX (clobbers X0, X1).
#define SUMZEROS \
	VEXTRACTI128 $1, Y12, X0 \
	VPADDD       X0, X12, X0 \
	VPSHUFD      $0x4E, X0, X1 \
	VPADDD       X1, X0, X0 \
	VPSHUFD      $0xB1, X0, X1 \
	VPADDD       X1, X0, X0 \
	VMOVD        X0, AX

// INRANGE sets the flags for JNE to leave when a bin of Y1 is not below nbins (Y9 holds
// nbins-1: a negative bin is a large unsigned one): no count is written outside the
// histogram, whatever the caller passed (clobbers Y4, BX).
#define INRANGE \
	VPMINUD   Y9, Y1, Y4 \
	VPCMPEQD  Y4, Y1, Y4 \
	VMOVMSKPS Y4, BX \
	CMPL      BX, $0xff

// func binSignedAVX2(x *float32, blocks int, inv float32, off int32, part *uint32, nbins int) (done, zeros int)
//
// binSplit's signed loop on blocks whole blocks of 8 values (histogram.go): bin
// ⌊v·inv⌋ (truncated toward 0, less 1 for a negative v other than -0) - off, counted
// in partial histogram i mod 4 (part, 4·nbins 32-bit counts) for value i of a block.
// inv is a power of two whose product with every value (all inside the window) is exact
// or, underflowing, below 1 in magnitude as the exact one is. It stops before a block
// with a bin outside [0, nbins) and returns the blocks binned and their number of ±0.
TEXT ·binSignedAVX2(SB), NOSPLIT, $0-56
	MOVQ         x+0(FP), SI
	MOVQ         blocks+8(FP), CX
	VBROADCASTSS inv+16(FP), Y15
	MOVL         off+20(FP), AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	MOVQ         part+24(FP), R8
	MOVQ         nbins+32(FP), DX
	LEAQ         -1(DX), AX
	VMOVD        AX, X9
	VPBROADCASTD X9, Y9
	SHLQ         $2, DX
	LEAQ         (R8)(DX*1), R9
	LEAQ         (R9)(DX*1), R10
	LEAQ         (R10)(DX*1), R11
	VXORPS       Y13, Y13, Y13
	VPXOR        Y12, Y12, Y12

sloop:
	TESTQ      CX, CX
	JEQ        sdone
	VMOVUPS    (SI), Y0
	VMULPS     Y15, Y0, Y1
	VCVTTPS2DQ Y1, Y1
	VCMPPS     $1, Y13, Y0, Y2 // v < 0: -1
	VPADDD     Y2, Y1, Y1
	VPSUBD     Y14, Y1, Y1
	INRANGE
	JNE        sdone
	VCMPPS     $0, Y13, Y0, Y3 // v == ±0: -1
	VPSUBD     Y3, Y12, Y12
	COUNT8
	ADDQ       $32, SI
	DECQ       CX
	JMP        sloop

sdone:
	SUMZEROS
	VZEROUPPER
	MOVQ         AX, zeros+48(FP)
	MOVQ         blocks+8(FP), AX
	SUBQ         CX, AX
	MOVQ         AX, done+40(FP)
	RET

// func binAbsAVX2(x *float32, blocks int, inv float32, part *uint32, nbins int, amin *float32) (done, zeros int)
//
// binSplit's |x| loop, as binSignedAVX2: bin ⌊|v|·inv⌋; *amin lowered to the smallest |v|.
TEXT ·binAbsAVX2(SB), NOSPLIT, $0-64
	MOVQ         x+0(FP), SI
	MOVQ         blocks+8(FP), CX
	VBROADCASTSS inv+16(FP), Y15
	MOVQ         part+24(FP), R8
	MOVQ         nbins+32(FP), DX
	MOVQ         amin+40(FP), DI
	LEAQ         -1(DX), AX
	VMOVD        AX, X9
	VPBROADCASTD X9, Y9
	VBROADCASTSS (DI), Y10
	SHLQ         $2, DX
	LEAQ         (R8)(DX*1), R9
	LEAQ         (R9)(DX*1), R10
	LEAQ         (R10)(DX*1), R11
	VXORPS       Y13, Y13, Y13
	VPXOR        Y12, Y12, Y12
	VPCMPEQD     Y11, Y11, Y11
	VPSRLD       $1, Y11, Y11 // 0x7fffffff: the sign bit cleared

aloop:
	TESTQ      CX, CX
	JEQ        adone
	VMOVUPS    (SI), Y0
	VANDPS     Y11, Y0, Y0
	VMULPS     Y15, Y0, Y1
	VCVTTPS2DQ Y1, Y1
	INRANGE
	JNE        adone
	VMINPS     Y0, Y10, Y10
	VCMPPS     $0, Y13, Y0, Y3
	VPSUBD     Y3, Y12, Y12
	COUNT8
	ADDQ       $32, SI
	DECQ       CX
	JMP        aloop

adone:
	VEXTRACTF128 $1, Y10, X0
	VMINPS       X0, X10, X0
	VPSHUFD      $0x4E, X0, X1
	VMINPS       X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VMINPS       X1, X0, X0
	VMOVSS       X0, (DI)
	SUMZEROS
	VZEROUPPER
	MOVQ         AX, zeros+56(FP)
	MOVQ         blocks+8(FP), AX
	SUBQ         CX, AX
	MOVQ         AX, done+48(FP)
	RET

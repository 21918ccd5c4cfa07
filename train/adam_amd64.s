//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX2(w, grad, m, v *float32, blocks int, gscale, l2, b1, ob1, b2, ob2, invSqrtBc2, eps, decay, stepSize float32)
//
// adamUpdate's loop (optim.go) 8 elements at a time, each operation rounded to float32
// as in Go (no FMA):
//
//	d = g·gscale + l2·w;  m = b1·m + ob1·d;  v = b2·v + (ob2·d)·d
//	w = w·decay - (stepSize·m) / (sqrt(v)·invSqrtBc2 + eps)
//
// Y6..Y15 hold the constants; Y0..Y5 are temporaries.
TEXT ·adamAVX2(SB), NOSPLIT, $0-80
	MOVQ         w+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         m+16(FP), R8
	MOVQ         v+24(FP), R9
	MOVQ         blocks+32(FP), CX
	VBROADCASTSS gscale+40(FP), Y15
	VBROADCASTSS l2+44(FP), Y14
	VBROADCASTSS b1+48(FP), Y13
	VBROADCASTSS ob1+52(FP), Y12
	VBROADCASTSS b2+56(FP), Y11
	VBROADCASTSS ob2+60(FP), Y10
	VBROADCASTSS invSqrtBc2+64(FP), Y9
	VBROADCASTSS eps+68(FP), Y8
	VBROADCASTSS decay+72(FP), Y7
	VBROADCASTSS stepSize+76(FP), Y6

loop:
	TESTQ   CX, CX
	JEQ     done
	VMOVUPS (DI), Y1         // w
	VMULPS  (SI), Y15, Y0    // g·gscale
	VMULPS  Y1, Y14, Y2      // l2·w
	VADDPS  Y2, Y0, Y0       // d
	VMULPS  (R8), Y13, Y2    // b1·m
	VMULPS  Y0, Y12, Y3      // ob1·d
	VADDPS  Y3, Y2, Y2       // m
	VMOVUPS Y2, (R8)
	VMULPS  (R9), Y11, Y3    // b2·v
	VMULPS  Y0, Y10, Y4      // ob2·d
	VMULPS  Y0, Y4, Y4       // (ob2·d)·d
	VADDPS  Y4, Y3, Y3       // v
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y3
	VMULPS  Y9, Y3, Y3
	VADDPS  Y8, Y3, Y3       // den
	VMULPS  Y2, Y6, Y2       // stepSize·m
	VDIVPS  Y3, Y2, Y2       // / den
	VMULPS  Y7, Y1, Y1       // w·decay
	VSUBPS  Y2, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, R9
	DECQ    CX
	JMP     loop

done:
	VZEROUPPER
	RET

//go:build amd64 && !purego

package train

import "golang.org/x/sys/cpu"

// adamAsm says whether adamUpdate runs its AVX2 kernel (a variable, so that tests
// compare it with the Go loop).
var adamAsm = cpu.X86.HasAVX2

// adamAVX2 is adamUpdate's loop on blocks whole blocks of 8 elements (adam_amd64.s).
//
//go:noescape
func adamAVX2(w, grad, m, v *float32, blocks int, gscale, l2, b1, ob1, b2, ob2, invSqrtBc2, eps, decay, stepSize float32)

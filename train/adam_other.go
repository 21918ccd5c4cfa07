//go:build !amd64 || purego

package train

// adamAsm is false: no assembly kernel here; adamUpdate's Go loop does all.
var adamAsm = false

func adamAVX2(w, grad, m, v *float32, blocks int, gscale, l2, b1, ob1, b2, ob2, invSqrtBc2, eps, decay, stepSize float32) {
	panic("train: no Adam kernel on this architecture")
}

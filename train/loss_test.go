package train

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// lossFD checks a loss's gradient w.r.t. its first argument by central differences.
func lossFD(t *testing.T, name string, x *Tensor, f func() float64, grad *Tensor) {
	t.Helper()
	for i := range x.Data {
		o := x.Data[i]
		x.Data[i] = o + 1e-2
		lp := f()
		x.Data[i] = o - 1e-2
		lm := f()
		x.Data[i] = o
		fd := (lp - lm) / 2e-2
		if math.Abs(fd-float64(grad.Data[i])) > 1e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("%s: d/dx[%d] finite difference %.6f, gradient %.6f", name, i, fd, grad.Data[i])
		}
	}
}

func TestLossesAgainstReferences(t *testing.T) {
	s := NewTensor([]int{2, 3}, []float32{1, 2, 3, 0.5, -1, 2})
	tc := NewTensor([]int{2, 3}, []float32{3, 2, 1, 0, 0, 1})

	// References from PyTorch 1.13: kl_div(log_softmax(s/T), softmax(t/T), 'batchmean')·T²
	// and cross_entropy, with their gradients.
	kl, g := KL(s, tc, 2)
	if !near(kl, 0.7926830649375916, 1e-6) {
		t.Errorf("KL = %.9f, want 0.792683065", kl)
	}
	wantG := []float64{-0.32015669345855713, 0, 0.32015666365623474, 0.004532039165496826, -0.1424669772386551, 0.13793492317199707}
	for i, w := range wantG {
		if math.Abs(float64(g.Data[i])-w) > 1e-6 {
			t.Errorf("KL grad[%d] = %v, want %v", i, g.Data[i], w)
		}
	}
	lossFD(t, "KL", s, func() float64 { l, _ := KL(s, tc, 2); return l }, g)

	ce, g := CrossEntropy(s, []int{0, 2})
	if !near(ce, 1.3244585990905762, 1e-6) {
		t.Errorf("CrossEntropy = %.9f, want 1.324458599", ce)
	}
	wantG = []float64{-0.45498472452163696, 0.12236424535512924, 0.3326205015182495, 0.08764519542455673, 0.019556285813450813, -0.107201486825943}
	for i, w := range wantG {
		if math.Abs(float64(g.Data[i])-w) > 1e-6 {
			t.Errorf("CrossEntropy grad[%d] = %v, want %v", i, g.Data[i], w)
		}
	}
	lossFD(t, "CrossEntropy", s, func() float64 { l, _ := CrossEntropy(s, []int{0, 2}); return l }, g)

	// One row by hand: −log softmax([1,2,3])[0] = log(e + e² + e³) − 1.
	l, _ := CrossEntropy(NewTensor([]int{1, 3}, []float32{1, 2, 3}), []int{0})
	if want := math.Log(math.E+math.Exp(2)+math.Exp(3)) - 1; !near(l, want, 1e-12) {
		t.Errorf("CrossEntropy by hand = %v, want %v", l, want)
	}

	// Soft cross-entropy = KL + T²·H(teacher), with the same gradient.
	sce, gs := SoftCrossEntropy(s, tc, 2)
	var h float64
	for r := range 2 {
		var z float64
		for i := range 3 {
			z += math.Exp(float64(tc.Data[r*3+i]) / 2)
		}
		for i := range 3 {
			p := math.Exp(float64(tc.Data[r*3+i])/2) / z
			h -= p * math.Log(p)
		}
	}
	if want := kl + 4*h/2; !near(sce, want, 1e-9) {
		t.Errorf("SoftCrossEntropy = %v, want KL + T²H = %v", sce, want)
	}
	_, gk := KL(s, tc, 2)
	for i := range gs.Data {
		if gs.Data[i] != gk.Data[i] {
			t.Fatalf("SoftCrossEntropy and KL gradients differ at %d", i)
		}
	}

	// MSE by hand.
	a := NewTensor([]int{2, 2}, []float32{1, 2, 3, 4})
	b := NewTensor([]int{2, 2}, []float32{0, 2, 5, 1})
	mse, gm := MSE(a, b)
	if want := (1.0 + 0 + 4 + 9) / 4; !near(mse, want, 1e-12) {
		t.Errorf("MSE = %v, want %v", mse, want)
	}
	for i, w := range []float32{0.5, 0, -1, 1.5} {
		if gm.Data[i] != w {
			t.Errorf("MSE grad[%d] = %v, want %v", i, gm.Data[i], w)
		}
	}
	lossFD(t, "MSE", a, func() float64 { l, _ := MSE(a, b); return l }, gm)

	// KL at T = 1 and the high-temperature limit: T²·KL → mean((zs − zt)²)/(2N) for
	// zero-mean logits.
	zs := NewTensor([]int{1, 4}, []float32{0.3, -0.1, 0.2, -0.4})
	zt := NewTensor([]int{1, 4}, []float32{-0.2, 0.1, 0.4, -0.3})
	hi, _ := KL(zs, zt, 1000)
	var want float64
	for i := range 4 {
		d := float64(zs.Data[i] - zt.Data[i])
		want += d * d / (2 * 4)
	}
	if !near(hi, want, 1e-3) {
		t.Errorf("KL at T=1000: %v, the MSE limit %v", hi, want)
	}
}

func TestLossesHugeLogits(t *testing.T) {
	big := NewTensor([]int{2, 3}, []float32{1e4, -1e4, 0, -1e4, 1e4, 1e4})
	other := NewTensor([]int{2, 3}, []float32{-1e4, 1e4, 0, 1e4, -1e4, -1e4})
	check := func(name string, l float64, g *Tensor) {
		t.Helper()
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Errorf("%s: loss %v", name, l)
		}
		for i, v := range g.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Errorf("%s: grad[%d] = %v", name, i, v)
			}
		}
	}
	for _, T := range []float64{1, 4, 20} {
		l, g := KL(big, other, T)
		check("KL", l, g)
		if l <= 0 {
			t.Errorf("KL of opposite logits at T=%v: %v, want > 0", T, l)
		}
		l, g = KL(big, big, T)
		check("KL same", l, g)
		if math.Abs(l) > 1e-9 {
			t.Errorf("KL of equal logits at T=%v: %v, want 0", T, l)
		}
		l, g = SoftCrossEntropy(big, other, T)
		check("SoftCrossEntropy", l, g)
	}
	l, g := CrossEntropy(big, []int{0, 1})
	check("CrossEntropy right", l, g)
	if !near(l, math.Log(2)/2, 1e-9) { // row 2 splits between two equal logits
		t.Errorf("CrossEntropy with confident right answers = %v, want log(2)/2", l)
	}
	l, g = CrossEntropy(big, []int{1, 0})
	check("CrossEntropy wrong", l, g)
	if want := 2e4 + math.Log(2)/2; !near(l, want, 1e-9) {
		t.Errorf("CrossEntropy with confident wrong answers = %v, want %v", l, want)
	}
	l, g = MSE(big, other)
	check("MSE", l, g)
}

func TestLossPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"shapes":      func() { KL(Zeros(2, 3), Zeros(3, 2), 1) },
		"temperature": func() { KL(Zeros(2, 3), Zeros(2, 3), 0) },
		"labels":      func() { CrossEntropy(Zeros(2, 3), []int{0}) },
		"label range": func() { CrossEntropy(Zeros(1, 3), []int{3}) },
		"mse":         func() { MSE(Zeros(2), Zeros(3)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

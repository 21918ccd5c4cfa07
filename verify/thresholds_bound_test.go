package verify

import (
	"strconv"
	"testing"
)

// TestAccuracyDropAtTheBound: accuracy_drop is 100·(ref − cand) in float64, which for
// accuracies of counts over a total is not the exact drop: with 10,000 MNIST test
// images, 98.78% → 97.78% computes 1 + 8.9e-16. A drop equal to its bound passes
// (docs/config.md: <= value), for every pair of counts over a few totals and bounds
// written in decimal, and a bound 1e-10 points below the drop (less than one sample in
// 10¹²) still fails: the slack for rounding lets no real miss pass.
func TestAccuracyDropAtTheBound(t *testing.T) {
	judge := func(i, j, n int, bound float64) []string {
		ref, cand := float64(i)/float64(n), float64(j)/float64(n)
		m := Metrics{Output: "logits", RefAccuracy: &ref, CandAccuracy: &cand}
		return Judge(Thresholds{"accuracy_drop": bound}, "cpu", []Metrics{m})
	}
	for _, c := range [][3]int{{9878, 9778, 10000}, {99, 98, 100}, {4, 3, 100}} {
		bound := float64(100*(c[0]-c[1])) / float64(c[2])
		if r := judge(c[0], c[1], c[2], bound); len(r) != 0 {
			t.Errorf("%d/%d → %d/%d, accuracy_drop: %g: %q; a drop equal to the bound passes", c[0], c[2], c[1], c[2], bound, r)
		}
	}
	for _, n := range []int{3, 7, 100, 1000, 10000, 50000} {
		step := max(1, n/150)
		for i := 0; i <= n; i += step {
			for j := 0; j <= n; j += step {
				// The bound as a configuration writes it: the drop in decimal, parsed.
				s := strconv.FormatFloat(float64(100*(i-j))/float64(n), 'g', -1, 64)
				bound, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatal(err)
				}
				if r := judge(i, j, n, bound); len(r) != 0 {
					t.Fatalf("%d/%d → %d/%d, accuracy_drop: %s: %q; a drop equal to the bound passes", i, n, j, n, s, r)
				}
				if r := judge(i, j, n, bound-1e-10); len(r) != 1 {
					t.Fatalf("%d/%d → %d/%d, accuracy_drop: %s - 1e-10: %q; want a miss", i, n, j, n, s, r)
				}
			}
		}
	}
	// A drop given with more digits than float64 keeps, as a user might write 1/3.
	if r := judge(1, 0, 3, 33.333333333333333333); len(r) != 0 {
		t.Errorf("1/3 → 0, accuracy_drop: 33.333…: %q; want a pass", r)
	}
	if r := judge(1, 0, 3, 33.3333333333); len(r) != 1 {
		t.Errorf("1/3 → 0, accuracy_drop: 33.3333333333: %q; want a miss", r)
	}
}

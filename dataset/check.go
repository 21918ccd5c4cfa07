package dataset

import (
	"fmt"
	"math"
	"slices"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// CheckFinite returns an error naming the input, its file and the sample of the first NaN or
// infinity in a batch's floating-point inputs (inputs in name order), or nil when all
// are finite. Calibration calls it: one bad value would wreck a tensor's range.
func CheckFinite(b *Batch) error {
	for _, name := range slices.Sorted(mapKeys(b.Inputs)) {
		t := b.Inputs[name]
		i, v := firstNonFinite(t.Data)
		if i < 0 {
			continue
		}
		per := 1
		if b.N > 0 {
			per = max(1, t.Len()/b.N)
		}
		s := i / per
		where := fmt.Sprintf("sample %d", b.Index+s)
		if s < len(b.Rows) {
			where += fmt.Sprintf(" (row %d of the data)", b.Rows[s])
		}
		from := ""
		if f := b.Files[name]; f != "" {
			from = " (" + f + ")"
		}
		return fmt.Errorf("input %q%s, %s: element %d is %v; clean the data or drop the sample", name, from, where, i%per, v)
	}
	return nil
}

// firstNonFinite returns the index and value of the first NaN or infinity, or -1.
func firstNonFinite(data any) (int, float64) {
	switch s := data.(type) {
	case []float32:
		for i, v := range s {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				return i, f
			}
		}
	case []float64:
		for i, f := range s {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return i, f
			}
		}
	case []float16.Float16:
		for i, v := range s {
			if v.IsNaN() || v.IsInf(0) {
				return i, float64(v.Float32())
			}
		}
	case []onnxio.BFloat16:
		for i, v := range s {
			if f := float64(v.Float32()); math.IsNaN(f) || math.IsInf(f, 0) {
				return i, f
			}
		}
	}
	return -1, 0
}

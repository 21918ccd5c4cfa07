package verify

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/dataset"
)

// checkInputs refuses a batch whose floating-point inputs hold NaN or infinity: the
// reference's outputs would be NaN too, and the comparison would judge the model on the
// remaining values only.
func checkInputs(b *dataset.Batch) error {
	if err := dataset.CheckFinite(b); err != nil {
		return fmt.Errorf("verify data: %w", err)
	}
	return nil
}

// checkLabels refuses a label outside the classes of the classifier output it scores:
// such a label can never match, and accuracy would be low for a reason that is not the
// model's.
func checkLabels(b *dataset.Batch, labels []int64, classes int, output string) error {
	for i, l := range labels {
		if l >= 0 && l < int64(classes) {
			continue
		}
		where := fmt.Sprintf("sample %d", b.Index+i)
		if i < len(b.Rows) {
			where += fmt.Sprintf(" (row %d of the data)", b.Rows[i])
		}
		return fmt.Errorf("label %d of %s is outside the %d classes of output %q (0..%d); check the labels file", l, where, classes, output, classes-1)
	}
	return nil
}

package calibrate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/internal/testutil"
)

// Every calibration method keeps the trained MNIST CNN within 0.1 point of the float
// model's accuracy on the 10,000 test images, with 1,000 training images to calibrate
// (entropy once lost 28 points there: the first ReLU's range clipped to 0.55 of 7.3 by
// the background's spikes).
func TestEveryMethodKeepsMNISTAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("four calibrations and verifications on 10,000 images")
	}
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range calibrate.Methods {
		t.Run(string(m), func(t *testing.T) {
			out := t.TempDir()
			cfg := fmt.Sprintf(`model: %s
output: %s
datasets:
  calib: {format: idx, inputs: {input: %s}, limit: 1000, batch: 100, shuffle: 1}
  test: {format: idx, inputs: {input: %s}, labels: %s, batch: 250}
stages:
  - calibrate: {dataset: calib, method: %s}
  - quantize: {mode: static}
  - verify: {dataset: test, reference: input, providers: [cpu], latency: {runs: 0}}
`, testutil.Fixture("mnist_cnn.onnx"), filepath.Join(out, "m.onnx"), filepath.Join(dir, mnist.TrainImages),
				filepath.Join(dir, mnist.TestImages), filepath.Join(dir, mnist.TestLabels), m)
			path := filepath.Join(out, "c.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			res := testutil.RunConfig(t, path)
			o := res.Outcomes[0]
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			var ref, acc float64
			for _, s := range o.Report.Stages {
				for _, mt := range s.Metrics {
					switch {
					case s.Stage == "verify" && mt.Name == "reference_accuracy":
						ref = float64(mt.Value)
					case s.Stage == "verify" && mt.Name == "accuracy":
						acc = float64(mt.Value)
					}
				}
			}
			t.Logf("%s: float %.2f%%, int8 %.2f%%", m, 100*ref, 100*acc)
			if ref == 0 || acc < ref-0.001 {
				t.Errorf("%s: int8 accuracy %.2f%%, float %.2f%%: more than 0.1 point lost", m, 100*acc, 100*ref)
			}
		})
	}
}

package quantize_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// The verdict without thresholds: a quantization that breaks the model (the input's
// range overridden to [0, 0.01] of the MNIST images' [0, 1]) is rejected by min_sqnr_db on
// the check samples, with the output and its dB; min_sqnr_db: 0 keeps it; a verify with
// auto_exclude after the stage takes the verdict over (a warning at quantize). A sound
// quantization passes with its check SQNR in the report. A quantization of nothing fails
// unless allow_none.
func TestMinSQNRVerdict(t *testing.T) {
	broken := `overrides: {input: {min: 0, max: 0.01}}`
	for _, c := range []struct {
		name, quantize, after string
		status                string
		want                  string // in the quantize stage's error or warnings
	}{
		{"sound", `{mode: static}`, "", pipeline.StatusOK, ""},
		{"broken", `{mode: static, ` + broken + `}`, "", pipeline.StatusRejected, `under min_sqnr_db 15`},
		{"broken, floor off", `{mode: static, min_sqnr_db: 0, ` + broken + `}`, "", pipeline.StatusOK, ""},
		{"nothing quantized", `{mode: static, op_types: [ConvTranspose]}`, "", pipeline.StatusFailed, "no node was quantized"},
		{"dynamic finds no MatMul or Gemm", `{mode: dynamic, op_types: [Conv]}`, "", pipeline.StatusFailed, "dynamic mode quantizes those only; a conv net wants mode: static"},
		{"nothing quantized, allowed", `{mode: static, op_types: [ConvTranspose], allow_none: true}`, "", pipeline.StatusOK, "no node was quantized"},
		{"broken, auto_exclude judges", `{mode: static, ` + broken + `}`,
			"  - verify: {dataset: train, auto_exclude: {max_tries: 1}, thresholds: {sqnr_db: 1}, latency: {runs: 0}}\n",
			"", "the verify with auto_exclude after this stage judges"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testutil.MNISTConfig(t, "q.onnx", 64, 0, "  - calibrate: {dataset: train}\n  - quantize: "+c.quantize+"\n"+c.after)
			o := testutil.RunConfig(t, cfg).Outcomes[0]
			if c.status != "" && o.Status != c.status {
				t.Fatalf("status %s (%v), want %s", o.Status, o.Err, c.status)
			}
			var text string
			var checked bool
			for _, s := range o.Report.Stages {
				if s.Stage != "quantize" {
					continue
				}
				text = s.Error + " " + strings.Join(s.Warnings, " ")
				for _, m := range s.Metrics {
					checked = checked || m.Name == "check_sqnr_db"
				}
			}
			if !checked && o.Status != pipeline.StatusFailed {
				t.Error("the quantize stage reports no check_sqnr_db")
			}
			if c.want != "" && !strings.Contains(text, c.want) {
				t.Errorf("quantize stage says %q, want %q", text, c.want)
			}
		})
	}
}

// A fusion folder left by a killed process (its pid gone) is removed by the next
// quantization; one of a live process stays.
func TestStaleFusionDirsRemoved(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dead := filepath.Join(os.TempDir(), "onnxpipe-fusion-999999999-123")
	live := filepath.Join(os.TempDir(), fmt.Sprintf("onnxpipe-fusion-%d-456", os.Getppid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testutil.MNISTConfig(t, "q.onnx", 16, 0, "  - calibrate: {dataset: train}\n  - quantize: {mode: static}\n")
	if o := testutil.RunConfig(t, cfg).Outcomes[0]; o.Status != pipeline.StatusOK {
		t.Fatalf("status %s: %v", o.Status, o.Err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead process's fusion folder is still there (%v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's fusion folder was removed: %v", err)
	}
}

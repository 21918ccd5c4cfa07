package prepare_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/stages/prepare"
)

// TestFractionalMinOpset: an integer option given a fraction is an error at the value,
// naming the key (yaml.v3 alone truncates 13.5 to 13); a float that is an integer is
// that integer.
func TestFractionalMinOpset(t *testing.T) {
	cfg, _ := config(t, filepath.Join(t.TempDir(), "m.onnx"), "  - prepare: {min_opset: 13.5}\n")
	c, err := pipeline.Load(cfg, pipeline.LoadOptions{})
	if err == nil {
		t.Fatalf("min_opset: 13.5 accepted as %+v", *c.Plan.Entries[0].Options.(*prepare.Options))
	}
	if want := "c.yaml:4:26: prepare: min_opset: expected an integer, got a number (13.5)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	cfg, _ = config(t, filepath.Join(t.TempDir(), "m.onnx"), "  - prepare: {min_opset: 17.0}\n")
	c, err = pipeline.Load(cfg, pipeline.LoadOptions{})
	if err != nil {
		t.Fatalf("min_opset: 17.0: %v", err)
	}
	if o := c.Plan.Entries[0].Options.(*prepare.Options); o.MinOpset != 17 {
		t.Errorf("min_opset: 17.0 is %d", o.MinOpset)
	}
}

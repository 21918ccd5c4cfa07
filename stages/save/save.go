// Package save is the `save` stage: it writes the job's current model anywhere in the
// chain, checked and atomically.
package save

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// Stage is the save stage.
var Stage = &pipeline.Stage{
	Name: "save",
	Doc: `Write the current model to a file.

The model is checked (structure, then an onnxruntime session) and written atomically: a
temporary file renamed into place. The final artifact of a job is saved by the config's
output: key; use this stage for intermediate snapshots (say, the float model after
prepare) or to choose external data.`,
	NewOptions: func() any { return &Options{External: "auto", Threshold: onnxio.DefaultThreshold} },
	Run:        run,
}

// Options are the save stage's options.
type Options struct {
	// Path of the file to write; {name} and {dir} are replaced by the model's base name
	// and its folder's name. Required; an input model is refused.
	Path string `yaml:"path" json:"path" onnxpipe:"path,writes"`
	// External says when tensor data goes to a separate file <path>.<8 hex digits of its
	// sha256>.data (a new name per save; the data files of earlier saves of the path are
	// removed): auto (only when the model would pass protobuf's 2 GiB limit), always, or
	// never.
	External External `yaml:"external" json:"external"`
	// Threshold is the smallest tensor, in bytes, moved to the external file (0: every
	// tensor).
	Threshold int64 `yaml:"threshold" json:"threshold"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if o.Path == "" {
		ps.Add("path", "is required (e.g. path: out/{name}.step.onnx)")
	}
	if _, err := o.External.mode(); err != nil {
		ps.Add("external", "%s", err)
	}
	if o.Threshold < 0 {
		ps.Add("threshold", "cannot be negative")
	}
	return ps.Err()
}

// External says when a saved model's tensor data goes to a separate file.
type External string

// Values lists the accepted spellings, for the decoder and the option reference.
func (External) Values() []string { return []string{"auto", "always", "never"} }

func (e External) mode() (onnxio.ExternalMode, error) {
	switch e {
	case "", "auto":
		return onnxio.ExternalAuto, nil
	case "always":
		return onnxio.ExternalAlways, nil
	case "never":
		return onnxio.ExternalNever, nil
	}
	return 0, fmt.Errorf("%q is not one of auto, always, never", string(e))
}

var _ pipeline.Validator = (*Options)(nil)

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	mode, _ := o.External.mode()
	m := p.Model()
	if err := onnxio.Check(m); err != nil {
		return nil, err
	}
	if err := pipeline.OpensInRuntime(m, p.Runtime()); err != nil {
		return nil, fmt.Errorf("onnxruntime cannot open the model: %w", err)
	}
	threshold := o.Threshold
	if threshold == 0 {
		threshold = onnxio.ThresholdAll // onnxio's 0 is its default, 1024
	}
	if err := m.Save(o.Path, onnxio.SaveOptions{External: mode, Threshold: threshold}); err != nil {
		return nil, err
	}
	if err := p.RecordSaved(o.Path, m); err != nil {
		return nil, err
	}
	p.Note("saved %s", o.Path)
	return nil, nil
}

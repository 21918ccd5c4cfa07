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
	NewOptions: func() any { return &Options{External: "auto", Threshold: 1024} },
	Run:        run,
}

func init() { pipeline.Register(Stage) }

// Options are the save stage's options.
type Options struct {
	// Path of the file to write; {name} and {dir} are replaced by the model's base name
	// and its folder's name. Required.
	Path string `yaml:"path" json:"path" onnxpipe:"path"`
	// External says when tensor data goes to a separate file <path>.data: auto (only when
	// the model would pass protobuf's 2 GiB limit), always, or never.
	External string `yaml:"external" json:"external"`
	// Threshold is the smallest tensor, in bytes, moved to the external file.
	Threshold int64 `yaml:"threshold" json:"threshold"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Path == "" {
		return fmt.Errorf("path is required (e.g. path: out/{name}.step.onnx)")
	}
	if _, err := externalMode(o.External); err != nil {
		return err
	}
	if o.Threshold < 0 {
		return fmt.Errorf("threshold cannot be negative")
	}
	return nil
}

func externalMode(s string) (onnxio.ExternalMode, error) {
	switch s {
	case "", "auto":
		return onnxio.ExternalAuto, nil
	case "always":
		return onnxio.ExternalAlways, nil
	case "never":
		return onnxio.ExternalNever, nil
	}
	return 0, fmt.Errorf("external %q: one of auto, always, never", s)
}

var _ pipeline.Validator = (*Options)(nil)

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	mode, _ := externalMode(o.External)
	if err := onnxio.Check(p.Job.Model); err != nil {
		return nil, err
	}
	if err := pipeline.OpensInRuntime(p.Job.Model, p.Job.Runtime); err != nil {
		return nil, fmt.Errorf("onnxruntime cannot open the model: %w", err)
	}
	if err := p.Job.Model.Save(o.Path, onnxio.SaveOptions{External: mode, Threshold: o.Threshold}); err != nil {
		return nil, err
	}
	if err := p.Job.RecordSaved(o.Path, p.Job.Model); err != nil {
		return nil, err
	}
	p.Note("saved %s", o.Path)
	return nil, nil
}

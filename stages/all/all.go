// Package all registers every stage, in the order a chain uses them (the order
// `onnxpipe stages` and docs/stages.md list them in); the binary and tests import it for
// its side effect.
package all

import (
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/stages/calibrate"
	"github.com/onnxpipe/onnxpipe/stages/distill"
	"github.com/onnxpipe/onnxpipe/stages/float16"
	"github.com/onnxpipe/onnxpipe/stages/prepare"
	"github.com/onnxpipe/onnxpipe/stages/qat"
	"github.com/onnxpipe/onnxpipe/stages/quantize"
	"github.com/onnxpipe/onnxpipe/stages/save"
	"github.com/onnxpipe/onnxpipe/stages/verify"
)

func init() {
	for _, s := range []*pipeline.Stage{
		prepare.Stage, distill.Stage, calibrate.Stage, quantize.Stage, qat.Stage, float16.Stage, verify.Stage, save.Stage,
	} {
		pipeline.Register(s)
	}
}

// Package all registers every stage; the binary and tests import it for its side effect.
package all

import (
	_ "github.com/onnxpipe/onnxpipe/stages/calibrate"
	_ "github.com/onnxpipe/onnxpipe/stages/distill"
	_ "github.com/onnxpipe/onnxpipe/stages/float16"
	_ "github.com/onnxpipe/onnxpipe/stages/prepare"
	_ "github.com/onnxpipe/onnxpipe/stages/qat"
	_ "github.com/onnxpipe/onnxpipe/stages/quantize"
	_ "github.com/onnxpipe/onnxpipe/stages/save"
	_ "github.com/onnxpipe/onnxpipe/stages/verify"
)

// Command onnxpipe turns trained ONNX models into smaller, faster deployable ONNX models
// — int8 QDQ quantization, distillation, float16 — and proves they still work, driven by
// a YAML config. Run `onnxpipe --help` for the commands.
package main

import (
	"os"

	"github.com/onnxpipe/onnxpipe/internal/cli"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}

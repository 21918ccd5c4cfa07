package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/onnxpipe/onnxpipe/report"
)

// Version is set at build time with -ldflags "-X github.com/onnxpipe/onnxpipe/internal/cli.Version=v1.2.3".
var Version = ""

func toolVersion() report.Tool {
	v := Version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return report.Tool{Name: "onnxpipe", Version: v, Go: runtime.Version()}
}

// Package cli implements onnxpipe's commands. Each command parses its flags and calls the
// packages that do the work; exit codes follow docs/config.md: 0 success, 1 a job failed,
// 2 bad usage or a rejected config, 3 an internal error (a bug), 130 interrupted.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exit(code int, err error) error { return &exitError{code, err} }

// silent marks an error whose message was already printed.
var errSilent = errors.New("")

type globals struct {
	logLevel string
	quiet    bool
	stdout   io.Writer
	// mnistNoted: the default of MNIST_DIR was said once.
	mnistNoted bool
	stderr     io.Writer
}

// logLevels are the values of --log-level.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError}

// checkLogLevel refuses a --log-level that is none of logLevels.
func (g *globals) checkLogLevel() error {
	if _, ok := logLevels[strings.ToLower(g.logLevel)]; !ok {
		return exit(ExitUsage, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel))
	}
	return nil
}

// loggerTo logs to w at --log-level (errors only with --quiet).
func (g *globals) loggerTo(w io.Writer) *slog.Logger {
	lvl := logLevels[strings.ToLower(g.logLevel)]
	if g.quiet {
		lvl = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// ExitInternal is the status of a command that stopped on a bug of onnxpipe (a panic).
const ExitInternal = 3

// Main runs the command line args and returns the exit status. A panic in any command
// is reported as an internal error with its stack and ExitInternal.
func Main(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "onnxpipe: internal error (please report it, with the input that caused it): %v\n", r)
			fmt.Fprintf(stderr, "%s", debug.Stack())
			code = ExitInternal
		}
	}()
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "onnxpipe",
		Short: "Quantize, distill and convert ONNX models, and prove they still work",
		Long: `onnxpipe runs a chain of stages described in a YAML file over one model or a batch:
prepare and calibrate the graph, quantize it to int8 QDQ, distill a smaller student,
convert to float16, then verify the result against the original on onnxruntime and write
the artifact with a report and a manifest.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error (on a terminal, log lines are printed above the progress bars)")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print errors and the summary only")
	root.AddCommand(runCmd(g), validateCmd(g), stagesCmd(g), inspectCmd(g), compareCmd(g), versionCmd(g), summarizeCmd(g))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return exit(ExitUsage, err) })
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.checkLogLevel() }

	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code = ExitUsage // cobra's own errors: unknown command or flag, wrong arguments
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(stderr, "onnxpipe: "+msg)
	}
	return code
}

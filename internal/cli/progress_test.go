package cli

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// openTerminal returns a pseudo-terminal of 100 columns to give the CLI as stderr, and a
// function that closes it and returns everything written to it.
func openTerminal(t *testing.T) (tty *os.File, output func() string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&buf, ptmx) // ends with EIO once tty is closed
		close(done)
	}()
	return tty, func() string {
		tty.Close()
		<-done
		ptmx.Close()
		return buf.String()
	}
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// logLines checks that every log line in what a terminal received stands on a line of
// its own (nothing of a bar before it) and returns them, escape sequences removed.
func logLines(t *testing.T, raw string) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(raw, "\n") {
		if !strings.Contains(l, "level=") {
			continue
		}
		l = strings.TrimRight(strings.ReplaceAll(ansiRE.ReplaceAllString(l, ""), "\r", ""), " ")
		if !strings.HasPrefix(l, "time=") {
			t.Errorf("a log line shares its line with something else (a progress bar?): %q", l)
		}
		lines = append(lines, l)
	}
	return lines
}

// On a terminal, log lines written while the bars are drawn come out above them, each on
// its own line, and the bars are drawn again below.
func TestDisplayPrintsLogLinesAboveTheBars(t *testing.T) {
	tty, output := openTerminal(t)
	g := &globals{logLevel: "info", stderr: tty, stdout: io.Discard}
	d := newDisplay(g, 2)
	if d == nil {
		t.Fatal("no display on a terminal")
	}
	sink := &logSink{w: d}
	log := g.loggerTo(sink)
	j := &pipeline.Job{Name: "mnist_cnn"}
	d.progress(j, "calibrate", 3, 10)
	time.Sleep(300 * time.Millisecond) // the bars are drawn
	log.Info("epoch 1", "val_accuracy", 0.97)
	log.Warn("calibration cache ignored")
	d.progress(j, "calibrate", 7, 10)
	time.Sleep(300 * time.Millisecond)
	log.Info("epoch 2", "val_accuracy", 0.98)
	d.progress(j, "", 1, 1)
	d.finish()
	sink.set(tty)
	log.Info("after the bars")
	raw := output()
	lines := logLines(t, raw)
	want := []string{`msg="epoch 1" val_accuracy=0.97`, `level=WARN msg="calibration cache ignored"`, `msg="epoch 2" val_accuracy=0.98`, `msg="after the bars"`}
	if len(lines) != len(want) {
		t.Fatalf("log lines %q, want %d:\n%q", lines, len(want), raw)
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("log line %d is %q, want it to end with %s", i, lines[i], w)
		}
	}
	if !strings.Contains(raw, "mnist_cnn: calibrate") || !strings.Contains(raw, "jobs") {
		t.Errorf("no bars drawn:\n%q", raw)
	}
	// The bar was drawn above the first log line and again below it.
	first := strings.Index(raw, "epoch 1")
	if !strings.Contains(raw[:first], "3/10") || !strings.Contains(raw[first:], "7/10") {
		t.Errorf("the bars are not drawn around the log lines:\n%q", raw)
	}
}

// A run on a terminal shows its info lines (--log-level info, and by default) and its
// warnings above the progress bars, never on a bar's line.
func TestRunOnATerminalShowsLogLines(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/models/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "m.onnx", string(data))
	write(t, dir, "x.npy", string(testutil.NPYRaw("<f4", false, "(64, 1, 28, 28)", make([]byte, 64*784*4))))
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: out/{name}.onnx\n"+
		"datasets:\n  calib: {format: npy, inputs: {input: x.npy}, batch: 8}\n"+
		"stages:\n  - calibrate: {dataset: calib, cache: bad.calib.json}\n")
	for _, args := range [][]string{{"run", "--force", "--log-level", "info", cfg}, {"run", "--force", cfg}} {
		write(t, dir, "bad.calib.json", "not a table") // the run before wrote a good one
		tty, output := openTerminal(t)
		var stdout bytes.Buffer
		code := Main(args, &stdout, tty)
		raw := output()
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%q", args, code, stdout.String(), raw)
		}
		text := strings.Join(logLines(t, raw), "\n")
		for _, want := range []string{"level=INFO msg=stage job=m stage=calibrate", "level=WARN msg=\"calibration cache ignored", "level=INFO msg=\"job finished\""} {
			if !strings.Contains(text, want) {
				t.Errorf("%v: the terminal lacks the log line %s:\n%s\nraw: %q", args, want, text, raw)
			}
		}
	}
}

// Not on a terminal, the log is plain lines: no bar, no escape sequence.
func TestRunLogsPlainLinesWithoutATerminal(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/models/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "m.onnx", string(data))
	cfg := write(t, dir, "c.yaml", "model: m.onnx\noutput: out/{name}.onnx\nstages: [prepare]\n")
	code, _, stderr := runCLI("run", cfg)
	if code != 0 || !strings.Contains(stderr, "level=INFO msg=stage job=m stage=prepare") || strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// --log-level takes debug, info, warn or error; anything else is bad usage, in one line
// naming the flag and the values.
func TestLogLevelChecked(t *testing.T) {
	code, stdout, stderr := runCLI("--log-level", "bogus", "stages")
	if code != ExitUsage || stdout != "" || stderr != "onnxpipe: --log-level \"bogus\": use debug, info, warn or error\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, lvl := range []string{"debug", "INFO", "warn", "warning", "error"} {
		if code, _, stderr := runCLI("--log-level", lvl, "stages", "save"); code != 0 {
			t.Errorf("--log-level %s: exit %d %s", lvl, code, stderr)
		}
	}
}

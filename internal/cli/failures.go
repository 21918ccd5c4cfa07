package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// printFailures writes, under the summary table, one block per failed or rejected job:
// its name and model, then its whole reason wrapped to width columns (the table cuts it
// to one line, and the fix a message ends with is often past the cut).
func printFailures(w io.Writer, res *pipeline.RunResult, width int) {
	for _, o := range res.Outcomes {
		if o.Err == nil || (o.Status != pipeline.StatusFailed && o.Status != pipeline.StatusRejected) {
			continue
		}
		fmt.Fprintf(w, "\n%s %s (%s):\n", o.Status, o.Job.Name, o.Job.ModelPath)
		for _, line := range strings.Split(strings.TrimRight(o.Err.Error(), "\n"), "\n") {
			for _, l := range wrap(line, width-2) {
				fmt.Fprintf(w, "  %s\n", l)
			}
		}
	}
}

// wrap breaks s at spaces into lines of at most width characters (a word longer than
// width gets a line of its own); no character of s is lost but the spaces it breaks at.
func wrap(s string, width int) []string {
	width = max(width, 20)
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(word) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 || len(lines) == 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// termWidth is the width of w when it is a terminal, else def.
func termWidth(w io.Writer, def int) int {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return def
}

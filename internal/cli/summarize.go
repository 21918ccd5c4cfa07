package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

func summarizeCmd(g *globals) *cobra.Command {
	var out, junit string
	c := &cobra.Command{
		Use:   "summarize DIR|SUMMARY.json...",
		Short: "Merge the summaries of shards and reruns into one summary.json, index.html and JUnit file",
		Long: `Summarize reads the summaries in each folder (summary.json and every shard's
summary.shard-i-of-n.json) or the summary files given, and writes one summary.json and
index.html over all their jobs to --out (default: the first folder given, or the folder of
the first file). A job found in several summaries keeps its newest result.

Exit status: 0 every job passed (or was up to date), 1 a job failed, was rejected or
interrupted, 2 bad usage or no readable summary.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return summarize(g, args, out, junit) },
	}
	c.Flags().StringVar(&out, "out", "", "folder of the merged summary.json and index.html (default: the first DIR)")
	c.Flags().StringVar(&junit, "junit", "", "also write the merged jobs as JUnit XML to FILE")
	return c
}

func summarize(g *globals, args []string, out, junit string) error {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return exit(ExitUsage, err)
		}
		if !st.IsDir() {
			files = append(files, a)
			if out == "" {
				out = filepath.Dir(a)
			}
			continue
		}
		found, err := pipeline.SummaryFiles(a)
		if err != nil {
			return exit(ExitUsage, err)
		}
		if len(found) == 0 {
			return exit(ExitUsage, fmt.Errorf("%s holds no summary (%s or summary.shard-i-of-n.json)", a, pipeline.SummaryName))
		}
		files = append(files, found...)
		if out == "" {
			out = a
		}
	}
	var sums []*pipeline.Summary
	for _, f := range files {
		s, err := pipeline.ReadSummary(f)
		if err != nil {
			return exit(ExitUsage, err)
		}
		sums = append(sums, s)
	}
	merged := pipeline.MergeSummaries(sums, files)
	path, index := filepath.Join(out, pipeline.SummaryName), filepath.Join(out, pipeline.IndexName)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return exit(ExitFailed, err)
	}
	if err := pipeline.WriteSummary(merged, path, index); err != nil {
		return exit(ExitFailed, err)
	}
	if junit != "" {
		if err := pipeline.WriteJUnit(junit, merged); err != nil {
			return exit(ExitFailed, err)
		}
	}
	var parts []string
	for _, s := range []string{pipeline.StatusOK, pipeline.StatusSkipped, pipeline.StatusRejected, pipeline.StatusFailed, pipeline.StatusInterrupted} {
		if n := merged.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	fmt.Fprintf(g.stdout, "%d summaries merged, %d jobs: %s\nsummary: %s\nindex:   %s\n", len(sums), len(merged.Jobs), strings.Join(parts, ", "), path, index)
	if junit != "" {
		fmt.Fprintf(g.stdout, "junit:   %s\n", junit)
	}
	bad := merged.Counts[pipeline.StatusFailed] + merged.Counts[pipeline.StatusRejected] + merged.Counts[pipeline.StatusInterrupted]
	if bad > 0 {
		return exit(ExitFailed, fmt.Errorf("%d of %d jobs did not pass", bad, len(merged.Jobs)))
	}
	return nil
}

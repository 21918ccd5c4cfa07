package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

type runFlags struct {
	sets       []string
	shard      string
	shardCount int
	parallel   int
	force      bool
	keepFailed bool
	junit      string
}

func runCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "run CONFIG.yaml",
		Short: "Run a config: every job, every stage",
		Long: `Run decodes and validates the config, expands its jobs (one per model), and runs them.
A failing job never stops the others. Each artifact is written atomically with a
manifest; each job gets a report; the run ends with a summary table and summary.json.

Exit status: 0 all jobs passed (or were up to date), 1 a job failed, 2 the config was
rejected before any job started, 130 interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runConfig(g, f, args[0]) },
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.sets, "set", nil, "override a config value: --set stages.1.quantize.per_channel=false (repeatable)")
	fl.StringVar(&f.shard, "shard", "", "run shard i of n (1-based): --shard 2/4")
	fl.IntVar(&f.shardCount, "shard-count", 0, "shard count when the shard index comes from JOB_COMPLETION_INDEX")
	fl.IntVar(&f.parallel, "parallel", 0, "jobs at once (overrides the config's parallel)")
	fl.BoolVar(&f.force, "force", false, "redo jobs whose manifest says they are up to date")
	fl.BoolVar(&f.keepFailed, "keep-failed", false, "keep a rejected model as <output>.rejected.onnx")
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML of the jobs to FILE")
	return c
}

// loadConfig decodes a config and expands its jobs, printing diagnostics; a rejected
// config is exit status 2.
func loadConfig(g *globals, path string, sets []string) (*pipeline.Config, []*pipeline.Job, error) {
	cfg, err := pipeline.Load(path, pipeline.LoadOptions{Sets: sets})
	if err != nil {
		return nil, nil, configError(g, err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(g.stderr, w.String())
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		return nil, nil, configError(g, err)
	}
	return cfg, jobs, nil
}

func configError(g *globals, err error) error {
	var diags pipeline.Diagnostics
	if errors.As(err, &diags) {
		for _, d := range diags {
			fmt.Fprintln(g.stderr, d.String())
		}
		n := 0
		for _, d := range diags {
			if !d.Warning {
				n++
			}
		}
		return exit(ExitUsage, fmt.Errorf("config rejected: %d problem(s)", n))
	}
	return exit(ExitUsage, err)
}

// selectShard applies --shard, or JOB_COMPLETION_INDEX with a shard count.
func selectShard(f *runFlags, jobs []*pipeline.Job) ([]*pipeline.Job, string, error) {
	if f.shard != "" {
		i, n, err := pipeline.ParseShard(f.shard)
		if err != nil {
			return nil, "", exit(ExitUsage, err)
		}
		return pipeline.Shard(jobs, i, n), f.shard, nil
	}
	idx, ok := os.LookupEnv("JOB_COMPLETION_INDEX")
	if !ok {
		return jobs, "", nil
	}
	count := f.shardCount
	if count == 0 {
		if s, ok := os.LookupEnv("ONNXPIPE_SHARD_COUNT"); ok {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, "", exit(ExitUsage, fmt.Errorf("ONNXPIPE_SHARD_COUNT=%q is not a number", s))
			}
			count = n
		}
	}
	if count == 0 {
		return jobs, "", nil // an indexed job without a count: run everything
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= count {
		return nil, "", exit(ExitUsage, fmt.Errorf("JOB_COMPLETION_INDEX=%q must be in 0..%d", idx, count-1))
	}
	shard := fmt.Sprintf("%d/%d", i+1, count)
	return pipeline.Shard(jobs, i+1, count), shard, nil
}

func runConfig(g *globals, f *runFlags, path string) error {
	cfg, jobs, err := loadConfig(g, path, f.sets)
	if err != nil {
		return err
	}
	dir := pipeline.SummaryDir(jobs) // the whole batch's: every shard writes its summary there
	jobs, shard, err := selectShard(f, jobs)
	if err != nil {
		return err
	}
	log := g.logger()
	if shard != "" {
		log.Info("shard", "shard", shard, "jobs", len(jobs))
	}
	if len(jobs) == 0 {
		fmt.Fprintln(g.stdout, "no jobs in this shard")
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := pipeline.RunOptions{Parallel: f.parallel, Force: f.force, KeepFailed: f.keepFailed,
		JUnit: f.junit, Log: log, Shard: shard, SummaryDir: dir}
	if bar := newProgress(g, len(jobs)); bar != nil {
		opts.Progress = bar
		if g.logLevel == "info" { // keep the bar readable: only warnings and errors
			g.logLevel = "warn"
			opts.Log = g.logger()
		}
	}
	res, err := pipeline.Run(ctx, cfg, jobs, opts)
	if res != nil {
		pipeline.PrintSummary(g.stdout, res)
	}
	switch {
	case err != nil:
		return exit(ExitFailed, err)
	case res.Interrupted():
		return exit(ExitInterrupted, errors.New("interrupted"))
	case res.Failed() > 0:
		return exit(ExitFailed, fmt.Errorf("%d of %d jobs failed", res.Failed(), len(res.Outcomes)))
	}
	return nil
}

// newProgress returns a progress callback drawing a bar over the jobs on a terminal, or
// nil when stderr is not one (CI logs get plain lines instead).
func newProgress(g *globals, jobs int) pipeline.ProgressFunc {
	fd, ok := g.stderr.(*os.File)
	if !ok || g.quiet || !term.IsTerminal(int(fd.Fd())) {
		return nil
	}
	bar := progressbar.NewOptions(jobs, progressbar.OptionSetWriter(g.stderr), progressbar.OptionSetDescription("jobs"),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000))
	return func(j *pipeline.Job, stage string, done, total int) {
		if stage == "" {
			_ = bar.Add(1)
			return
		}
		bar.Describe(fmt.Sprintf("%s: %s %d/%d", j.Name, stage, done, total))
	}
}

func validateCmd(g *globals) *cobra.Command {
	var sets []string
	var deep bool
	c := &cobra.Command{
		Use:   "validate CONFIG.yaml",
		Short: "Decode and check a config, print the plan and the jobs; run nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, jobs, err := loadConfig(g, args[0], sets)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: ok, %d job(s)\nplan:\n%s", args[0], len(jobs), cfg.Plan)
			if cfg.File.Output != "" {
				fmt.Fprintf(g.stdout, "  end: save -> %s\n", cfg.File.Output)
			}
			fmt.Fprintln(g.stdout, "jobs:")
			for _, j := range jobs {
				out := j.Output
				if out == "" {
					out = "(no output)"
				}
				fmt.Fprintf(g.stdout, "  %d. %s -> %s (report %s.report.*)\n", j.Index+1, j.ModelPath, out, j.ReportPrefix)
			}
			if deep {
				return checkData(g, jobs)
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&sets, "set", nil, "override a config value (as for run)")
	c.Flags().BoolVar(&deep, "deep", false, "also open every model and the datasets its stages read, and check them against the model's inputs")
	return c
}

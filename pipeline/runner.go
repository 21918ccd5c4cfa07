package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
)

// Job statuses.
const (
	StatusOK          = "ok"
	StatusFailed      = "failed"
	StatusRejected    = "rejected"
	StatusSkipped     = "skipped"
	StatusInterrupted = "interrupted"
)

// RunOptions are the command-line controls of a run.
type RunOptions struct {
	// Parallel overrides the config's `parallel` when > 0.
	Parallel int
	// Force redoes jobs whose manifest says they are done.
	Force bool
	// KeepFailed writes a rejected job's model to <output without .onnx>.rejected.onnx.
	KeepFailed bool
	// JUnit, when set, is the path of a JUnit XML file of the jobs.
	JUnit string
	// Log receives progress lines (default: discard).
	Log *slog.Logger
	// Progress, when non-nil, is told of each job's and stage's progress (the CLI draws
	// bars with it on a terminal).
	Progress ProgressFunc
	// Version is the tool version recorded in reports and manifests.
	Version string
	// Shard is "i/n" when the jobs are shard i of n of a batch: the run writes
	// summary.shard-i-of-n.json and index.shard-i-of-n.html instead of summary.json and
	// index.html, so that shards sharing a folder do not overwrite each other.
	Shard string
	// SummaryDir is the folder of the summary and index page; default: the folder shared
	// by the jobs' outputs (SummaryDir). Shards pass that of the whole batch, so that all
	// of them write into one folder.
	SummaryDir string
}

// ProgressFunc receives progress events: a job's stage did done out of total units of
// work; a stage of "" with done == total marks the job finished.
type ProgressFunc func(job *Job, stage string, done, total int)

// Outcome is what happened to one job.
type Outcome struct {
	Job    *Job
	Status string
	Err    error
	Report *report.Job
	// Finished is when the job ended (zero when it never started).
	Finished time.Time
	// Manifest is, for a job skipped as up to date, the manifest of the result it keeps.
	Manifest *Manifest
}

// RunResult is the outcome of a run.
type RunResult struct {
	Outcomes []*Outcome
	// SummaryPath is where summary.json (or the shard's summary) was written, IndexPath
	// its index page.
	SummaryPath, IndexPath string
}

// Failed counts jobs that failed or were rejected.
func (r *RunResult) Failed() int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == StatusFailed || o.Status == StatusRejected {
			n++
		}
	}
	return n
}

// Interrupted reports whether the run was cut short by cancellation.
func (r *RunResult) Interrupted() bool {
	for _, o := range r.Outcomes {
		if o.Status == StatusInterrupted {
			return true
		}
	}
	return false
}

// Run executes jobs with bounded parallelism, holding a lock on each output folder (a
// folder a run of another config writes is an error; stale temporary files of these
// jobs are removed). A failing job never stops the others;
// cancelling ctx stops starting new jobs and interrupts running ones (artifacts are
// written atomically, so none is left half-written). It writes summary.json beside the
// outputs, and JUnit XML when asked.
func Run(ctx context.Context, cfg *Config, jobs []*Job, opts RunOptions) (*RunResult, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	workers := cfg.File.Parallel
	if opts.Parallel > 0 {
		workers = opts.Parallel
	}
	workers = max(1, min(workers, len(jobs)))
	locks, err := lockOutputs(jobs, configKey(cfg))
	if err != nil {
		return nil, err
	}
	defer locks.release()
	res := &RunResult{Outcomes: make([]*Outcome, len(jobs))}
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res.Outcomes[i] = runJob(ctx, cfg, jobs[i], opts)
			}
		}()
	}
	for i := range jobs {
		if ctx.Err() != nil {
			res.Outcomes[i] = &Outcome{Job: jobs[i], Status: StatusInterrupted, Err: ctx.Err()}
			continue
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if len(jobs) > 0 {
		if err := writeSummary(cfg, res, opts); err != nil {
			return res, err
		}
	}
	return res, nil
}

// runJob runs one job and writes its artifacts. It never panics: a stage that panics
// fails its job with the stack in the log.
func runJob(ctx context.Context, cfg *Config, j *Job, opts RunOptions) (out *Outcome) {
	start := time.Now()
	j.log = opts.Log.With("job", j.Name)
	j.artifacts = map[string]string{}
	if opts.Progress != nil {
		j.progress = func(stage string, done, total int) { opts.Progress(j, stage, done, total) }
	}
	defer j.closeDatasets()
	rep := &report.Job{
		SchemaVersion: report.SchemaVersion,
		Tool:          toolInfo(opts.Version),
		Name:          j.Name,
		Model:         report.File{Path: j.ModelPath},
		Started:       start.UTC().Truncate(time.Second),
		ConfigSHA256:  jobConfigHash(j),
		Environment:   environment(),
	}
	out = &Outcome{Job: j, Report: rep}
	finish := func(status string, err error) {
		out.Status, out.Err = status, err
		rep.Status = status
		if err != nil {
			rep.Error = err.Error()
		}
		out.Finished = time.Now().UTC()
		rep.Seconds = out.Finished.Sub(start).Seconds()
		if werr := writeReport(j, rep); werr != nil && out.Err == nil {
			out.Status, out.Err = StatusFailed, werr
			rep.Status = StatusFailed
		}
		if j.progress != nil {
			j.progress("", 1, 1)
		}
		j.log.Info("job finished", "status", out.Status, "seconds", fmt.Sprintf("%.2f", rep.Seconds))
	}
	defer func() {
		if r := recover(); r != nil {
			j.log.Error("panic", "value", r, "stack", string(debug.Stack()))
			finish(StatusFailed, fmt.Errorf("internal error (please report it): %v", r))
		}
	}()
	kept, err := prepareJob(j, opts, rep)
	switch {
	case err != nil:
		finish(StatusFailed, err)
		return out
	case kept != nil:
		out.Status, rep.Status, out.Manifest, out.Finished = StatusSkipped, StatusSkipped, kept, time.Now().UTC()
		j.log.Info("skipped: the manifest matches the input and the config (use --force to redo)")
		if j.progress != nil {
			j.progress("", 1, 1)
		}
		return out
	}
	status, jobErr := runStages(ctx, j, rep)
	rep.Saved = j.saved
	status, jobErr = publish(j, opts, rep, status, jobErr)
	finish(status, jobErr)
	if status == StatusOK && j.Output != "" {
		if err := writeManifest(j, rep); err != nil {
			out.Status, out.Err = StatusFailed, err
		}
	}
	return out
}

// prepareJob hashes the input, loads onnxruntime and, unless the manifest says the job is
// done (it returns that manifest: the job is skipped), the model.
func prepareJob(j *Job, opts RunOptions, rep *report.Job) (kept *Manifest, err error) {
	inHash, inBytes, err := fileSHA256(j.ModelPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read model: %w", err)
	}
	rep.Model.SHA256, rep.Model.Bytes = inHash, inBytes
	if err := ort.Init(j.Runtime.Library); err != nil {
		return nil, err
	}
	rep.Tool.ONNXRuntime = ort.Version()
	runtimeEnv(&rep.Environment)
	if !opts.Force && j.Output != "" {
		if m := manifestMatches(j, inHash, rep); m != nil {
			return m, nil
		}
	}
	m, err := onnxio.Load(j.ModelPath)
	if err != nil {
		return nil, err
	}
	if err := dataErr(j.checkData(m)); err != nil {
		return nil, err // before any stage: a labels file of the wrong length fails here, not in verify
	}
	summ := onnxio.Summarize(m)
	rep.Model.Nodes, rep.Model.Params, rep.Model.Quantization = summ.Nodes, summ.Params.Count, summ.Quantization
	j.input, j.model, j.previous = m, m, nil // shared until a stage changes the model
	return nil, nil
}

// runStages runs the job's entries in order until one fails, recording each in the
// report; it returns the job's status.
func runStages(ctx context.Context, j *Job, rep *report.Job) (string, error) {
	results := make([]any, len(j.Entries))
	guard := newContractGuard(j)
	status := StatusOK
	var jobErr error
	for i, e := range j.Entries {
		rec := &report.Stage{Stage: e.Stage.Name, Index: e.Index, Implicit: e.Implicit, Status: "not run",
			Options: json.RawMessage(MarshalOptions(e.Options))}
		rep.Stages = append(rep.Stages, rec)
		if status != StatusOK {
			continue
		}
		if err := ctx.Err(); err != nil {
			status, jobErr = StatusInterrupted, err
			continue
		}
		st := time.Now()
		j.log.Info("stage", "stage", e.Stage.Name, "index", e.Index+1)
		pass := &Pass{Ctx: ctx, Stage: e.Stage, Options: e.Options, Entry: e.Index, Requests: e.requests,
			Log: j.log.With("stage", e.Stage.Name), job: j, start: j.model, results: map[reflect.Type]any{},
			mutates: e.Mutates(), record: rec}
		for _, nd := range e.needs {
			pass.results[nd.req.Result] = results[nd.from]
		}
		guard.before(pass)
		result, err := e.Stage.Run(pass)
		rec.Seconds = time.Since(st).Seconds()
		if err == nil {
			err = guard.after(pass, result)
		}
		if j.model != pass.start {
			j.previous = pass.start
		}
		status, jobErr = judge(ctx, e, rec, result, err)
		if status == StatusOK {
			results[i] = result
		}
		release(j.Entries, results, i)
	}
	return status, jobErr
}

// judge turns a stage's outcome into its record and the job's status.
func judge(ctx context.Context, e *Entry, rec *report.Stage, result any, err error) (string, error) {
	var rej *Rejected
	switch {
	case err == nil:
		rec.Status = StatusOK
		if dp, ok := result.(report.DataProvider); ok {
			rec.Data = dp.ReportData()
		}
		return StatusOK, nil
	case errors.As(err, &rej):
		rec.Status, rec.Error = StatusRejected, err.Error()
		// what was judged belongs in the report of a rejected job too
		if dp, ok := result.(report.DataProvider); ok && result != nil {
			rec.Data = dp.ReportData()
		}
		return StatusRejected, fmt.Errorf("%s: %w", e.Stage.Name, err)
	case ctx.Err() != nil:
		rec.Status, rec.Error = StatusInterrupted, err.Error()
		return StatusInterrupted, ctx.Err()
	}
	rec.Status, rec.Error = StatusFailed, err.Error()
	return StatusFailed, fmt.Errorf("%s: %w", e.Stage.Name, err)
}

// release lets go of the results whose last reader is entry i (a quantize stage's
// calibration table, say), so that the job does not hold them to its end.
func release(entries []*Entry, results []any, i int) {
	for k := 0; k < i; k++ {
		if entries[k].lastReader == i {
			results[k] = nil
		}
	}
	if entries[i].lastReader < 0 {
		results[i] = nil
	}
}

// publish writes the job's artifact when the job succeeded (or the rejected model, with
// KeepFailed) and returns the job's final status.
func publish(j *Job, opts RunOptions, rep *report.Job, status string, jobErr error) (string, error) {
	if status == StatusOK && j.Output != "" {
		if err := saveArtifact(j, j.Output); err != nil {
			return StatusFailed, err
		}
		h, n, err := fileSHA256(j.Output)
		if err != nil {
			return StatusFailed, err
		}
		o := onnxio.Summarize(j.model)
		rep.Output = &report.File{Path: j.Output, Bytes: n, SHA256: h, Nodes: o.Nodes, Params: o.Params.Count, Quantization: o.Quantization}
		return StatusOK, nil
	}
	if status == StatusRejected && opts.KeepFailed && j.Output != "" {
		kept := strings.TrimSuffix(j.Output, ".onnx") + ".rejected.onnx"
		if err := saveArtifact(j, kept); err != nil {
			j.log.Warn("cannot keep the rejected model", "error", err)
		} else {
			j.artifacts["rejected"] = kept
		}
	}
	return status, jobErr
}

// saveArtifact checks the job's model (structure, then an onnxruntime session) and saves
// it atomically to path. The bytes onnxruntime opened are the bytes written.
func saveArtifact(j *Job, path string) error {
	if err := onnxio.Check(j.model); err != nil {
		return fmt.Errorf("the result is not a valid model: %w", err)
	}
	data, err := j.model.Bytes()
	if err != nil {
		return err
	}
	if err := opens(data, j.Runtime); err != nil {
		return fmt.Errorf("onnxruntime cannot open the result: %w", err)
	}
	return onnxio.WriteFileAtomic(path, data)
}

// OpensInRuntime opens m in an onnxruntime CPU session and closes it.
func OpensInRuntime(m *onnxio.Model, rt Runtime) error {
	data, err := m.Bytes()
	if err != nil {
		return err
	}
	return opens(data, rt)
}

func opens(data []byte, rt Runtime) error {
	s, err := ort.NewSession(data, ort.Options{Threads: rt.Threads, Optimization: rt.Optimization})
	if err != nil {
		return err
	}
	return s.Close()
}

func writeReport(j *Job, rep *report.Job) error {
	if err := os.MkdirAll(filepath.Dir(j.ReportPrefix), 0o755); err != nil {
		return fmt.Errorf("cannot create the report folder: %w", err)
	}
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	html, err := rep.HTML()
	if err != nil {
		return err
	}
	for ext, data := range map[string][]byte{".report.json": js, ".report.md": rep.Markdown(), ".report.html": html} {
		if err := onnxio.WriteFileReplace(j.ReportPrefix+ext, data); err != nil {
			return err
		}
	}
	j.artifacts["report"] = j.ReportPrefix + ".report.json"
	return nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := regular.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// jobConfigHash hashes everything of the config that shapes this job's result.
func jobConfigHash(j *Job) string {
	type entry struct {
		Stage   string          `json:"stage"`
		Options json.RawMessage `json:"options"`
	}
	v := struct {
		Output   string  `json:"output"`
		Report   string  `json:"report"`
		Datasets any     `json:"datasets"`
		Runtime  Runtime `json:"runtime"`
		Entries  []entry `json:"entries"`
	}{Output: j.Output, Report: j.ReportPrefix, Datasets: j.Datasets, Runtime: j.Runtime}
	for _, e := range j.Entries {
		v.Entries = append(v.Entries, entry{e.Stage.Name, MarshalOptions(e.Options)})
	}
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ToolName is the name reports and manifests give the tool.
const ToolName = "onnxpipe"

func toolInfo(version string) report.Tool {
	if version == "" {
		version = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
	}
	return report.Tool{Name: ToolName, Version: version, Go: runtime.Version()}
}

func environment() report.Env {
	e := report.Env{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	e.CPU, e.Features = cpuInfo()
	return e
}

// runtimeEnv records the loaded onnxruntime library and its execution providers: those
// that load, and why each GPU provider that does not is unavailable. A process loads one
// onnxruntime, so the probe runs once.
func runtimeEnv(e *report.Env) {
	p := providerEnv()
	e.Library, e.Providers, e.Unavailable = p.Library, p.Providers, p.Unavailable
}

var providerEnv = sync.OnceValue(func() report.Env {
	var e report.Env
	e.Library = ort.LibraryPath()
	if names, err := ort.AvailableProviders(); err == nil {
		e.Providers = names
	}
	for _, p := range []ort.Provider{ort.CUDA, ort.TensorRT} {
		if err := ort.ProviderAvailable(p); err != nil {
			if e.Unavailable == nil {
				e.Unavailable = map[string]string{}
			}
			var ue *ort.UnavailableError
			if errors.As(err, &ue) {
				e.Unavailable[string(p)] = ue.Reason
			} else {
				e.Unavailable[string(p)] = err.Error()
			}
		}
	}
	return e
})

// cpuInfo reads the CPU model and the features that matter for int8 and float16 kernels
// from /proc/cpuinfo (Linux; empty elsewhere).
func cpuInfo() (string, []string) {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "", nil
	}
	var model string
	var flags []string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		case "flags", "Features":
			if flags == nil {
				have := map[string]bool{}
				for _, f := range strings.Fields(v) {
					have[f] = true
				}
				for _, f := range []string{"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16", "asimddp", "i8mm"} {
					if have[f] {
						flags = append(flags, f)
					}
				}
				if flags == nil {
					flags = []string{}
				}
			}
		}
	}
	return model, flags
}

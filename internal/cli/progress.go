package cli

import (
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// display draws the progress of a run on a terminal: a bar over the jobs and, under it,
// one bar per running job with its stage's progress (samples, epochs). Log lines are
// printed above the bars, each on its own line: mpb clears the bars, writes the line and
// draws them again (Progress.Write), so a warning is never glued to a bar.
type display struct {
	p     *mpb.Progress
	total *mpb.Bar
	mu    sync.Mutex
	jobs  map[*pipeline.Job]*jobBar
}

type jobBar struct {
	bar   *mpb.Bar
	label atomic.Pointer[string] // read by the bar's decorator while it draws
}

// newDisplay returns the display of a run of jobs on g's stderr, or nil when stderr is
// not a terminal (CI logs get plain lines instead) or --quiet is given.
func newDisplay(g *globals, jobs int) *display {
	if g.quiet || !isTerminal(g.stderr) {
		return nil
	}
	d := &display{p: mpb.New(mpb.WithOutput(g.stderr), mpb.WithWidth(30)), jobs: map[*pipeline.Job]*jobBar{}}
	// Every bar is made with total 0, which mpb never completes by itself, and given its
	// total after: a bar that completes makes mpb draw once more and stop, and a log line
	// written after that (the pipeline logs "job finished" after its last progress event)
	// would be lost. finish completes the jobs bar once the run is over.
	d.total = d.p.AddBar(0, mpb.PrependDecorators(decor.Name("jobs ")),
		mpb.AppendDecorators(decor.CountersNoUnit(" %d/%d"), decor.Elapsed(decor.ET_STYLE_GO, decor.WC{C: decor.DSyncSpace})))
	d.total.SetTotal(int64(jobs), false)
	return d
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Write prints log lines above the bars.
func (d *display) Write(b []byte) (int, error) { return d.p.Write(b) }

// progress is the run's pipeline.ProgressFunc.
func (d *display) progress(j *pipeline.Job, stage string, done, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	jb := d.jobs[j]
	if stage == "" { // the job ended
		if jb != nil {
			jb.bar.Abort(true)
			delete(d.jobs, j)
		}
		d.total.Increment()
		return
	}
	label := j.Name + ": " + stage + " "
	if jb == nil {
		jb = &jobBar{}
		jb.label.Store(&label)
		jb.bar = d.p.AddBar(0,
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return *jb.label.Load() })),
			mpb.AppendDecorators(decor.CountersNoUnit(" %d/%d")))
		d.jobs[j] = jb
	}
	jb.label.Store(&label)
	jb.bar.SetTotal(int64(max(total, 1)), false)
	jb.bar.SetCurrent(int64(done))
}

// finish draws the bars a last time and stops the display.
func (d *display) finish() {
	d.mu.Lock()
	for j, jb := range d.jobs {
		jb.bar.Abort(true)
		delete(d.jobs, j)
	}
	d.mu.Unlock()
	d.total.SetTotal(-1, true) // where it stands: an interrupted run's bar is not full
	d.p.Wait()
}

// logSink is where log lines go: the display while it draws, else stderr.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (s *logSink) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

package badinput

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

// caseTimeout is how long one case may run before it counts as a hang.
const caseTimeout = 60 * time.Second

// knownFailures are cases that still fail for a reason in code this corpus may not fix
// (quantize/, stages/, train/): case name -> the failure and where it comes from. The
// test runs them and logs what happens, and fails when one of them passes (remove it
// from the list then).
var knownFailures = map[string]string{}

func init() {
	for reason, names := range map[string]string{
		"quantize: an override naming no tensor of the model is dropped without a word: quantize/static.go:156 looks overrides up per tensor, quantize/options.go:104 checks only their values":            "mnist/config/override-unknown-tensor",
		"a Conv of zero output channels: onnxruntime's own message, from the session calibrate opens (calibrate/collect via ort.NewSession), names an internal node (ReorderOutput_token_4), not the Conv": "mnist/built/zero-channels",
	} {
		for _, name := range strings.Fields(names) {
			knownFailures[name] = reason
		}
	}
}

func TestCorpus(t *testing.T) {
	cases, err := Corpus(filepath.Dir(testutil.Fixture("mnist_cnn.onnx")))
	if err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(""); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	names := map[string]bool{}
	for _, c := range cases {
		kinds[c.Kind]++
		names[c.Name] = true
	}
	t.Logf("%d cases: %v", len(cases), kinds)
	if len(cases) < 200 {
		t.Errorf("only %d cases; the corpus should have 200 or more", len(cases))
	}
	for name := range knownFailures {
		if !names[name] {
			t.Errorf("knownFailures names %s, which is not a case", name)
		}
	}
	for i, c := range cases {
		if testing.Short() && i%10 != 0 && !strings.HasSuffix(c.Name, "/baseline") {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			problems := runCase(t, c)
			if reason, known := knownFailures[c.Name]; known {
				if len(problems) == 0 {
					t.Errorf("%s is in knownFailures (%s) but passes now: remove it from the list", c.Name, reason)
				} else {
					t.Logf("known failure (%s): %s", reason, strings.Join(problems, "; "))
				}
				return
			}
			for _, p := range problems {
				t.Errorf("case %s: %s", c.Name, p)
			}
		})
	}
}

// logf logs a case's result, and appends it to the file $BADINPUT_LOG names (one line
// per result, for reading the whole corpus's results at once).
func logf(t *testing.T, c *Case, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.Log(msg)
	if path := os.Getenv("BADINPUT_LOG"); path != "" {
		logMu.Lock()
		defer logMu.Unlock()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s\t%s\n", c.Name, strings.ReplaceAll(msg, "\n", "\\n"))
			f.Close()
		}
	}
}

var logMu sync.Mutex

// lockedBuffer is a bytes.Buffer that jobs running at once may log to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// panicSite picks the panic's value and the first frames of onnxpipe's code below the
// panic (file:line, relative to the repository) from a job log's stack.
func panicSite(log string) string {
	i := strings.Index(log, "level=ERROR msg=panic")
	line := log[i:]
	if k := strings.IndexByte(line, '\n'); k >= 0 {
		line = line[:k]
	}
	var value string
	if k := strings.Index(line, "value="); k >= 0 {
		value = line[k+len("value="):]
		if e := strings.Index(value, " stack="); e >= 0 {
			value = value[:e]
		}
	}
	root := filepath.Dir(filepath.Dir(testutil.Fixture(""))) + "/" // the repository
	stack := strings.NewReplacer(`\n`, "\n", `\t`, "").Replace(line)
	var frames []string
	after := false
	lines := strings.Split(stack, "\n")
	for k, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			after = true
			continue
		}
		if after && strings.Contains(l, "github.com/onnxpipe/onnxpipe/") && k+1 < len(lines) && len(frames) < 4 {
			at := strings.TrimPrefix(lines[k+1], root)
			if e := strings.Index(at, " +0x"); e >= 0 {
				at = at[:e]
			}
			frames = append(frames, at)
		}
	}
	return value + " at " + strings.Join(frames, " < ")
}

// outcome is what one case's run gave.
type outcome struct {
	res   *pipeline.RunResult
	phase string // load | jobs | run: where err came from
	err   error
	panic any
	stack []byte
}

// runCase writes the case, runs it and returns what is wrong with the result.
func runCase(t *testing.T, c *Case) (problems []string) {
	dir := t.TempDir()
	wr, err := c.Write(dir)
	if err != nil {
		t.Fatalf("writing the case: %v", err)
	}
	config, sets := wr.Config, wr.Sets
	before := hashes(dir)
	for _, m := range wr.Mutable {
		delete(before, m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan outcome, 1)
	var logBuf lockedBuffer
	go func() {
		var o outcome
		defer func() {
			if r := recover(); r != nil {
				o.panic, o.stack = r, debug.Stack()
			}
			done <- o
		}()
		cfg, err := pipeline.Load(config, pipeline.LoadOptions{Sets: sets, LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			o.phase, o.err = "load", err
			return
		}
		jobs, err := cfg.Jobs()
		if err != nil {
			o.phase, o.err = "jobs", err
			return
		}
		o.res, err = pipeline.Run(ctx, cfg, jobs, pipeline.RunOptions{Force: true, Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
		if err != nil {
			o.phase, o.err = "run", err
		}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(caseTimeout):
		cancel()
		return []string{fmt.Sprintf("hang: no result within %s", caseTimeout)}
	}
	if o.panic != nil {
		return []string{fmt.Sprintf("panic: %v\n%s", o.panic, o.stack)}
	}
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if o.err != nil {
		logf(t, c, "%s error: %v", o.phase, o.err)
	}
	if o.res != nil {
		for _, out := range o.res.Outcomes {
			logf(t, c, "job %s: %s: %v", out.Job.Name, out.Status, out.Err)
		}
	}
	if log := logBuf.String(); strings.Contains(log, "level=ERROR msg=panic") {
		if os.Getenv("BADINPUT_DEBUG") != "" {
			t.Log(log)
		}
		bad("a stage panicked: %s", panicSite(log))
	}
	if o.err != nil {
		for _, p := range errorProblems(c, dir, o.err) {
			bad("%s error: %s", o.phase, p)
		}
	}
	if o.res != nil {
		for _, out := range o.res.Outcomes {
			problems = append(problems, outcomeProblems(c, dir, out, before)...)
		}
		if len(o.res.Outcomes) == 0 && o.err == nil {
			bad("no job ran and there was no error")
		}
	}
	for p, h := range before {
		if now, err := fileHash(p); err != nil || now != h {
			rel, _ := filepath.Rel(dir, p)
			bad("the input file %s was changed or removed", rel)
		}
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && onnxio.IsTempName(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			bad("stray temporary file %s", rel)
		}
		return nil
	})
	return problems
}

// errorProblems judges an error's text: no panic or internal error, one line per
// problem (several only as file:line:col diagnostics of the config), naming one of the
// case's mentions. A mention found in context counts too: a job's error is shown with
// the job, which names its model.
func errorProblems(c *Case, dir string, err error, context ...string) (problems []string) {
	text := err.Error()
	// The case's folder is named after the test, which is named after the case: names
	// are looked for in the rest of the message.
	named := strings.ReplaceAll(text, dir, "")
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...)+fmt.Sprintf(" [error: %q]", text))
	}
	if strings.Contains(text, "internal error") || strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") {
		bad("an internal error")
	}
	if strings.TrimSpace(text) == "" {
		bad("an empty error message")
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 1 {
		for _, l := range lines {
			if !strings.HasPrefix(l, filepath.Join(dir, "c.yaml")+":") {
				bad("more than one line, and not all are diagnostics of the config (file:line:col)")
				break
			}
		}
	}
	if len(c.Mentions) > 0 {
		found := false
		for _, m := range c.Mentions {
			if strings.Contains(named, m) || slices.ContainsFunc(context, func(s string) bool { return strings.Contains(s, m) }) {
				found = true
				break
			}
		}
		if !found {
			bad("does not name any of %q", c.Mentions)
		}
	}
	return problems
}

// outcomeProblems judges one job: a clear error, or a correct result.
func outcomeProblems(c *Case, dir string, out *pipeline.Outcome, before map[string][32]byte) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	j := out.Job
	switch out.Status {
	case pipeline.StatusOK:
	case pipeline.StatusFailed, pipeline.StatusRejected:
		if out.Err == nil {
			bad("job %s %s without an error", j.Name, out.Status)
			return problems
		}
		judged := c
		if out.Status == pipeline.StatusRejected {
			// A rejection names the outputs and the thresholds they missed (verify's,
			// or quantize's min_sqnr_db floor): that is the clear error, whatever the
			// case broke.
			out := c.fx().OutputName
			judged = &Case{Name: c.Name, Mentions: []string{"rejected: " + out, fmt.Sprintf("output %q is", out)}}
		}
		for _, p := range errorProblems(judged, dir, out.Err, strings.TrimPrefix(j.ModelPath, dir)) {
			bad("job %s %s: %s", j.Name, out.Status, p)
		}
		if j.Output != "" {
			if h, err := fileHash(j.Output); err == nil && h != before[j.Output] {
				bad("job %s %s but wrote its output %s", j.Name, out.Status, j.Output)
			}
		}
		return problems
	default:
		bad("job %s ended %s: %v", j.Name, out.Status, out.Err)
		return problems
	}
	if c.MustFail {
		bad("silent wrong result: job %s ended ok, but this input cannot give a correct one", j.Name)
	}
	rep := out.Report
	verified := false
	for _, s := range rep.Stages {
		if s.Stage != "verify" {
			continue
		}
		var data struct {
			Passed *bool `json:"passed"`
		}
		raw, _ := json.Marshal(s.Data)
		json.Unmarshal(raw, &data)
		if s.Status != pipeline.StatusOK || data.Passed == nil || !*data.Passed {
			bad("job %s ok, but its verify stage %d is %s (passed: %v)", j.Name, s.Index, s.Status, data.Passed)
		}
		verified = true
	}
	if j.Output == "" {
		return problems
	}
	m, err := onnxio.Load(j.Output)
	if err != nil {
		bad("job %s ok, but its artifact does not load: %v", j.Name, err)
		return problems
	}
	if err := onnxio.Check(m); err != nil {
		bad("job %s ok, but its artifact is not a valid model: %v", j.Name, err)
	}
	if p := checkArtifact(c, m); p != "" {
		bad("job %s ok, but its artifact %s", j.Name, p)
	}
	_ = verified
	return problems
}

// checkArtifact runs the artifact on the fixture's sample batch: its outputs must be
// finite and, when the case leaves the model's function unchanged, agree with the
// fixture's reference outputs (PyTorch's).
func checkArtifact(c *Case, m *onnxio.Model) string {
	fx := c.fx()
	data, err := m.Bytes()
	if err != nil {
		return err.Error()
	}
	s, err := ort.NewSession(data, ort.Options{Threads: 1})
	if err != nil {
		return "does not open in onnxruntime: " + err.Error()
	}
	defer s.Close()
	ins := s.Inputs()
	if len(ins) != 1 {
		if c.Unchanged {
			return fmt.Sprintf("has %d inputs", len(ins))
		}
		return ""
	}
	outs, err := runRows(s, ins[0], fx.Input)
	if err != nil {
		if c.Unchanged {
			return "does not run on the fixture's input: " + err.Error()
		}
		return ""
	}
	var names []string
	for k := range outs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, err := outs[k].Float32s()
		if err != nil {
			continue
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Sprintf("gives non-finite values in %s", k)
			}
		}
	}
	if !c.Unchanged {
		return ""
	}
	got, ok := outs[fx.OutputName]
	if !ok {
		return fmt.Sprintf("has no output %s", fx.OutputName)
	}
	g, _ := got.Float32s()
	want := fx.Output.Data.([]float32)
	if got.Shape[0] < fx.Output.Shape[0] { // a fixed batch axis that does not divide the samples
		want = want[:int(got.Shape[0])*int(fx.Output.Shape[1])]
	}
	if len(g) != len(want) {
		return fmt.Sprintf("gives %d values for %s, want %d", len(g), fx.OutputName, len(want))
	}
	var sig, noise float64
	for i := range want {
		d := float64(g[i] - want[i])
		sig += float64(want[i]) * float64(want[i])
		noise += d * d
	}
	if sqnr := 10 * math.Log10(sig/noise); noise > 0 && sqnr < 12 {
		return fmt.Sprintf("disagrees with the fixture's outputs: SQNR %.1f dB", sqnr)
	}
	classes := int(fx.Output.Shape[1])
	agree := 0
	for i := 0; i < len(want)/classes; i++ {
		if argmax(g[i*classes:(i+1)*classes]) == argmax(want[i*classes:(i+1)*classes]) {
			agree++
		}
	}
	if n := len(want) / classes; agree*4 < n*3 {
		return fmt.Sprintf("agrees with the fixture's top-1 on %d of %d samples", agree, n)
	}
	return ""
}

// runRows runs the session on the rows of x, in batches of the size the input fixes
// (rows that do not fill a batch are left out), and concatenates the outputs.
func runRows(s *ort.Session, in ort.ValueInfo, x *onnxio.Tensor) (map[string]*onnxio.Tensor, error) {
	batch := int(x.Shape[0])
	if len(in.Shape) > 0 && in.Shape[0] > 0 {
		batch = int(in.Shape[0])
	}
	v := x.Data.([]float32)
	row := len(v) / int(x.Shape[0])
	out := map[string]*onnxio.Tensor{}
	for i := 0; i+batch <= int(x.Shape[0]); i += batch {
		shape := append([]int64{int64(batch)}, x.Shape[1:]...)
		res, err := s.Run(map[string]*onnxio.Tensor{in.Name: onnxio.NewTensor(shape, v[i*row:(i+batch)*row])})
		if err != nil {
			return nil, err
		}
		for k, t := range res {
			f, err := t.Float32s()
			if err != nil {
				continue
			}
			if prev, ok := out[k]; ok {
				prev.Data = append(prev.Data.([]float32), f...)
				prev.Shape[0] += t.Shape[0]
			} else {
				out[k] = onnxio.NewTensor(slices.Clone(t.Shape), f)
			}
		}
	}
	return out, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// hashes maps every regular file under dir to its sha256.
func hashes(dir string) map[string][32]byte {
	out := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if h, err := fileHash(p); err == nil {
				out[p] = h
			}
		}
		return nil
	})
	return out
}

func fileHash(p string) ([32]byte, error) {
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return [32]byte{}, fmt.Errorf("not a regular file")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(data), nil
}

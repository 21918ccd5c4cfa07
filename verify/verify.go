package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// Options controls Run.
type Options struct {
	// Providers the candidate runs on (default cpu). The reference always runs on cpu.
	Providers []ort.Provider
	// Require lists providers that must be available, else Run fails.
	Require []ort.Provider
	// Outputs are the outputs thresholds apply to (default: all).
	Outputs    []string
	Thresholds Thresholds
	Latency    LatencyOptions
	// Threads and Optimization configure every session.
	Threads      int
	Optimization string
	// ProviderOptions are passed to the GPU providers.
	ProviderOptions map[string]string
	// PerLayerSamples is how many samples the per-layer error uses at most (0: 64; fewer
	// where the activations are large, see PerLayerValues; < 0: no per-layer error).
	PerLayerSamples int
	// HistogramLayers is how many of the worst layers get value histograms (0: 3; < 0:
	// none).
	HistogramLayers int
	// Tasks overrides what outputs mean (DetectTasks), by output name.
	Tasks map[string]Task
	// Floors judges DefaultFloors when Thresholds is empty.
	Floors bool
}

// LatencyOptions controls the latency measurement.
type LatencyOptions struct {
	// Warmup is the number of untimed runs before timing.
	Warmup int `yaml:"warmup" json:"warmup"`
	// Runs is the number of timed runs per model and batch size (0: no latency).
	Runs int `yaml:"runs" json:"runs"`
	// Batch lists the batch sizes timed (a fixed batch axis times only its own size).
	Batch []int `yaml:"batch" json:"batch"`
}

// SchemaVersion is the version of Report's JSON layout (`onnxpipe compare --json`,
// docs/formats.md); it rises when a field is removed or renamed.
const SchemaVersion = 1

// Report is the outcome of a verification.
type Report struct {
	SchemaVersion int               `json:"schema_version"`
	Providers     []*ProviderReport `json:"providers"`
	// Size of the two models' serialized bytes.
	ReferenceBytes int64   `json:"reference_bytes"`
	CandidateBytes int64   `json:"candidate_bytes"`
	SizeRatio      float64 `json:"size_ratio"`
	// PerLayer is the SQNR of each quantized activation along the graph (QDQ candidates).
	PerLayer []Layer `json:"per_layer,omitempty"`
	// Histograms are the value distributions of the worst layers (lowest SQNR) in both
	// models.
	Histograms []Histogram `json:"histograms,omitempty"`
	// Conversions lists the element-type conversions made to feed each model the types
	// its inputs declare and to compare outputs of other float types (a float16 model
	// with float16 inputs and outputs); empty when none was needed.
	Conversions []Conversion `json:"conversions,omitempty"`
	// Failures lists every threshold missed; empty when the candidate passed.
	Failures []string `json:"failures,omitempty"`
	Passed   bool     `json:"passed"`
}

// ProviderReport is the candidate on one provider.
type ProviderReport struct {
	Provider  ort.Provider `json:"provider"`
	Available bool         `json:"available"`
	Reason    string       `json:"reason,omitempty"` // why it is unavailable
	// Outputs compares the candidate on this provider with the reference on cpu.
	Outputs []Metrics `json:"outputs,omitempty"`
	// SelfCPU compares the candidate on this provider with the candidate on cpu (GPU
	// providers only).
	SelfCPU []Metrics `json:"self_cpu,omitempty"`
	Latency []Latency `json:"latency,omitempty"`
	// LatencyNote says why the latency is missing or partial (the reference would not
	// open on this provider).
	LatencyNote string `json:"latency_note,omitempty"`
}

// Latency is the time of one inference run at one batch size.
type Latency struct {
	Model string  `json:"model"` // reference | candidate, both on the report's provider
	Batch int     `json:"batch"`
	Runs  int     `json:"runs"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
}

// Run compares cand with ref on the dataset ds, on each provider, measures latency, and
// judges the thresholds. A provider listed in Require that is unavailable is an error; an
// optional one is reported as unavailable.
func Run(ctx context.Context, ref, cand *onnxio.Model, ds *dataset.Dataset, opts Options) (*Report, error) {
	if len(opts.Providers) == 0 {
		opts.Providers = []ort.Provider{ort.CPU}
	}
	refBytes, err := ref.Bytes()
	if err != nil {
		return nil, err
	}
	candBytes, err := cand.Bytes()
	if err != nil {
		return nil, err
	}
	rep := &Report{SchemaVersion: SchemaVersion, ReferenceBytes: int64(len(refBytes)), CandidateBytes: int64(len(candBytes))}
	rep.SizeRatio = float64(rep.CandidateBytes) / float64(max(1, rep.ReferenceBytes))
	base := ort.Options{Threads: opts.Threads, Optimization: opts.Optimization}
	refSess, err := ort.NewSession(refBytes, base)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	defer refSess.Close()
	if err := sameOutputs(refSess, cand, candBytes, base); err != nil {
		return nil, err
	}
	if err := tasksNameOutputs(ref, opts.Tasks); err != nil {
		return nil, err
	}
	c := &comparison{refSess: refSess, refFeed: NewFeeder("reference", refSess.Inputs()), judged: judgedOutputs(refSess, opts),
		tasks: DetectTasks(ref, opts.Tasks)}
	defer c.close()
	if err := c.openCandidates(candBytes, base, opts); err != nil {
		return nil, err
	}
	for _, r := range c.runs {
		if slices.Contains(opts.Providers, r.rep.Provider) {
			rep.Providers = append(rep.Providers, r.rep)
		}
	}
	if err := c.compare(ctx, ds); err != nil {
		return nil, err
	}
	rep.Failures = c.judge(opts)
	if opts.Latency.Runs > 0 {
		if err := c.measureLatency(ctx, refBytes, ds, opts, base); err != nil {
			return nil, err
		}
	}
	if err := layerErrors(ctx, rep, ref, cand, ds, opts, base); err != nil {
		return nil, err
	}
	rep.Conversions = c.conversions()
	rep.Passed = len(rep.Failures) == 0
	return rep, nil
}

// candidateRun is the candidate on one provider: its session (nil when the provider is
// unavailable) and the error of its outputs accumulated over the dataset.
type candidateRun struct {
	rep  *ProviderReport
	sess *ort.Session
	feed *Feeder
	// acc compares each output with the reference on cpu, self with the candidate on cpu.
	acc  map[string]*Accumulator
	self map[string]*Accumulator
}

// comparison holds the reference session on cpu and the candidate's sessions on every
// provider while Run compares their outputs.
type comparison struct {
	refSess *ort.Session
	refFeed *Feeder
	// runs are the candidate on cpu and on each provider asked for; cpuRun is the one on
	// cpu, which the GPU providers are compared with too.
	runs   []*candidateRun
	cpuRun *candidateRun
	// judged are the outputs compared; labelsOn is the first classifier-shaped one, which
	// the dataset's labels score.
	judged   []string
	labelsOn string
	// tasks is what each output means (DetectTasks on the reference).
	tasks map[string]Task
}

// judgedOutputs returns the outputs the thresholds apply to: opts.Outputs, else every
// output of the reference.
func judgedOutputs(refSess *ort.Session, opts Options) []string {
	judged := opts.Outputs
	if len(judged) == 0 {
		for _, o := range refSess.Outputs() {
			judged = append(judged, o.Name)
		}
	}
	return judged
}

// openCandidates opens a session of the candidate on each provider in opts.Providers,
// and on cpu first when opts.Providers does not list it. An unavailable provider gets a
// run without a session, or is an error when opts.Require lists it.
func (c *comparison) openCandidates(candBytes []byte, base ort.Options, opts Options) error {
	providers := opts.Providers
	if !slices.Contains(providers, ort.CPU) {
		providers = append([]ort.Provider{ort.CPU}, providers...)
	}
	for _, p := range providers {
		pr := &ProviderReport{Provider: p}
		o := base
		o.Provider, o.ProviderOptions = p, opts.ProviderOptions
		s, err := ort.NewSession(candBytes, o)
		var ue *ort.UnavailableError
		switch {
		case errors.As(err, &ue):
			pr.Reason = ue.Reason
			if slices.Contains(opts.Require, p) {
				return fmt.Errorf("required provider %w", err)
			}
		case err != nil:
			return fmt.Errorf("candidate on %s: %w", p, err)
		default:
			pr.Available = true
		}
		r := &candidateRun{rep: pr, sess: s, acc: map[string]*Accumulator{}, self: map[string]*Accumulator{}}
		if s != nil {
			r.feed = NewFeeder("candidate", s.Inputs())
		}
		if p == ort.CPU {
			c.cpuRun = r
		}
		c.runs = append(c.runs, r)
	}
	return nil
}

// close closes the candidate's sessions, the last opened first.
func (c *comparison) close() {
	for i := len(c.runs) - 1; i >= 0; i-- {
		if s := c.runs[i].sess; s != nil {
			s.Close()
		}
	}
}

// compare runs every batch of ds through the reference and the candidate on each
// available provider and accumulates the error of each judged output.
func (c *comparison) compare(ctx context.Context, ds *dataset.Dataset) error {
	for b, err := range ds.Batches() {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.batch(b); err != nil {
			return err
		}
	}
	return nil
}

// batch runs one batch through the reference and the candidate on each available
// provider and adds the outputs' error to each run's accumulators.
func (c *comparison) batch(b *dataset.Batch) error {
	if err := checkInputs(b); err != nil {
		return err
	}
	refIn, err := c.refFeed.Feed(b.Inputs)
	if err != nil {
		return err
	}
	want, err := c.refSess.Run(refIn)
	if err != nil {
		return fmt.Errorf("reference on samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
	}
	var cpuOut map[string]*onnxio.Tensor
	for _, r := range c.runs {
		if r.sess == nil {
			continue
		}
		in, err := r.feed.Feed(b.Inputs)
		if err != nil {
			return err
		}
		got, err := r.sess.Run(in)
		if err != nil {
			return fmt.Errorf("candidate on %s, samples %d..%d: %w", r.rep.Provider, b.Index, b.Index+b.N-1, err)
		}
		if r == c.cpuRun {
			cpuOut = got
		}
		for _, name := range c.judged {
			if err := c.output(r, b, name, want, got, cpuOut); err != nil {
				return err
			}
		}
	}
	return nil
}

// output adds the error of output name on one batch to r: against the reference's want,
// and against the candidate on cpu (cpuOut, nil before the cpu run) when r is on another
// provider. An output missing from either model is skipped.
func (c *comparison) output(r *candidateRun, b *dataset.Batch, name string, want, got, cpuOut map[string]*onnxio.Tensor) error {
	rt, ct := want[name], got[name]
	if rt == nil || ct == nil {
		return nil
	}
	rv, err1 := rt.Float32s()
	cv, err2 := ct.Float32s()
	if err1 != nil || err2 != nil || len(rv) != len(cv) {
		return fmt.Errorf("output %q: reference %s%v and candidate %s%v cannot be compared", name, rt.Type, rt.Shape, ct.Type, ct.Shape)
	}
	c.refFeed.Output(name, rt.Type)
	r.feed.Output(name, ct.Type)
	if r.acc[name] == nil {
		r.acc[name] = newOutputAccumulator(name, c.tasks[name], rt.Shape)
	}
	classes := r.acc[name].classes
	if classes >= 2 && c.labelsOn == "" {
		c.labelsOn = name
	}
	var labels []int64
	if name == c.labelsOn {
		labels = b.Labels
		if err := checkLabels(b, labels, classes, name); err != nil {
			return err
		}
	}
	r.acc[name].Add(rv, cv, b.N, labels)
	if r != c.cpuRun && cpuOut != nil && cpuOut[name] != nil {
		cpu, _ := cpuOut[name].Float32s()
		if r.self[name] == nil {
			r.self[name] = newOutputAccumulator(name, c.tasks[name], rt.Shape)
		}
		r.self[name].Add(cpu, cv, b.N, nil)
	}
	return nil
}

// judge puts each run's metrics into its provider report and returns the thresholds
// missed on the available providers asked for.
func (c *comparison) judge(opts Options) []string {
	var failures []string
	for _, r := range c.runs {
		for _, name := range c.judged {
			if a := r.acc[name]; a != nil {
				r.rep.Outputs = append(r.rep.Outputs, a.Metrics())
			}
			if a := r.self[name]; a != nil {
				r.rep.SelfCPU = append(r.rep.SelfCPU, a.Metrics())
			}
		}
		if !r.rep.Available || !slices.Contains(opts.Providers, r.rep.Provider) {
			continue
		}
		switch {
		case len(opts.Thresholds) > 0:
			failures = append(failures, Judge(opts.Thresholds, string(r.rep.Provider), r.rep.Outputs)...)
		case opts.Floors:
			failures = append(failures, JudgeFloors(string(r.rep.Provider), r.rep.Outputs)...)
		}
	}
	return failures
}

// measureLatency times the reference and the candidate on each available provider asked
// for.
func (c *comparison) measureLatency(ctx context.Context, refBytes []byte, ds *dataset.Dataset, opts Options, base ort.Options) error {
	for _, r := range c.runs {
		if r.sess == nil || !slices.Contains(opts.Providers, r.rep.Provider) {
			continue
		}
		if err := measureOn(ctx, r.rep, refBytes, c.refSess, r.sess, c.refFeed, r.feed, ds, opts, base); err != nil {
			return err
		}
	}
	return nil
}

// conversions lists the element-type conversions the reference's and the candidate's
// feeders made.
func (c *comparison) conversions() []Conversion {
	feeders := []*Feeder{c.refFeed}
	for _, r := range c.runs {
		if r.feed != nil {
			feeders = append(feeders, r.feed)
		}
	}
	return mergeConversions(feeders...)
}

// layerErrors fills rep's per-layer SQNR, on opts.PerLayerSamples samples (0: 64), and
// the value histograms of its opts.HistogramLayers worst layers (0: 3; < 0: none).
func layerErrors(ctx context.Context, rep *Report, ref, cand *onnxio.Model, ds *dataset.Dataset, opts Options, base ort.Options) error {
	limit := opts.PerLayerSamples
	switch {
	case limit < 0:
		return nil
	case limit == 0:
		limit = 64
	}
	var err error
	if rep.PerLayer, err = PerLayer(ctx, ref, cand, ds, limit, base); err != nil {
		return fmt.Errorf("per-layer error: %w", err)
	}
	if n := opts.HistogramLayers; n >= 0 && len(rep.PerLayer) > 0 {
		if n == 0 {
			n = 3
		}
		if rep.Histograms, err = Histograms(ctx, ref, cand, ds, Worst(rep.PerLayer, n), rep.PerLayer[0].Samples, 64, base); err != nil {
			return fmt.Errorf("activation histograms: %w", err)
		}
	}
	return nil
}

// mergeConversions lists the feeders' conversions once each (the candidate's sessions on
// several providers make the same ones).
func mergeConversions(fs ...*Feeder) []Conversion {
	var out []Conversion
	for _, f := range fs {
		for _, c := range f.Conversions() {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// sameOutputs checks that the candidate has the reference's outputs with the same types.
func sameOutputs(refSess *ort.Session, cand *onnxio.Model, candBytes []byte, o ort.Options) error {
	s, err := ort.NewSession(candBytes, o)
	if err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	defer s.Close()
	have := map[string]ort.ValueInfo{}
	for _, v := range s.Outputs() {
		have[v.Name] = v
	}
	for _, v := range refSess.Outputs() {
		c, ok := have[v.Name]
		if !ok {
			return fmt.Errorf("the candidate has no output %q (it has %v); reference and candidate must have the same outputs", v.Name, names(s.Outputs()))
		}
		if c.Type != v.Type && !(c.Type.IsFloat() && v.Type.IsFloat()) {
			return fmt.Errorf("output %q is %s in the reference but %s in the candidate", v.Name, v.Type, c.Type)
		}
	}
	return nil
}

func names(vs []ort.ValueInfo) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// measureOn times the reference and the candidate on the candidate's provider: the
// reference session that judged the outputs runs on cpu, so a GPU provider gets a
// reference session of its own (comparing a GPU candidate with the reference on cpu would
// time the providers, not the models). It gets the provider's device_id only: the other
// provider options are the candidate's (TensorRT's int8 flags, say). When it does not
// open (GPU memory, a TensorRT build), the candidate is timed alone and LatencyNote says
// why: the outputs are judged already, and a missing comparison is no reason to fail.
func measureOn(ctx context.Context, pr *ProviderReport, refBytes []byte, refCPU, cand *ort.Session, refFeed, candFeed *Feeder, ds *dataset.Dataset, opts Options, base ort.Options) error {
	ref := refCPU
	if pr.Provider != ort.CPU {
		o := base
		o.Provider = pr.Provider
		if id, ok := opts.ProviderOptions["device_id"]; ok {
			o.ProviderOptions = map[string]string{"device_id": id}
		}
		s, err := ort.NewSession(refBytes, o)
		if err != nil {
			pr.LatencyNote = fmt.Sprintf("the reference did not open on %s (%v): the candidate is timed alone", pr.Provider, err)
			ref = nil
		} else {
			defer s.Close()
			ref = s
		}
	}
	return measure(ctx, pr, ref, cand, refFeed, candFeed, ds, opts.Latency)
}

// measure times both models at each batch size: warmup runs of each, then timed runs
// that alternate between the two models, so that a change in the machine's load (a
// shared or throttling CPU) falls on both alike and their ratio stays fair.
func measure(ctx context.Context, pr *ProviderReport, ref, cand *ort.Session, refFeed, candFeed *Feeder, ds *dataset.Dataset, lo LatencyOptions) error {
	var first *dataset.Batch
	for b, err := range ds.Batches() {
		if err != nil {
			return err
		}
		first = b
		break
	}
	if first == nil {
		return nil
	}
	sizes := lo.Batch
	if len(sizes) == 0 {
		sizes = []int{1}
	}
	type timed struct {
		name string
		s    *ort.Session
		feed map[string]*onnxio.Tensor
		ms   []float64
	}
	for _, bs := range sizes {
		data, ok := resize(first, bs)
		if !ok {
			continue // a fixed batch axis: only its own size runs
		}
		models := []*timed{{name: "reference", s: ref}, {name: "candidate", s: cand}}
		feeders := []*Feeder{refFeed, candFeed}
		if ref == nil { // the reference did not open on this provider (measureOn)
			models, feeders = models[1:], feeders[1:]
		}
		for i, f := range feeders {
			// converted before timing: the runs time the model, not the conversion
			feed, err := f.Feed(data)
			if err != nil {
				return fmt.Errorf("latency, %s: %w", models[i].name, err)
			}
			models[i].feed = feed
			models[i].ms = make([]float64, 0, lo.Runs)
			for range lo.Warmup {
				if _, err := models[i].s.Run(feed); err != nil {
					return fmt.Errorf("latency, %s at batch %d: %w", models[i].name, bs, err)
				}
			}
		}
		for range lo.Runs {
			for _, m := range models {
				if err := ctx.Err(); err != nil {
					return err
				}
				t := time.Now()
				if _, err := m.s.Run(m.feed); err != nil {
					return fmt.Errorf("latency, %s at batch %d: %w", m.name, bs, err)
				}
				m.ms = append(m.ms, float64(time.Since(t).Nanoseconds())/1e6)
			}
		}
		for _, m := range models {
			p50, p90, p99 := Percentiles(m.ms)
			pr.Latency = append(pr.Latency, Latency{Model: m.name, Batch: bs, Runs: lo.Runs, P50: p50, P90: p90, P99: p99})
		}
	}
	return nil
}

// resize makes a batch of n samples from b's samples (repeating them as needed).
func resize(b *dataset.Batch, n int) (map[string]*onnxio.Tensor, bool) {
	out := map[string]*onnxio.Tensor{}
	for name, t := range b.Inputs {
		if len(t.Shape) == 0 || t.Shape[0] != int64(b.N) {
			return nil, false
		}
		nt, ok := repeatRows(t, b.N, n)
		if !ok {
			return nil, false
		}
		out[name] = nt
	}
	return out, true
}

func repeatRows(t *onnxio.Tensor, have, want int) (*onnxio.Tensor, bool) {
	shape := append([]int64{int64(want)}, t.Shape[1:]...)
	switch d := t.Data.(type) {
	case []float32:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []float16.Float16:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []onnxio.BFloat16:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []float64:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []int8:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []bool:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []int64:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []uint8:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	case []int32:
		return &onnxio.Tensor{Type: t.Type, Shape: shape, Data: repeat(d, have, want)}, true
	}
	return nil, false
}

func repeat[T any](d []T, have, want int) []T {
	row := len(d) / have
	out := make([]T, 0, row*want)
	for i := 0; i < want; i++ {
		r := i % have
		out = append(out, d[r*row:(r+1)*row]...)
	}
	return out
}

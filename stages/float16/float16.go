// Package float16 is the `float16` stage: float32 -> float16 (or bfloat16) conversion,
// with op types an execution provider cannot run kept in float32, and an optional
// search for the fewest nodes to keep in float32 for a metric bound.
package float16

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize/fp16"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/verify"
)

// Stage is the float16 stage.
var Stage = &pipeline.Stage{
	Name: "float16",
	Doc: `Convert the model's float32 weights and arithmetic to float16 (or bfloat16).

Float32 initializers and Constant tensors become float16 (values beyond float16's range
are clamped to ±65504 and non-zero values below its smallest subnormal raised to it,
both counted in the report); value types, Cast targets and generator dtypes follow, and
If/Loop/Scan bodies are converted with their node. Op types the target execution
provider cannot run in float16 stay float32 with Casts around them: for target cpu the
list measured on onnxruntime's CPU provider (docs/float16-ops.md), for target cuda a
short list that has not been measured on a GPU; block_ops and block_nodes add to it.
Inputs whose type constraint is float32 only (Resize scales, NonMaxSuppression boxes)
stay float32 too, and redundant Cast pairs are removed. With keep_io_types the graph
inputs and outputs stay float32 (Casts after the inputs and before the outputs), so
callers need no change; without it they are float16 too, and verify converts float32
data for the model (and its outputs back) with a note saying so.

auto_mixed searches for the fewest nodes to keep in float32 so that the metric of the
converted model's outputs against the float32 model's, on samples of a dataset, meets
min (a bisection over the nodes in graph order, as onnxconverter-common's
auto_convert_mixed_precision does); the report names the nodes it kept.

fold_shapes first folds the shape arithmetic of dynamic-shape exports (Shape, Gather,
Unsqueeze, Concat feeding Reshape) where the graph's declared input shapes make it
constant, which removes int64 nodes float16 cannot shrink.

Put prepare before it to fold BatchNormalization into the convolutions (fewer tensors
to store). The result is opened in onnxruntime before the stage returns. On onnxruntime's CPU
provider float16 mostly saves file size and memory, not time: most CPU kernels are
float32 only and onnxruntime runs them behind Casts of its own.`,
	NewOptions: func() any {
		return &Options{Type: "float16", KeepIOTypes: true, Target: "cpu", BlockOps: []string{}, BlockNodes: []string{},
			FoldShapes: true, AutoMixed: AutoMixed{Metric: "sqnr_db", Min: 40, Samples: 64}}
	},
	ResultType: reflect.TypeFor[*Result](),
	Mutates:    pipeline.Always,
	Run:        run,
}

// Options are the float16 stage's options.
type Options struct {
	// Type is the target element type: float16 or bfloat16.
	Type Type `yaml:"type" json:"type"`
	// KeepIOTypes keeps the graph inputs and outputs float32, with Casts after the inputs
	// and before the outputs; false makes them float16 too (verify and compare convert
	// float32 data to float16 for such a model, and its outputs back, and say so).
	KeepIOTypes bool `yaml:"keep_io_types" json:"keep_io_types"`
	// Target is the execution provider the model is meant for, whose missing float16
	// kernels make the default block list: cpu (measured on onnxruntime's CPU provider)
	// or cuda (a short list, not measured on a GPU).
	Target Target `yaml:"target" json:"target"`
	// BlockOps are op types kept in float32 in addition to the target's default list.
	BlockOps []string `yaml:"block_ops" json:"block_ops"`
	// BlockNodes are node names or glob patterns (path.Match) kept in float32.
	BlockNodes []string `yaml:"block_nodes" json:"block_nodes"`
	// ForceInitializers converts constants read only by float32 nodes too, with a Cast
	// back to float32 in front of them: a smaller file where the arithmetic stays
	// float32 (bfloat16 on cpu, where almost no op has a bfloat16 kernel).
	ForceInitializers bool `yaml:"force_initializers" json:"force_initializers"`
	// FoldShapes folds shape arithmetic that the declared input shapes make constant
	// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains of dynamic-shape exports)
	// before converting: fewer int64 nodes, which float16 cannot shrink.
	FoldShapes bool `yaml:"fold_shapes" json:"fold_shapes"`
	// AutoMixed keeps in float32 the fewest nodes that make the outputs meet a bound on a
	// dataset; off unless its dataset is set.
	AutoMixed AutoMixed `yaml:"auto_mixed" json:"auto_mixed"`
}

// AutoMixed are the options of the float16 stage's mixed-precision search.
type AutoMixed struct {
	// Dataset names the dataset the candidates are judged on; empty turns the search off.
	Dataset string `yaml:"dataset" json:"dataset,omitempty" onnxpipe:"dataset"`
	// Metric is what is compared with the float32 model's outputs (the worst output
	// counts): sqnr_db, cosine, top1_agreement, top5_agreement or accuracy (needs labels).
	Metric AutoMetric `yaml:"metric" json:"metric"`
	// Min is the bound the metric must reach (>=).
	Min float64 `yaml:"min" json:"min"`
	// Samples is how many samples of the dataset each candidate runs on (they are held in
	// memory with the float32 model's outputs); 0 means the whole dataset.
	Samples int `yaml:"samples" json:"samples"`
}

// Type is the element type a model is converted to.
type Type string

// Values lists the accepted types.
func (Type) Values() []string { return []string{"float16", "bfloat16"} }

// Target is the execution provider a converted model is meant for.
type Target string

// Values lists the accepted targets.
func (Target) Values() []string { return []string{"cpu", "cuda"} }

// AutoMetric is the metric auto_mixed judges candidates by.
type AutoMetric string

// Values lists the accepted metrics.
func (AutoMetric) Values() []string { return verify.EvalMetrics }

// Validate checks the options and reports every problem at its option.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if _, err := o.dataType(); err != nil {
		ps.Add("type", "%s", err)
	}
	if !slices.Contains(o.Target.Values(), string(o.Target)) {
		ps.Add("target", "%q: cpu or cuda", o.Target)
	}
	for _, op := range o.BlockOps {
		if op == "" || strings.ContainsAny(op, " */?[") {
			ps.Add("block_ops", "%q is not an op type; list op types such as Resize or TopK", op)
		}
	}
	for _, pat := range o.BlockNodes {
		if _, err := path.Match(pat, ""); err != nil {
			ps.Add("block_nodes", "bad pattern %q: %v", pat, err)
		}
	}
	if o.AutoMixed.Dataset != "" {
		if !slices.Contains(verify.EvalMetrics, string(o.AutoMixed.Metric)) {
			ps.Add("auto_mixed.metric", "%q: one of %s", o.AutoMixed.Metric, strings.Join(verify.EvalMetrics, ", "))
		}
		if o.AutoMixed.Samples < 0 {
			ps.Add("auto_mixed.samples", "%d: 0 (the whole dataset) or a positive count", o.AutoMixed.Samples)
		}
	}
	return ps.Err()
}

// Warnings points out options that have no effect or probably do not do what is meant.
func (o *Options) Warnings() []string {
	var w []string
	def := Stage.NewOptions().(*Options).AutoMixed
	if o.AutoMixed.Dataset == "" && (o.AutoMixed.Metric != def.Metric || o.AutoMixed.Min != def.Min || o.AutoMixed.Samples != def.Samples) {
		w = append(w, "auto_mixed options are ignored without auto_mixed.dataset")
	}
	if o.Type == "bfloat16" && o.Target == "cpu" && !o.ForceInitializers {
		w = append(w, "type bfloat16 with target cpu: onnxruntime's CPU provider has almost no bfloat16 kernels, so most nodes stay float32 and the file hardly shrinks; set force_initializers: true to store the weights in bfloat16")
	}
	return w
}

var (
	_ pipeline.Validator = (*Options)(nil)
	_ pipeline.Warner    = (*Options)(nil)
)

func (o *Options) dataType() (onnxio.DataType, error) {
	switch o.Type {
	case "float16":
		return onnxio.TypeFloat16, nil
	case "bfloat16":
		return onnxio.TypeBFloat16, nil
	}
	return onnxio.TypeUndefined, fmt.Errorf("%q: float16 or bfloat16", string(o.Type))
}

// Result is what the stage returns to later stages and the report.
type Result struct {
	*fp16.Report
	// ShapesFolded says what fold_shapes did (nil when off).
	ShapesFolded *fp16.FoldReport `json:"shapes_folded,omitempty"`
	// BlockOps is the block list used (the target's defaults plus block_ops).
	BlockOps []string `json:"block_ops"`
}

// ReportData is the part of the result the report shows: the result, with the search's
// metrics (+Inf for outputs identical to float32's) in a JSON-safe form.
func (r *Result) ReportData() any {
	type step struct {
		fp16.SearchStep
		Metric report.Float `json:"metric"`
	}
	type data struct {
		*Result
		Metric report.Float `json:"metric,omitempty"`
		Search []step       `json:"search,omitempty"`
	}
	d := data{Result: r, Metric: report.Float(r.Report.Metric)}
	for _, s := range r.Report.Search {
		d.Search = append(d.Search, step{SearchStep: s, Metric: report.Float(s.Metric)})
	}
	return d
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	if s := onnxio.Summarize(p.Model()); s.Quantization != "none" || s.Float16 {
		what := s.Quantization
		if s.Float16 {
			what = "float16"
		}
		return nil, fmt.Errorf("the model is already %s; convert a float32 model (put float16 before quantize, or drop one of them)", what)
	}
	dt, err := o.dataType()
	if err != nil {
		return nil, err
	}
	before := p.Model()
	m := before.Clone()
	bytesBefore, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if o.FoldShapes {
		fr, err := fp16.FoldShapes(m)
		if err != nil {
			return nil, err
		}
		res.ShapesFolded = fr
	}
	blockOps, err := fp16.DefaultBlockOpsFor(string(o.Target), dt)
	if err != nil {
		return nil, err
	}
	for _, op := range o.BlockOps {
		if !slices.Contains(blockOps, op) {
			blockOps = append(blockOps, op)
		}
	}
	sort.Strings(blockOps)
	res.BlockOps = blockOps
	blockNodes, unmatched := matchNodes(m.Graph(), o.BlockNodes)
	for _, pat := range unmatched {
		p.Warn("block_nodes: %q matches no node of the model", pat)
	}
	fo := fp16.Options{Type: dt, KeepIOTypes: o.KeepIOTypes, Target: string(o.Target), BlockOps: blockOps,
		BlockNodes: blockNodes, ForceInitializers: o.ForceInitializers}
	var rep *fp16.Report
	if o.AutoMixed.Dataset != "" {
		rep, err = autoMixed(p, o, m, before, fo)
	} else {
		rep, err = fp16.Convert(m, fo)
	}
	if err != nil {
		return nil, err
	}
	// The sizes cover the whole stage (shape folding included).
	rep.BytesBefore = int64(len(bytesBefore))
	if err := onnxio.Check(m); err != nil {
		return nil, fmt.Errorf("the converted model is not valid ONNX (a bug; block_ops or block_nodes may avoid it): %w", err)
	}
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	rep.BytesAfter = int64(len(data))
	s, err := ort.NewSession(data, ort.Options{Threads: p.Runtime().Threads, Optimization: p.Runtime().Optimization})
	if err != nil {
		return nil, fmt.Errorf("onnxruntime cannot open the %s model: %w; keep the failing op type in float32 with block_ops", dt, err)
	}
	s.Close()
	res.Report = rep
	record(p, res)
	p.SetModel(m)
	return res, nil
}

// matchNodes expands node-name patterns against every node of g (subgraphs included)
// and returns the matching names and the patterns that matched nothing.
func matchNodes(g *onnxpb.GraphProto, patterns []string) (names, unmatched []string) {
	if len(patterns) == 0 {
		return nil, nil
	}
	var all []string
	var walk func(*onnxpb.GraphProto)
	walk = func(g *onnxpb.GraphProto) {
		for _, n := range g.GetNode() {
			if n.GetName() != "" {
				all = append(all, n.GetName())
			}
			for _, sg := range onnxio.Subgraphs(n) {
				walk(sg)
			}
		}
	}
	walk(g)
	seen := map[string]bool{}
	for _, pat := range patterns {
		hit := false
		for _, name := range all {
			if ok, _ := path.Match(pat, name); ok {
				hit = true
				if !seen[name] {
					seen[name] = true
					names = append(names, name)
				}
			}
		}
		if !hit {
			unmatched = append(unmatched, pat)
		}
	}
	return names, unmatched
}

// record reports what the conversion did.
func record(p *pipeline.Pass, r *Result) {
	rep := r.Report
	if f := r.ShapesFolded; f != nil && f.NodesRemoved > 0 {
		p.Metric("shape_nodes_removed", float64(f.NodesRemoved), "")
		p.Note("fold_shapes: %s", f)
	}
	p.Metric("initializers_converted", float64(rep.InitializersConverted), "")
	p.Metric("constants_converted", float64(rep.ConstantsConverted), "")
	p.Metric("nodes_converted", float64(rep.NodesConverted), "")
	p.Metric("nodes_kept_float32", float64(len(rep.Kept)), "")
	p.Metric("casts_inserted", float64(rep.CastsInserted), "")
	p.Metric("casts_removed", float64(rep.CastsRemoved), "")
	p.Metric("clamped", float64(rep.Clamped), "")
	p.Metric("flushed", float64(rep.Flushed), "")
	p.Metric("bytes_before", float64(rep.BytesBefore), "B")
	p.Metric("bytes_after", float64(rep.BytesAfter), "B")
	p.KeyMetric("size_ratio", rep.Ratio(), "x")
	if rep.Clamped > 0 {
		p.Warn("%d constant values beyond ±%s's largest finite value were clamped to it: check the outputs with verify", rep.Clamped, rep.Type)
	}
	if rep.Flushed > 0 {
		p.Note("%d non-zero constant values below %s's smallest positive value were raised to it (not flushed to zero)", rep.Flushed, rep.Type)
	}
	if len(rep.Kept) > 0 {
		byReason := map[string][]string{}
		var reasons []string
		for _, k := range rep.Kept {
			if byReason[k.Reason] == nil {
				reasons = append(reasons, k.Reason)
			}
			byReason[k.Reason] = append(byReason[k.Reason], fmt.Sprintf("%s (%s)", k.Name, k.OpType))
		}
		sort.Strings(reasons)
		for _, why := range reasons {
			names := byReason[why]
			more := ""
			if len(names) > 20 {
				more = fmt.Sprintf(" and %d more (see the report data)", len(names)-20)
				names = names[:20]
			}
			p.Note("kept in float32, %s: %s%s", why, strings.Join(names, ", "), more)
		}
	}
	for _, w := range rep.Warnings {
		p.Warn("%s", w)
	}
	if rep.Evals > 0 {
		p.Metric("auto_mixed_evals", float64(rep.Evals), "")
		p.Metric("auto_mixed_metric", rep.Metric, "")
	}
	p.Note("%s", rep)
}

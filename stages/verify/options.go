package verify

import (
	"maps"
	"slices"

	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// Options are the verify stage's options.
type Options struct {
	// Dataset names the dataset to compare on. Required.
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Reference is input (the model the job started with) or previous (the model before
	// the latest stage that changed it).
	Reference Reference `yaml:"reference" json:"reference"`
	// Providers the candidate runs on: cpu, cuda, tensorrt.
	Providers []ort.Provider `yaml:"providers" json:"providers"`
	// Require lists providers that must be available, else the job fails.
	Require []ort.Provider `yaml:"require" json:"require"`
	// Outputs are the outputs thresholds apply to (empty: all).
	Outputs []string `yaml:"outputs" json:"outputs"`
	// Thresholds maps a metric (sqnr_db, cosine, max_abs, mean_abs, rmse, top1_agreement,
	// top5_agreement, accuracy, accuracy_drop, decision_agreement, mask_iou,
	// step_agreement, sequence_agreement) to its bound; all must hold.
	Thresholds map[Threshold]float64 `yaml:"thresholds" json:"thresholds"`
	// Tasks says what an output means, by output name, where the detection is wrong or a
	// threshold other than 0.5 is wanted: kind (scores, decision, mask, sequence, none),
	// threshold (a decision or mask value >= it is positive) and blank (a sequence's CTC
	// blank class, default 0). Without it an output made by Sigmoid is a decision (or a
	// mask, with spatial axes), one made by Softmax with rank 3 a sequence, a rank-2 one
	// with >= 2 columns class scores; each kind gets its task metrics in the report.
	Tasks map[string]v.Task `yaml:"tasks" json:"tasks,omitempty"`
	// DefaultFloors, when no thresholds are set, judges every output by a floor of what it
	// means, so that a conversion that broke the model is never reported ok: top-1
	// agreement 0.99 for class scores, decision agreement 0.99 for decisions, mask IoU
	// 0.95 for masks, sequence agreement 0.98 for sequences, SQNR 15 dB for other
	// outputs (and SQNR too for a decision or mask whose reference is one-sided, where
	// agreement is trivial). They judge a conversion of the reference (int8, float16); after distill the
	// candidate is another model: set thresholds, or false to only measure.
	DefaultFloors bool `yaml:"default_floors" json:"default_floors"`
	// PerLayerSamples is how many samples the per-layer error of a quantized model (the
	// SQNR of each quantized activation, and the histograms of the worst) uses at most:
	// 0 is 64, fewer where the activations are large (2^26 values per model at most, at
	// least one batch); -1 turns the analysis off.
	PerLayerSamples int `yaml:"per_layer_samples" json:"per_layer_samples,omitempty"`
	// Latency sets warmup runs, timed runs and batch sizes (runs: 0 turns it off).
	Latency v.LatencyOptions `yaml:"latency" json:"latency"`
	// AutoExclude, when max_tries > 0 and thresholds (or, without them, the default
	// floors) fail on the model a quantize stage made, puts the layers that introduce the most error (the largest drop in per-layer
	// SQNR from their inputs) back to float and quantizes again, up to max_tries times;
	// the stage then replaces the model with the last try's.
	AutoExclude AutoExclude `yaml:"auto_exclude" json:"auto_exclude"`
}

// Reference names the model the candidate is compared with.
type Reference string

// The references.
const (
	Input    Reference = "input"
	Previous Reference = "previous"
)

// Values lists the references.
func (Reference) Values() []string { return []string{string(Input), string(Previous)} }

// Threshold is a metric a bound can be set on.
type Threshold string

// Values lists the metrics thresholds apply to.
func (Threshold) Values() []string { return v.ThresholdKeys() }

// AutoExclude configures the accuracy-aware retry.
type AutoExclude struct {
	// MaxTries is the most re-quantizations (0: off).
	MaxTries int `yaml:"max_tries" json:"max_tries"`
	// PerTry is how many layers go back to float on each try (a folded Relu and the node
	// before it count as two; 0: 2).
	PerTry int `yaml:"per_try" json:"per_try,omitempty"`
}

func defaults() *Options {
	return &Options{Reference: Input, Providers: []ort.Provider{ort.CPU}, Require: []ort.Provider{ort.CPU},
		Outputs: []string{}, Thresholds: map[Threshold]float64{}, DefaultFloors: true,
		Latency: v.LatencyOptions{Warmup: 5, Runs: 50, Batch: []int{1, 8}}}
}

// Validate checks the options.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if o.Dataset == "" {
		ps.Add("dataset", "is required: name one of the config's datasets")
	}
	if o.Latency.Runs < 0 {
		ps.Add("latency.runs", "%d: cannot be negative", o.Latency.Runs)
	}
	if o.Latency.Warmup < 0 {
		ps.Add("latency.warmup", "%d: cannot be negative", o.Latency.Warmup)
	}
	for _, b := range o.Latency.Batch {
		if b < 1 {
			ps.Add("latency.batch", "%d: batch sizes are at least 1", b)
		}
	}
	if o.PerLayerSamples < -1 {
		ps.Add("per_layer_samples", "%d: a sample count, 0 for the default or -1 for none", o.PerLayerSamples)
	}
	if o.PerLayerSamples == -1 && o.AutoExclude.MaxTries > 0 {
		ps.Add("per_layer_samples", "-1 turns off the per-layer error that auto_exclude chooses the layers by: leave it on, or auto_exclude off")
	}
	if o.AutoExclude.MaxTries < 0 {
		ps.Add("auto_exclude.max_tries", "%d: cannot be negative", o.AutoExclude.MaxTries)
	}
	if o.AutoExclude.PerTry < 0 {
		ps.Add("auto_exclude.per_try", "%d: cannot be negative", o.AutoExclude.PerTry)
	}
	for _, name := range slices.Sorted(maps.Keys(o.Tasks)) {
		if field, problem := o.Tasks[name].Check(); field != "" {
			ps.Add("tasks."+name+"."+field, "%s", problem)
		}
	}
	if o.AutoExclude.MaxTries > 0 && len(o.Thresholds) == 0 && !o.DefaultFloors {
		ps.Add("auto_exclude", "retries only when thresholds (or the default floors) fail: set thresholds, or leave default_floors on")
	}
	return ps.Err()
}

var _ pipeline.Validator = (*Options)(nil)

// thresholds are the options' thresholds as package verify takes them.
func (o *Options) thresholds() v.Thresholds {
	t := v.Thresholds{}
	for k, x := range o.Thresholds {
		t[string(k)] = x
	}
	return t
}

// autoExclude reports whether the accuracy-aware retry is on.
func (o *Options) autoExclude() bool { return o.AutoExclude.MaxTries > 0 }

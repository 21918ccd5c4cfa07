// Package qat is the `qat` stage: quantization-aware fine-tuning of a quantized model,
// with the float model as teacher.
package qat

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/distill"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/qat"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/stages/internal/training"
	"github.com/onnxpipe/onnxpipe/train"
	"github.com/onnxpipe/onnxpipe/verify"
)

// Stage is the qat stage.
var Stage = &pipeline.Stage{
	Name: "qat",
	Doc: `Quantization-aware training: fine-tune a quantized model's weights on data.

The stage starts from the QDQ model a quantize stage wrote (each integer weight becomes a
float weight behind QuantizeLinear -> DequantizeLinear with the same scale, so training
sees exactly the quantized forward), or, with weights:, quantizes a float model's weights
itself (int4/uint4, opset 21, or int8/uint8; per channel). Our Go engine trains the float
weights through the fake quantization (straight-through gradients clipped to the
quantization range; scales learned LSQ-style with learn_scales), with the float model as
teacher (soft loss as in distill) and/or the labels; then the model is written back as QDQ
with the trained weights requantized and int32 biases. Constants the quantizer stored as
integers (epsilons, GELU's constants) are not trained. Epochs, optimizer, schedule, early
stopping, checkpoints and the curves in the report work as in distill. Before and after,
the stage measures the fidelity of the model it started from (the post-training
quantization) and of the fine-tuned one in onnxruntime on the validation data (the
training data without validation:): SQNR of the output against the float model and, with
labels, accuracy; it logs and reports both, and by default (keep: best) writes the better
of the two, with a warning when QAT made things worse.`,
	NewOptions: func() any {
		return &Options{Teacher: "input", Temperature: 4, SoftWeight: 1, Epochs: 3, Batch: 64,
			Optimizer: training.Optimizer{Name: "adam", LR: 0.0001, Momentum: 0.9}, Schedule: training.Schedule{Name: "cosine"},
			Seed: 1, MemoryLimit: 2 << 30, Keep: "best"}
	},
	ResultType: reflect.TypeFor[*Result](),
	Mutates:    pipeline.Always,
	Run:        run,
}

// Options are the qat stage's options.
type Options struct {
	// Dataset names the training data.
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Validation names the data evaluated before training and after each epoch; it picks
	// the best epoch and drives early stopping. Optional.
	Validation string `yaml:"validation" json:"validation,omitempty" onnxpipe:"dataset"`
	// Teacher is input (the float model the job started with teaches, by its outputs) or
	// none (the labels alone: soft_weight must be 0 and hard_weight positive).
	Teacher Teacher `yaml:"teacher" json:"teacher"`
	// Temperature softens both distributions of the soft loss.
	Temperature float64 `yaml:"temperature" json:"temperature"`
	// SoftWeight is the weight of T^2 * KL(softmax(teacher/T) || softmax(model/T)).
	SoftWeight float64 `yaml:"soft_weight" json:"soft_weight"`
	// HardWeight is the weight of the cross-entropy with the labels.
	HardWeight float64 `yaml:"hard_weight" json:"hard_weight"`
	// LearnScales trains the quantization scales of the weights and activations too
	// (LSQ), with their own rate scale_lr.
	LearnScales bool `yaml:"learn_scales" json:"learn_scales"`
	// ScaleLR is the learning rate of the scales (0: a tenth of optimizer.lr).
	ScaleLR float64 `yaml:"scale_lr" json:"scale_lr,omitempty"`
	// Weights, when set, quantizes a float model's weights here instead of starting from
	// a quantize stage's QDQ model: the low-bit case where post-training quantization
	// loses accuracy.
	Weights *Weights `yaml:"weights" json:"weights,omitempty"`
	// RecomputeScales gives the weights new scales from their trained ranges when the
	// model is written back; by default the scales training used are kept, so the QDQ
	// model computes exactly what training saw.
	RecomputeScales bool `yaml:"recompute_scales" json:"recompute_scales,omitempty"`
	// Epochs is the number of passes over the training data (0: quantize and evaluate
	// only, which with weights: is post-training quantization of the weights).
	Epochs int `yaml:"epochs" json:"epochs"`
	// Batch is the number of samples per training step.
	Batch int `yaml:"batch" json:"batch"`
	// Optimizer is the update rule.
	Optimizer training.Optimizer `yaml:"optimizer" json:"optimizer"`
	// Schedule changes the learning rate during training.
	Schedule training.Schedule `yaml:"schedule" json:"schedule"`
	// ClipGrad, when > 0, bounds the global L2 norm of the gradients.
	ClipGrad float64 `yaml:"clip_grad" json:"clip_grad,omitempty"`
	// EarlyStopping stops training when validation stops improving.
	EarlyStopping training.EarlyStopping `yaml:"early_stopping" json:"early_stopping"`
	// Checkpoint is a file written after each epoch and resumed from.
	Checkpoint string `yaml:"checkpoint" json:"checkpoint,omitempty" onnxpipe:"path,writes"`
	// Seed makes the run deterministic.
	Seed uint64 `yaml:"seed" json:"seed"`
	// MemoryLimit is the most bytes of training data kept in memory.
	MemoryLimit int64 `yaml:"memory_limit" json:"memory_limit"`
	// Keep is the model the stage writes: best keeps the better of the model QAT started
	// from (the post-training quantization: the quantize stage's QDQ model, or with
	// weights: the weights rounded to their grid, untrained) and the fine-tuned one, by
	// accuracy on the validation data when it has labels (SQNR against the float model on
	// a tie), else by SQNR; with a warning when the fine-tuned one is worse. last keeps the
	// fine-tuned model whatever it measures (still with the warning). Both models' SQNR and
	// accuracy are in the report either way.
	Keep Keep `yaml:"keep" json:"keep"`
}

// Keep says which model the stage writes.
type Keep string

// Values lists the choices.
func (Keep) Values() []string { return []string{"best", "last"} }

// Weights configures the fake quantization of a float model's weights.
type Weights struct {
	// Type is int4, uint4, int8 or uint8.
	Type WeightType `yaml:"type" json:"type" default:"int4"`
	// PerTensor uses one scale per weight instead of one per output channel.
	PerTensor bool `yaml:"per_tensor" json:"per_tensor,omitempty"`
	// Asymmetric uses the weight's min and max with a zero point instead of ±max|w|.
	Asymmetric bool `yaml:"asymmetric" json:"asymmetric,omitempty"`
	// OpTypes limits the op types whose weights are quantized.
	OpTypes []string `yaml:"op_types" json:"op_types,omitempty" default:"[Conv, ConvTranspose, Gemm, MatMul]"`
	// ExcludeNodes are node names whose weights stay float.
	ExcludeNodes []string `yaml:"exclude_nodes" json:"exclude_nodes,omitempty"`
}

// Teacher says what teaches the quantized model.
type Teacher string

// Values lists the teachers.
func (Teacher) Values() []string { return []string{"input", "none"} }

// WeightType is the integer type weights are quantized to.
type WeightType string

// Values lists the weight types.
func (WeightType) Values() []string { return []string{"int4", "uint4", "int8", "uint8"} }

var weightTypes = map[WeightType]onnxio.DataType{"int4": onnxio.TypeInt4, "uint4": onnxio.TypeUint4, "int8": onnxio.TypeInt8, "uint8": onnxio.TypeUint8}

// Validate checks the options and reports every problem at its option.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if o.Dataset == "" {
		ps.Add("dataset", "is required: name a dataset of the config's datasets:")
	}
	switch o.Teacher {
	case "input":
	case "none":
		if o.SoftWeight != 0 || o.HardWeight <= 0 {
			ps.Add("teacher", "none trains on the labels: set soft_weight: 0 and hard_weight > 0")
		}
	default:
		ps.Add("teacher", "%q: use input or none", o.Teacher)
	}
	if o.Weights != nil {
		if o.Weights.Type == "" {
			o.Weights.Type = "int4"
		}
		if _, ok := weightTypes[o.Weights.Type]; !ok {
			ps.Add("weights.type", "%q: use int4, uint4, int8 or uint8", o.Weights.Type)
		}
	}
	switch o.Keep {
	case "":
		o.Keep = "best"
	case "best", "last":
	default:
		ps.Add("keep", "%q: use best or last", o.Keep)
	}
	if o.Epochs < 0 {
		ps.Add("epochs", "must not be negative")
	}
	if o.Batch < 1 {
		ps.Add("batch", "must be at least 1")
	}
	if !(o.Temperature > 0) {
		ps.Add("temperature", "%g must be positive", o.Temperature)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"soft_weight", o.SoftWeight}, {"hard_weight", o.HardWeight}, {"scale_lr", o.ScaleLR}} {
		if f.v < 0 {
			ps.Add(f.name, "must not be negative")
		}
	}
	if o.SoftWeight+o.HardWeight == 0 {
		ps.Add("soft_weight", "soft_weight and hard_weight are both 0: nothing to learn from")
	}
	training.Check(&ps, o.Optimizer, o.Schedule, o.EarlyStopping, o.Validation)
	return ps.Err()
}

// Warnings reports options that have no effect.
func (o *Options) Warnings() []string {
	if o.ScaleLR != 0 && !o.LearnScales {
		return []string{"scale_lr is ignored without learn_scales: true"}
	}
	return nil
}

var (
	_ pipeline.Validator = (*Options)(nil)
	_ pipeline.Warner    = (*Options)(nil)
)

// Result is the stage's result.
type Result struct {
	*distill.Result
	Info     *qat.Info           `json:"info"`
	Finalize *qat.FinalizeResult `json:"finalize"`
	// Trained is the number of fake-quantized weights training updated (the others are
	// constants the quantizer stored as integers).
	Trained  int       `json:"trained_weights"`
	Fidelity *Fidelity `json:"fidelity"`
}

// ReportData gives the report the fidelity before and after QAT and the weights
// trained (the per-epoch history is in the charts).
func (r *Result) ReportData() any {
	return struct {
		TrainedWeights int       `json:"trained_weights"`
		Fidelity       *Fidelity `json:"fidelity"`
	}{r.Trained, r.Fidelity}
}

// Fidelity compares the model QAT started from (the post-training quantization) and the
// fine-tuned one with the float model, in onnxruntime.
type Fidelity struct {
	// Dataset is the dataset measured on, Samples its size, Output the output compared.
	Dataset string `json:"dataset"`
	Samples int    `json:"samples"`
	Output  string `json:"output"`
	// SQNR of the output against the float model's, in dB, before (PTQ) and after
	// (QAT); +Inf when identical, -Inf for non-finite values.
	SQNRBefore report.Float `json:"sqnr_db_before"`
	SQNRAfter  report.Float `json:"sqnr_db_after"`
	// Top-1 accuracies with labels (on the first classifier-shaped output).
	FloatAccuracy  *float64 `json:"float_accuracy,omitempty"`
	AccuracyBefore *float64 `json:"accuracy_before,omitempty"`
	AccuracyAfter  *float64 `json:"accuracy_after,omitempty"`
	// Worse is true when the fine-tuned model measures worse; Kept is "qat" or "ptq".
	Worse bool   `json:"worse"`
	Kept  string `json:"kept"`
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	m := p.Model()
	s := onnxio.Summarize(m)
	var trainable *onnxio.Model
	var info *qat.Info
	var err error
	switch {
	case o.Weights != nil && s.Quantization != "none":
		return nil, fmt.Errorf("weights: quantizes a float model's weights, but this model is already quantized (%s): remove weights: to fine-tune it as it is", s.Quantization)
	case o.Weights != nil:
		trainable, info, err = qat.FakeQuantWeights(m, qat.WeightOptions{Type: weightTypes[o.Weights.Type],
			PerTensor: o.Weights.PerTensor, Asymmetric: o.Weights.Asymmetric, OpTypes: o.Weights.OpTypes, ExcludeNodes: o.Weights.ExcludeNodes})
	case s.Quantization == "none":
		return nil, fmt.Errorf("qat fine-tunes a quantized model: put a quantize stage before it, or give weights: {type: int4} to quantize this float model's weights here")
	default:
		trainable, info, err = qat.Trainable(m)
	}
	if err != nil {
		return nil, err
	}
	if len(info.Weights) == 0 {
		return nil, fmt.Errorf("the model has no quantized weights to train")
	}
	for _, n := range info.Notes {
		p.Note("%s", n)
	}
	teacher := p.Input()
	if o.Teacher == "none" {
		teacher = m // its outputs are only reported: soft_weight is 0
	}
	data, val, err := training.OpenData(p, teacher, o.Dataset, o.Validation)
	if err != nil {
		return nil, err
	}
	cfg := training.Config(p, data, o.Batch, o.Optimizer, o.Schedule, o.ClipGrad)
	cfg.Temperature, cfg.SoftWeight, cfg.HardWeight = o.Temperature, o.SoftWeight, o.HardWeight
	cfg.Epochs, cfg.Patience, cfg.Checkpoint, cfg.Seed, cfg.MemoryLimit = o.Epochs, o.EarlyStopping.Patience, o.Checkpoint, o.Seed, o.MemoryLimit
	cfg.LearnScales, cfg.ScaleLR = info.LearnScales(o.LearnScales, o.LearnScales), o.ScaleLR
	res, err := distill.Run(p.Ctx, teacher, trainable, data, val, cfg)
	if err != nil {
		return nil, err
	}
	final, fr, err := qat.Finalize(res.Student, qat.FinalizeOptions{RecomputeScales: o.RecomputeScales})
	if err != nil {
		return nil, fmt.Errorf("writing the trained model back as QDQ: %w", err)
	}
	for _, n := range fr.Notes {
		p.Note("%s", n)
	}
	if fr.Clipped > 0 {
		p.Warn("%d bias values overflowed int32 and were clipped", fr.Clipped)
	}
	ptq := m // the model QAT started from
	if o.Weights != nil {
		if ptq, _, err = qat.Finalize(trainable, qat.FinalizeOptions{}); err != nil {
			return nil, fmt.Errorf("the post-training quantization of the weights: %w", err)
		}
	}
	evalData, evalName := val, o.Validation
	if val == nil {
		evalData, evalName = data, o.Dataset
	}
	fid, err := measure(p, res.Output, ptq, final, evalData, evalName)
	if err != nil {
		return nil, fmt.Errorf("measuring the fidelity before and after QAT: %w", err)
	}
	out := &Result{Result: res, Info: info, Finalize: fr, Trained: trainedWeights(trainable, info, cfg.LearnScales), Fidelity: fid}
	keep(p, o, fid)
	record(p, o, out)
	if o.Checkpoint != "" {
		p.AddArtifact("qat_checkpoint", o.Checkpoint)
	}
	if fid.Kept == "ptq" {
		p.SetModel(ptq)
	} else {
		p.SetModel(final)
	}
	return out, nil
}

// trainedWeights counts the fake-quantized weights that training updates (train's
// parameters).
func trainedWeights(trainable *onnxio.Model, info *qat.Info, learn func(string) bool) int {
	g, err := train.Compile(trainable, train.CompileOptions{LearnScales: learn})
	if err != nil {
		return 0 // distill.Run compiled it: cannot happen
	}
	n := 0
	for _, w := range info.Weights {
		if g.Param(w.Name) != nil {
			n++
		}
	}
	return n
}

// measure runs the float model (the job's input), the model QAT started from and the
// fine-tuned one on ds in onnxruntime and compares the two with the float one on output.
func measure(p *pipeline.Pass, output string, ptq, final *onnxio.Model, ds *dataset.Dataset, name string) (*Fidelity, error) {
	rt := p.Runtime()
	set, err := verify.NewEvalSet(p.Ctx, p.Input(), ds, 0, "sqnr_db", ort.Options{Threads: rt.Threads, Optimization: rt.Optimization})
	if err != nil {
		return nil, err
	}
	f := &Fidelity{Dataset: name, Samples: set.Samples(), Output: output, Kept: "qat"}
	for i, m := range []*onnxio.Model{ptq, final} {
		ms, err := set.Compare(m)
		if err != nil {
			return nil, err
		}
		sqnr, acc := report.Float(math.NaN()), (*float64)(nil)
		for _, x := range ms {
			if x.Output == output {
				sqnr = x.SQNRdB
				if x.NaN > 0 {
					sqnr = report.Float(math.Inf(-1))
				}
			}
			if x.CandAccuracy != nil {
				acc = x.CandAccuracy
				f.FloatAccuracy = x.RefAccuracy
			}
		}
		if i == 0 {
			f.SQNRBefore, f.AccuracyBefore = sqnr, acc
		} else {
			f.SQNRAfter, f.AccuracyAfter = sqnr, acc
		}
	}
	switch a, b := f.AccuracyAfter, f.AccuracyBefore; {
	case a != nil && b != nil && *a != *b:
		f.Worse = *a < *b
	default:
		f.Worse = float64(f.SQNRAfter) < float64(f.SQNRBefore) || math.IsNaN(float64(f.SQNRAfter)) && !math.IsNaN(float64(f.SQNRBefore))
	}
	return f, nil
}

// keep logs the fidelity of both models and decides which one the stage writes.
func keep(p *pipeline.Pass, o *Options, f *Fidelity) {
	line := fmt.Sprintf("fidelity on %s (%d samples, output %q, against the float model): before QAT (post-training quantization) %s; after QAT %s",
		f.Dataset, f.Samples, f.Output, figures(f.SQNRBefore, f.AccuracyBefore), figures(f.SQNRAfter, f.AccuracyAfter))
	if f.FloatAccuracy != nil {
		line += fmt.Sprintf("; float accuracy %.4f", *f.FloatAccuracy)
	}
	p.Log.Info(line)
	p.Note("%s", line)
	if !f.Worse {
		return
	}
	if o.Keep == "last" {
		p.Warn("QAT made the model worse than the post-training quantization it started from (%s → %s); keep: last writes the fine-tuned model anyway",
			figures(f.SQNRBefore, f.AccuracyBefore), figures(f.SQNRAfter, f.AccuracyAfter))
		return
	}
	f.Kept = "ptq"
	p.Warn("QAT made the model worse than the post-training quantization it started from (%s → %s): the stage writes the post-training quantized model (keep: last writes the fine-tuned one)",
		figures(f.SQNRBefore, f.AccuracyBefore), figures(f.SQNRAfter, f.AccuracyAfter))
}

func figures(sqnr report.Float, acc *float64) string {
	s := fmt.Sprintf("SQNR %.2f dB", float64(sqnr))
	if acc != nil {
		s += fmt.Sprintf(", accuracy %.4f", *acc)
	}
	return s
}

func record(p *pipeline.Pass, o *Options, r *Result) {
	res, info, fr, f := r.Result, r.Info, r.Finalize, r.Fidelity
	g := res.Generations[len(res.Generations)-1]
	sqnr, acc := f.SQNRAfter, f.AccuracyAfter
	if f.Kept == "ptq" {
		sqnr, acc = f.SQNRBefore, f.AccuracyBefore
	}
	if acc != nil && f.AccuracyBefore != nil && f.AccuracyAfter != nil {
		p.KeyMetric("accuracy", *acc, "")
		p.Metric("accuracy_before", *f.AccuracyBefore, "")
		p.Metric("accuracy_after", *f.AccuracyAfter, "")
		if f.FloatAccuracy != nil {
			p.Metric("float_accuracy", *f.FloatAccuracy, "")
		}
		if o.Teacher == "input" && !math.IsNaN(g.TeacherAccuracy) {
			p.Metric("teacher_accuracy", g.TeacherAccuracy, "")
		}
	}
	p.KeyMetric("sqnr_db", float64(sqnr), "dB")
	p.Metric("sqnr_db_before", float64(f.SQNRBefore), "dB")
	p.Metric("sqnr_db_after", float64(f.SQNRAfter), "dB")
	p.Metric("kept_qat", map[bool]float64{true: 1, false: 0}[f.Kept == "qat"], "")
	p.Metric("weights", float64(fr.Weights), "")
	p.Metric("int32_biases", float64(fr.Biases), "")
	p.Metric("epochs", float64(len(res.History)), "")
	if res.SamplesPerSecond > 0 {
		p.Metric("samples_per_second", res.SamplesPerSecond, "1/s")
	}
	p.Metric("trained_weights", float64(r.Trained), "")
	types := map[string]int{}
	for _, w := range info.Weights {
		types[w.Type.String()]++
	}
	var parts []string
	for t, n := range types {
		parts = append(parts, fmt.Sprintf("%d %s", n, t))
	}
	sort.Strings(parts)
	consts := ""
	if c := len(info.Weights) - r.Trained; c > 0 {
		consts = fmt.Sprintf("; the other %d are constants (not a layer's weights: epsilons, GELU's constants, scales) and were left as they are", c)
	}
	p.Note("fine-tuned %d of the %d quantized initializers (%s)%s%s", r.Trained, len(info.Weights), strings.Join(parts, ", "), consts, learned(o))
	if res.Resumed != "" {
		p.Note("resumed from checkpoint %s at %s", o.Checkpoint, res.Resumed)
	}
	training.Charts(p, res)
}

func learned(o *Options) string {
	if o.LearnScales {
		return "; scales learned"
	}
	return ""
}

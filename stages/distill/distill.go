// Package distill is the `distill` stage: a smaller student trained from the job's model.
package distill

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/distill"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/stages/internal/training"
	"github.com/onnxpipe/onnxpipe/train"
)

// Stage is the distill stage.
var Stage = &pipeline.Stage{
	Name: "distill",
	Doc: `Train a smaller student from the model (the teacher), in Go.

The student is an ONNX file (its float initializers are trained) or an MLP or CNN built
from a spec with the teacher's inputs and outputs. Offline, onnxruntime computes the
teacher's outputs once and every epoch reuses them (in memory, or in temporary files above
memory_limit); online, the engine trains the teacher too (mutual learning); self trains
the teacher's own architecture afresh for some generations (born-again networks). The loss
is soft_weight * T^2 * KL(softmax(t/T) || softmax(s/T)) + hard_weight * cross-entropy on
the labels, plus optional MSE on the outputs and hint (feature) losses through learned
adapters. Validation after each epoch keeps the best epoch's weights and can stop early; a
checkpoint after each epoch lets an interrupted run resume. After the stage the job's model
is the student; loss and accuracy curves go to the report.`,
	NewOptions: func() any { return defaults() },
	ResultType: reflect.TypeFor[*Result](),
	Mutates:    pipeline.Always,
	Run:        run,
}

var (
	_ pipeline.Validator = (*Options)(nil)
	_ pipeline.Warner    = (*Options)(nil)
)

// Result is the stage's result for later stages: the run's history and figures.
type Result struct {
	*distill.Result
	TeacherParams, StudentParams int64
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	teacher := p.Model()
	if o.Teacher == "input" {
		teacher = p.Input()
	}
	data, val, err := training.OpenData(p, teacher, o.Dataset, o.Validation)
	if err != nil {
		return nil, err
	}
	student, err := buildStudent(p, o, teacher, data)
	if err != nil {
		return nil, err
	}
	cfg := o.config(p, data)
	res, err := distill.Run(p.Ctx, teacher, student, data, val, cfg)
	if err != nil {
		return nil, err
	}
	if o.TeacherOutput != "" && res.Teacher != nil {
		if err := res.Teacher.Save(o.TeacherOutput, onnxio.SaveOptions{}); err != nil {
			return nil, fmt.Errorf("teacher_output: %w", err)
		}
		p.AddArtifact("teacher", o.TeacherOutput)
	}
	if o.Checkpoint != "" {
		p.AddArtifact("checkpoint", o.Checkpoint)
	}
	out := &Result{Result: res, TeacherParams: params(teacher), StudentParams: params(res.Student)}
	record(p, o, out, teacher)
	p.SetModel(res.Student)
	return out, nil
}

// buildStudent returns the student the options describe (nil in self mode).
func buildStudent(p *pipeline.Pass, o *Options, teacher *onnxio.Model, data *dataset.Dataset) (*onnxio.Model, error) {
	switch {
	case o.Mode == distill.Self:
		return nil, nil
	case o.Student.Architecture != nil:
		in, out, err := ports(teacher, data)
		if err != nil {
			return nil, err
		}
		return o.Student.Architecture.Build(in, out, o.Seed)
	}
	m, err := onnxio.Load(o.Student.Model)
	if err != nil {
		return nil, fmt.Errorf("student.model: %w", err)
	}
	if o.Student.Init == "random" {
		g, err := train.Compile(m, train.CompileOptions{})
		if err != nil {
			return nil, fmt.Errorf("student.model %s: %w", o.Student.Model, err)
		}
		g.Reinit(o.Seed)
		return g.Export()
	}
	return m, nil
}

// ports describes the teacher's inputs and outputs per sample; output shapes come from
// running the teacher on one sample when the model leaves them symbolic.
func ports(teacher *onnxio.Model, data *dataset.Dataset) (in, out []distill.Port, err error) {
	for _, i := range data.Inputs() {
		if len(i.Shape) == 0 {
			return nil, nil, fmt.Errorf("teacher input %q has no batch axis: a built student needs [N, ...] inputs", i.Name)
		}
		in = append(in, distill.Port{Name: i.Name, Type: i.Type, Sample: i.Shape[1:]})
	}
	b, err := teacher.Bytes()
	if err != nil {
		return nil, nil, err
	}
	sess, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		return nil, nil, fmt.Errorf("teacher: %w", err)
	}
	defer sess.Close()
	for batch, err := range data.Batches() {
		if err != nil {
			return nil, nil, err
		}
		res, err := sess.Run(batch.Inputs)
		if err != nil {
			return nil, nil, fmt.Errorf("teacher: %w", err)
		}
		for _, o := range teacher.Proto.GetGraph().GetOutput() {
			t := res[o.GetName()]
			if t == nil || len(t.Shape) == 0 {
				return nil, nil, fmt.Errorf("teacher output %q has no batch axis", o.GetName())
			}
			out = append(out, distill.Port{Name: o.GetName(), Type: t.Type, Sample: t.Shape[1:],
				Softmax: len(t.Shape) >= 2 && distill.SoftmaxLogits(teacher, o.GetName()) != ""})
		}
		break
	}
	return in, out, nil
}

// config turns the options into the library's configuration.
func (o *Options) config(p *pipeline.Pass, data *dataset.Dataset) distill.Config {
	cfg := training.Config(p, data, o.Batch, o.Optimizer, o.Schedule, o.ClipGrad)
	cfg.Mode, cfg.Generations, cfg.Output = string(o.Mode), o.Generations, o.Output
	cfg.Temperature, cfg.SoftWeight, cfg.HardWeight = o.Temperature, o.SoftWeight, o.HardWeight
	cfg.Epochs, cfg.TeacherLR, cfg.Patience = o.Epochs, o.TeacherLR, o.EarlyStopping.Patience
	cfg.Checkpoint, cfg.Seed, cfg.MemoryLimit = o.Checkpoint, o.Seed, o.MemoryLimit
	for _, l := range o.Losses {
		if l.MSE != nil {
			cfg.MSEWeight += l.MSE.Weight
		}
		if l.Hint != nil {
			cfg.Hints = append(cfg.Hints, *l.Hint)
		}
	}
	return cfg
}

func params(m *onnxio.Model) int64 { return onnxio.Summarize(m).Params.Count }

// record puts the run's findings into the report.
func record(p *pipeline.Pass, o *Options, r *Result, teacher *onnxio.Model) {
	res := r.Result
	last := res.Generations[len(res.Generations)-1]
	if !math.IsNaN(last.ValAccuracy) {
		p.KeyMetric("student_accuracy", last.ValAccuracy, "")
		p.KeyMetric("teacher_accuracy", last.TeacherAccuracy, "")
	} else if !math.IsNaN(last.ValLoss) {
		p.KeyMetric("val_loss", last.ValLoss, "")
	}
	p.KeyMetric("params_ratio", float64(r.StudentParams)/float64(max(r.TeacherParams, 1)), "x")
	p.Metric("teacher_params", float64(r.TeacherParams), "")
	p.Metric("student_params", float64(r.StudentParams), "")
	p.Metric("train_samples", float64(res.TrainSamples), "")
	if res.ValSamples > 0 {
		p.Metric("val_samples", float64(res.ValSamples), "")
	}
	p.Metric("epochs", float64(len(res.History)), "")
	p.Metric("best_epoch", float64(last.BestEpoch), "")
	if !math.IsNaN(last.InitialAccuracy) {
		p.Metric("initial_accuracy", last.InitialAccuracy, "")
	}
	if res.SamplesPerSecond > 0 {
		p.Metric("samples_per_second", res.SamplesPerSecond, "1/s")
	}
	if res.Resumed != "" {
		p.Note("resumed from checkpoint %s at %s", o.Checkpoint, res.Resumed)
	}
	if res.Spilled {
		p.Note("the training data exceeded memory_limit (%d bytes) and was read from temporary files", o.MemoryLimit)
	}
	if len(res.Generations) > 1 {
		var parts []string
		for _, g := range res.Generations {
			parts = append(parts, fmt.Sprintf("%d: %.4f", g.Generation, g.ValAccuracy))
		}
		p.Note("born-again generations (validation accuracy) %s", strings.Join(parts, ", "))
	}
	if lt := distill.SoftmaxLogits(teacher, res.Output); lt != "" {
		if ls := distill.SoftmaxLogits(res.Student, res.Output); ls != "" {
			p.Note("the teacher's output %q is a Softmax's: the losses compared logits (the teacher's %q, the student's %q); the student outputs probabilities as %q too", res.Output, lt, ls, res.Output)
		} else {
			p.Warn("the teacher's output %q is a Softmax's but the student's is not: the losses compared the student's %q, as logits, with the teacher's logits %q; the student outputs logits under the teacher's probabilities' name", res.Output, res.Output, lt)
		}
	}
	p.Note("mode %s, output %q, %d epochs of %d samples, batch %d", o.Mode, res.Output, len(res.History), res.TrainSamples, o.Batch)
	training.Charts(p, res)
}

// Package training holds what the training stages (distill, qat) share: the optimizer,
// schedule and early-stopping options, the engine configuration they make, the opening
// of their datasets and the curves in the report.
package training

import (
	"fmt"
	"math"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/distill"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/train"
)

// Optimizer configures the update rule.
type Optimizer struct {
	// Name is sgd, adam or adamw.
	Name OptimizerName `yaml:"name" json:"name"`
	// LR is the base learning rate.
	LR float64 `yaml:"lr" json:"lr"`
	// WeightDecay is L2 regularisation (sgd, adam) or decoupled weight decay (adamw).
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
	// Momentum applies to sgd.
	Momentum float64 `yaml:"momentum" json:"momentum"`
	// Nesterov uses Nesterov momentum (sgd).
	Nesterov bool `yaml:"nesterov" json:"nesterov,omitempty"`
}

// OptimizerName names an update rule.
type OptimizerName string

// Values lists the update rules.
func (OptimizerName) Values() []string { return []string{"sgd", "adam", "adamw"} }

// Schedule configures the learning-rate schedule.
type Schedule struct {
	// Name is none, step or cosine.
	Name ScheduleName `yaml:"name" json:"name"`
	// StepSize is the number of epochs between decays (step).
	StepSize int `yaml:"step_size" json:"step_size,omitempty"`
	// Gamma multiplies the rate at each decay (step).
	Gamma float64 `yaml:"gamma" json:"gamma,omitempty" default:"0.1"`
	// MinLR is the rate cosine annealing ends at.
	MinLR float64 `yaml:"min_lr" json:"min_lr,omitempty"`
	// WarmupEpochs ramps the rate up linearly over the first epochs.
	WarmupEpochs int `yaml:"warmup_epochs" json:"warmup_epochs,omitempty"`
}

// ScheduleName names a learning-rate schedule.
type ScheduleName string

// Values lists the schedules.
func (ScheduleName) Values() []string { return []string{"none", "step", "cosine"} }

// EarlyStopping configures early stopping.
type EarlyStopping struct {
	// Patience is the number of epochs without a better validation result after which
	// training stops (0: off).
	Patience int `yaml:"patience" json:"patience"`
}

// Check adds the problems of the shared options to ps; validation is the stage's
// validation dataset name.
func Check(ps *pipeline.Problems, opt Optimizer, sched Schedule, stop EarlyStopping, validation string) {
	if !(opt.LR > 0) {
		ps.Add("optimizer.lr", "%g: must be positive", opt.LR)
	}
	switch sched.Name {
	case "", "none", "step", "cosine":
	default:
		ps.Add("schedule.name", "%q: use none, step or cosine", sched.Name)
	}
	if sched.Name == "step" && sched.StepSize < 1 {
		ps.Add("schedule.step_size", "give the epochs between decays (>= 1)")
	}
	if stop.Patience > 0 && validation == "" {
		ps.Add("early_stopping", "needs validation: a dataset to watch")
	}
}

// Config is the part of a distill.Config that every training stage sets the same way:
// optimizer and schedule (schedule steps given in epochs), how the teacher runs in
// onnxruntime, progress and log.
func Config(p *pipeline.Pass, data *dataset.Dataset, batch int, opt Optimizer, sched Schedule, clip float64) distill.Config {
	steps := (data.Len() + batch - 1) / batch
	rt := p.Runtime()
	cfg := distill.Config{
		Mode:  distill.Offline,
		Batch: batch,
		Optimizer: train.OptimizerConfig{Name: string(opt.Name), LR: opt.LR, Momentum: opt.Momentum, Nesterov: opt.Nesterov,
			WeightDecay: opt.WeightDecay, ClipNorm: clip,
			Schedule: train.Schedule{Name: string(sched.Name), Gamma: sched.Gamma, MinLR: sched.MinLR,
				StepSize: sched.StepSize * steps, WarmupSteps: sched.WarmupEpochs * steps}},
		Runtime:      ort.Options{Threads: rt.Threads, Optimization: rt.Optimization},
		TeacherBatch: data.BatchSize(),
		Progress:     p.Progress,
		Logf:         func(format string, args ...any) { p.Log.Info(fmt.Sprintf(format, args...)) },
	}
	if opt.Name != "sgd" {
		cfg.Optimizer.Momentum = 0
	}
	return cfg
}

// OpenData opens a training stage's datasets for the model's inputs (val is nil when
// valName is ""). The job closes them when it ends.
func OpenData(p *pipeline.Pass, m *onnxio.Model, dataName, valName string) (data, val *dataset.Dataset, err error) {
	inputs := dataset.InputsOf(m)
	if data, err = p.Dataset(dataName, inputs); err != nil {
		return nil, nil, err
	}
	if valName != "" {
		if val, err = p.Dataset(valName, inputs); err != nil {
			return nil, nil, err
		}
	}
	return data, val, nil
}

// Charts adds the loss and accuracy curves of a training run to the report.
func Charts(p *pipeline.Pass, res *distill.Result) {
	if len(res.History) == 0 {
		return
	}
	loss := report.Chart{Title: "loss per epoch", Kind: "line", XLabel: "epoch", YLabel: "loss",
		Series: []report.Series{{Name: "training"}, {Name: "validation"}}}
	acc := report.Chart{Title: "validation accuracy per epoch", Kind: "line", XLabel: "epoch", YLabel: "accuracy",
		Series: []report.Series{{Name: "student"}, {Name: "teacher"}}}
	hasAcc, hasVal := false, false
	lowest := math.Inf(1)
	for _, e := range res.History {
		lowest = math.Min(lowest, e.ValAccuracy)
	}
	if g := res.Generations; len(g) == 1 && g[0].InitialAccuracy >= lowest-0.05 && res.Resumed == "" {
		// epoch 0: the model before training (for qat, the post-training quantization),
		// unless it is an untrained student whose chance accuracy would flatten the curve
		acc.XNum = append(acc.XNum, 0)
		acc.Series[0].Values = append(acc.Series[0].Values, report.Float(g[0].InitialAccuracy))
		acc.Series[1].Values = append(acc.Series[1].Values, report.Float(g[0].TeacherAccuracy))
	}
	for i, e := range res.History {
		x := float64(i + 1)
		loss.XNum = append(loss.XNum, x)
		acc.XNum = append(acc.XNum, x)
		loss.Series[0].Values = append(loss.Series[0].Values, report.Float(e.TrainLoss))
		loss.Series[1].Values = append(loss.Series[1].Values, report.Float(e.ValLoss))
		acc.Series[0].Values = append(acc.Series[0].Values, report.Float(e.ValAccuracy))
		acc.Series[1].Values = append(acc.Series[1].Values, report.Float(e.TeacherAccuracy))
		hasAcc = hasAcc || !math.IsNaN(e.ValAccuracy)
		hasVal = hasVal || !math.IsNaN(e.ValLoss)
	}
	if !hasVal {
		loss.Series = loss.Series[:1]
	}
	p.Chart(loss)
	if hasAcc {
		p.Chart(acc)
	}
}

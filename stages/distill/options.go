package distill

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/distill"
)

// Options are the distill stage's options.
type Options struct {
	// Dataset names the training data (its batch is ignored: training uses batch below).
	Dataset string `yaml:"dataset" json:"dataset" onnxpipe:"dataset"`
	// Validation names the data evaluated after each epoch (accuracy with labels, and the
	// objective); it picks the best epoch and drives early stopping. Optional.
	Validation string `yaml:"validation" json:"validation,omitempty" onnxpipe:"dataset"`
	// Teacher is the model that teaches: current (the job's model at this point of the
	// chain) or input (the model the job started with, e.g. after its int8 copy was saved).
	Teacher string `yaml:"teacher" json:"teacher"`
	// Student is the network trained.
	Student Student `yaml:"student" json:"student"`
	// Mode is offline (frozen teacher, its outputs computed once by onnxruntime), online
	// (mutual learning: the engine trains the teacher too) or self (born-again: the
	// student is the teacher's architecture, freshly initialised, for `generations`
	// generations, each taught by the previous).
	Mode string `yaml:"mode" json:"mode"`
	// Generations is the number of born-again generations (mode self).
	Generations int `yaml:"generations" json:"generations"`
	// Output is the output the soft, hard and mse losses compare (default: the teacher's
	// first output); the student must have an output of this name.
	Output string `yaml:"output" json:"output,omitempty"`
	// Temperature softens the teacher's and the student's distributions in the soft loss.
	Temperature float64 `yaml:"temperature" json:"temperature"`
	// SoftWeight is the weight of T^2 * KL(softmax(t/T) || softmax(s/T)).
	SoftWeight float64 `yaml:"soft_weight" json:"soft_weight"`
	// HardWeight is the weight of the cross-entropy with the labels (the dataset needs
	// labels). soft_weight 0 and hard_weight 1 is plain training on labels.
	HardWeight float64 `yaml:"hard_weight" json:"hard_weight"`
	// Losses are extra losses: {mse: {weight: w}} on the outputs, and
	// {hint: {student: tensor, teacher: tensor, weight: w}} between intermediate tensors
	// through a learned linear adapter (FitNets).
	Losses []Loss `yaml:"losses" json:"losses,omitempty"`
	// Epochs is the number of passes over the training data.
	Epochs int `yaml:"epochs" json:"epochs"`
	// Batch is the number of samples per training step.
	Batch int `yaml:"batch" json:"batch"`
	// Optimizer is the update rule.
	Optimizer Optimizer `yaml:"optimizer" json:"optimizer"`
	// Schedule changes the learning rate during training.
	Schedule Schedule `yaml:"schedule" json:"schedule"`
	// ClipGrad, when > 0, scales the gradients so that their global L2 norm is at most
	// this before each step.
	ClipGrad float64 `yaml:"clip_grad" json:"clip_grad,omitempty"`
	// EarlyStopping stops training when validation stops improving.
	EarlyStopping EarlyStopping `yaml:"early_stopping" json:"early_stopping"`
	// Checkpoint is a file written after each epoch; a run with the same models, data and
	// options resumes from it ({name} and {dir} are replaced per model).
	Checkpoint string `yaml:"checkpoint" json:"checkpoint,omitempty" onnxpipe:"path"`
	// TeacherLR is the learning rate of the teacher in mode online (0: a tenth of
	// optimizer.lr, as a trained teacher is fine-tuned rather than trained).
	TeacherLR float64 `yaml:"teacher_lr" json:"teacher_lr,omitempty"`
	// TeacherOutput, in mode online, is where the trained teacher is written.
	TeacherOutput string `yaml:"teacher_output" json:"teacher_output,omitempty" onnxpipe:"path"`
	// Seed makes the run deterministic: initialisation, sample order, dropout.
	Seed uint64 `yaml:"seed" json:"seed"`
	// MemoryLimit is the most bytes of training data (inputs and the teacher's outputs)
	// kept in memory; above it they are read from temporary files.
	MemoryLimit int64 `yaml:"memory_limit" json:"memory_limit"`
}

// Student is the student network: a model file or an architecture built by onnxpipe.
type Student struct {
	// Model is an ONNX file whose float initializers are trained.
	Model string `yaml:"model" json:"model,omitempty" onnxpipe:"path"`
	// Init is keep (train from the file's weights) or random (fresh weights, drawn as
	// PyTorch initializes new layers).
	Init string `yaml:"init" json:"init"`
	// Architecture builds the student instead: {mlp: {hidden: [800, 800]}} or
	// {cnn: {channels: [16, 32], kernel: 3, hidden: [128]}}; it takes the teacher's
	// inputs and gives its outputs.
	Architecture *distill.Architecture `yaml:"architecture" json:"architecture,omitempty"`
}

// Loss is one extra loss; exactly one field is set.
type Loss struct {
	// MSE is the mean squared error between the student's and the teacher's outputs.
	MSE *Weight `yaml:"mse" json:"mse,omitempty"`
	// Hint is a feature loss between two intermediate tensors.
	Hint *distill.Hint `yaml:"hint" json:"hint,omitempty"`
}

// Weight is a loss weight.
type Weight struct {
	// Weight multiplies the loss.
	Weight float64 `yaml:"weight" json:"weight"`
}

// Optimizer configures the update rule.
type Optimizer struct {
	// Name is sgd, adam or adamw.
	Name string `yaml:"name" json:"name"`
	// LR is the base learning rate.
	LR float64 `yaml:"lr" json:"lr"`
	// WeightDecay is L2 regularisation (sgd, adam) or decoupled weight decay (adamw).
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
	// Momentum applies to sgd.
	Momentum float64 `yaml:"momentum" json:"momentum"`
	// Nesterov uses Nesterov momentum (sgd).
	Nesterov bool `yaml:"nesterov" json:"nesterov,omitempty"`
}

// Schedule configures the learning-rate schedule.
type Schedule struct {
	// Name is none, step or cosine.
	Name string `yaml:"name" json:"name"`
	// StepSize is the number of epochs between decays (step).
	StepSize int `yaml:"step_size" json:"step_size,omitempty"`
	// Gamma multiplies the rate at each decay (step; default 0.1).
	Gamma float64 `yaml:"gamma" json:"gamma,omitempty"`
	// MinLR is the rate cosine annealing ends at.
	MinLR float64 `yaml:"min_lr" json:"min_lr,omitempty"`
	// WarmupEpochs ramps the rate up linearly over the first epochs.
	WarmupEpochs int `yaml:"warmup_epochs" json:"warmup_epochs,omitempty"`
}

// EarlyStopping configures early stopping.
type EarlyStopping struct {
	// Patience is the number of epochs without a better validation result after which
	// training stops (0: off).
	Patience int `yaml:"patience" json:"patience"`
}

func defaults() *Options {
	return &Options{Teacher: "current", Student: Student{Init: "keep"}, Mode: distill.Offline, Generations: 1,
		Temperature: 4, SoftWeight: 1, Epochs: 10, Batch: 64,
		Optimizer: Optimizer{Name: "adam", LR: 0.001, Momentum: 0.9}, Schedule: Schedule{Name: "cosine"},
		Seed: 1, MemoryLimit: 2 << 30}
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Dataset == "" {
		return fmt.Errorf("dataset is required")
	}
	if o.Teacher != "current" && o.Teacher != "input" {
		return fmt.Errorf("teacher %q: use current or input", o.Teacher)
	}
	switch o.Mode {
	case distill.Offline, distill.Online:
		if (o.Student.Model == "") == (o.Student.Architecture == nil) {
			return fmt.Errorf("student: give model: or architecture: (one of them)")
		}
	case distill.Self:
		if o.Student.Model != "" || o.Student.Architecture != nil {
			return fmt.Errorf("mode self trains the teacher's own architecture: remove student:")
		}
	default:
		return fmt.Errorf("mode %q: use offline, online or self", o.Mode)
	}
	if o.Mode != distill.Self && o.Generations != 1 {
		return fmt.Errorf("generations %d: only mode self trains several generations", o.Generations)
	}
	if o.Generations < 1 {
		return fmt.Errorf("generations must be at least 1")
	}
	if o.Student.Init != "keep" && o.Student.Init != "random" {
		return fmt.Errorf("student.init %q: use keep or random", o.Student.Init)
	}
	if a := o.Student.Architecture; a != nil {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("student.%w", err)
		}
	}
	for i, l := range o.Losses {
		if (l.MSE == nil) == (l.Hint == nil) {
			return fmt.Errorf("losses[%d]: give one of mse: and hint:", i)
		}
		if l.Hint != nil && (l.Hint.Student == "" || l.Hint.Teacher == "") {
			return fmt.Errorf("losses[%d].hint: needs student: and teacher: tensor names", i)
		}
	}
	if o.Epochs < 1 || o.Batch < 1 {
		return fmt.Errorf("epochs and batch must be at least 1")
	}
	if !(o.Temperature > 0) {
		return fmt.Errorf("temperature %g must be positive", o.Temperature)
	}
	if o.SoftWeight < 0 || o.HardWeight < 0 {
		return fmt.Errorf("soft_weight and hard_weight must not be negative")
	}
	switch o.Schedule.Name {
	case "", "none", "step", "cosine":
	default:
		return fmt.Errorf("schedule.name %q: use none, step or cosine", o.Schedule.Name)
	}
	if o.Schedule.Name == "step" && o.Schedule.StepSize < 1 {
		return fmt.Errorf("schedule.step_size: give the epochs between decays (>= 1)")
	}
	if o.EarlyStopping.Patience > 0 && o.Validation == "" {
		return fmt.Errorf("early_stopping needs validation: a dataset to watch")
	}
	if (o.TeacherOutput != "" || o.TeacherLR != 0) && o.Mode != distill.Online {
		return fmt.Errorf("teacher_output and teacher_lr are for mode online (the teacher is not trained otherwise)")
	}
	if o.TeacherLR < 0 {
		return fmt.Errorf("teacher_lr must not be negative")
	}
	return nil
}

// Warnings reports options the mode ignores.
func (o *Options) Warnings() []string {
	var w []string
	if o.Mode == distill.Self && o.Student.Init != "keep" {
		w = append(w, "student.init is ignored in mode self (the student is always re-initialised)")
	}
	if o.Optimizer.Name != "sgd" && (o.Optimizer.Nesterov) {
		w = append(w, "optimizer.nesterov applies to sgd only")
	}
	if o.SoftWeight == 0 && o.HardWeight > 0 && len(o.Losses) == 0 && o.Mode == distill.Offline {
		w = append(w, "soft_weight 0: plain training on labels; the teacher's outputs are only reported")
	}
	return w
}

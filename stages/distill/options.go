package distill

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/distill"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/stages/internal/training"
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
	Teacher Teacher `yaml:"teacher" json:"teacher"`
	// Student is the network trained.
	Student Student `yaml:"student" json:"student"`
	// Mode is offline (frozen teacher, its outputs computed once by onnxruntime), online
	// (mutual learning: the engine trains the teacher too) or self (born-again: the
	// student is the teacher's architecture, freshly initialised, for `generations`
	// generations, each taught by the previous).
	Mode Mode `yaml:"mode" json:"mode"`
	// Generations is the number of born-again generations (mode self).
	Generations int `yaml:"generations" json:"generations"`
	// Output is the output the soft, hard and mse losses compare; the student must have an
	// output of this name.
	Output string `yaml:"output" json:"output,omitempty" default:"the teacher's first output"`
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
	Optimizer training.Optimizer `yaml:"optimizer" json:"optimizer"`
	// Schedule changes the learning rate during training.
	Schedule training.Schedule `yaml:"schedule" json:"schedule"`
	// ClipGrad, when > 0, scales the gradients so that their global L2 norm is at most
	// this before each step.
	ClipGrad float64 `yaml:"clip_grad" json:"clip_grad,omitempty"`
	// EarlyStopping stops training when validation stops improving.
	EarlyStopping training.EarlyStopping `yaml:"early_stopping" json:"early_stopping"`
	// Checkpoint is a file written after each epoch; a run with the same models, data and
	// options resumes from it ({name} and {dir} are replaced per model).
	Checkpoint string `yaml:"checkpoint" json:"checkpoint,omitempty" onnxpipe:"path,writes"`
	// TeacherLR is the learning rate of the teacher in mode online (0: a tenth of
	// optimizer.lr, as a trained teacher is fine-tuned rather than trained).
	TeacherLR float64 `yaml:"teacher_lr" json:"teacher_lr,omitempty"`
	// TeacherOutput, in mode online, is where the trained teacher is written.
	TeacherOutput string `yaml:"teacher_output" json:"teacher_output,omitempty" onnxpipe:"path,writes"`
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
	Init Init `yaml:"init" json:"init"`
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

// Teacher says which model teaches.
type Teacher string

// Values lists the teachers.
func (Teacher) Values() []string { return []string{"current", "input"} }

// Mode is how the teacher takes part.
type Mode string

// Values lists the modes.
func (Mode) Values() []string { return []string{distill.Offline, distill.Online, distill.Self} }

// Init is how an ONNX student's weights start.
type Init string

// Values lists the initialisations.
func (Init) Values() []string { return []string{"keep", "random"} }

func defaults() *Options {
	return &Options{Teacher: "current", Student: Student{Init: "keep"}, Mode: distill.Offline, Generations: 1,
		Temperature: 4, SoftWeight: 1, Epochs: 10, Batch: 64,
		Optimizer: training.Optimizer{Name: "adam", LR: 0.001, Momentum: 0.9}, Schedule: training.Schedule{Name: "cosine"},
		Seed: 1, MemoryLimit: 2 << 30}
}

// Validate checks the options and reports every problem at its option.
func (o *Options) Validate() error {
	var ps pipeline.Problems
	if o.Dataset == "" {
		ps.Add("dataset", "is required: name a dataset of the config's datasets:")
	}
	if o.Teacher != "current" && o.Teacher != "input" {
		ps.Add("teacher", "%q: use current or input", o.Teacher)
	}
	switch o.Mode {
	case distill.Offline, distill.Online:
		if (o.Student.Model == "") == (o.Student.Architecture == nil) {
			ps.Add("student", "give model: or architecture: (one of them)")
		}
	case distill.Self:
		if o.Student.Model != "" || o.Student.Architecture != nil {
			ps.Add("student", "mode self trains the teacher's own architecture: remove student:")
		}
	default:
		ps.Add("mode", "%q: use offline, online or self", o.Mode)
	}
	if o.Mode != distill.Self && o.Generations != 1 {
		ps.Add("generations", "%d: only mode self trains several generations", o.Generations)
	} else if o.Generations < 1 {
		ps.Add("generations", "must be at least 1")
	}
	if o.Student.Init != "keep" && o.Student.Init != "random" {
		ps.Add("student.init", "%q: use keep or random", o.Student.Init)
	}
	if a := o.Student.Architecture; a != nil {
		if err := a.Validate(); err != nil {
			ps.Add("student.architecture", "%v", err)
		}
	}
	for i, l := range o.Losses {
		field := fmt.Sprintf("losses.%d", i)
		if (l.MSE == nil) == (l.Hint == nil) {
			ps.Add(field, "give one of mse: and hint:")
		}
		if l.Hint != nil && (l.Hint.Student == "" || l.Hint.Teacher == "") {
			ps.Add(field+".hint", "needs student: and teacher: tensor names")
		}
	}
	if o.Epochs < 1 {
		ps.Add("epochs", "must be at least 1")
	}
	if o.Batch < 1 {
		ps.Add("batch", "must be at least 1")
	}
	if !(o.Temperature > 0) {
		ps.Add("temperature", "%g must be positive", o.Temperature)
	}
	if o.SoftWeight < 0 {
		ps.Add("soft_weight", "must not be negative")
	}
	if o.HardWeight < 0 {
		ps.Add("hard_weight", "must not be negative")
	}
	training.Check(&ps, o.Optimizer, o.Schedule, o.EarlyStopping, o.Validation)
	if o.TeacherOutput != "" && o.Mode != distill.Online {
		ps.Add("teacher_output", "is for mode online (the teacher is not trained otherwise)")
	}
	if o.TeacherLR != 0 && o.Mode != distill.Online {
		ps.Add("teacher_lr", "is for mode online (the teacher is not trained otherwise)")
	}
	if o.TeacherLR < 0 {
		ps.Add("teacher_lr", "must not be negative")
	}
	return ps.Err()
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

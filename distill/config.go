package distill

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/train"
)

// Modes of distillation.
const (
	// Offline distils from a frozen teacher whose outputs are computed once, by
	// onnxruntime, and reused every epoch.
	Offline = "offline"
	// Online is mutual learning (Zhang et al. 2018): the teacher is trained by the engine
	// too, on the labels and on the student's soft outputs, while the student learns
	// from it.
	Online = "online"
	// Self is born-again distillation (Furlanello et al. 2018): the student has the
	// teacher's architecture, freshly initialised; each generation is taught by the
	// previous one.
	Self = "self"
)

// Config is how Run trains; the models and data are Run's arguments.
type Config struct {
	// Mode is Offline, Online or Self.
	Mode string
	// Generations is the number of born-again generations (Self).
	Generations int
	// Output is the teacher output (and student output of the same name) that the soft,
	// hard and MSE losses compare; "" means the first output.
	Output string
	// Temperature softens both distributions of the soft loss.
	Temperature float64
	// SoftWeight weighs T²·KL(softmax(t/T) ‖ softmax(s/T)).
	SoftWeight float64
	// HardWeight weighs the cross-entropy of the student's output with the labels.
	HardWeight float64
	// MSEWeight weighs the mean squared error between the two outputs (logit matching).
	MSEWeight float64
	// Hints are feature losses between intermediate tensors.
	Hints []Hint
	// Epochs over the training data (0: only evaluate), and samples per step.
	Epochs, Batch int
	// Optimizer and learning-rate schedule; a cosine schedule's TotalSteps defaults to
	// every step of the run.
	Optimizer train.OptimizerConfig
	// TeacherLR is the online teacher's learning rate (0: a tenth of Optimizer.LR). A
	// trained teacher is being fine-tuned: Adam's first steps move every weight by about
	// the learning rate, which at a student's rate wrecks a trained network.
	TeacherLR float64
	// LearnScales, when set, names the quantization scales (of QuantizeLinear and
	// DequantizeLinear in the student) that are trained too, LSQ-style (quantization-aware
	// training); they get their own optimizer with ScaleLR (0: a tenth of Optimizer.LR)
	// and no weight decay, since Adam moves every parameter by about its rate per step
	// and scales are small.
	LearnScales func(name string) bool `json:"-"`
	ScaleLR     float64
	// Patience stops training after this many epochs without a better validation result
	// (0: never).
	Patience int
	// Checkpoint is a file written after each epoch and resumed from when present and
	// made by the same run configuration ("" = none).
	Checkpoint string
	// Seed makes the run deterministic: initialisation, sample order, dropout.
	Seed uint64
	// MemoryLimit is the most bytes of training data (inputs and teacher outputs) held in
	// memory; above it they go to temporary files.
	MemoryLimit int64 `json:"-"`
	// Runtime is how onnxruntime runs the teacher (offline and self modes).
	Runtime ort.Options `json:"-"`
	// TeacherBatch is the samples per onnxruntime run of the teacher (the teacher's fixed
	// batch size when it has one); 0 means Batch.
	TeacherBatch int `json:"-"`
	// Progress, when set, is told the steps done and the total.
	Progress func(done, total int) `json:"-"`
	// Logf, when set, receives one line per epoch and notes about the run.
	Logf func(format string, args ...any) `json:"-"`
}

func (c *Config) check() error {
	switch c.Mode {
	case Offline, Online, Self:
	default:
		return fmt.Errorf("mode %q: use offline, online or self", c.Mode)
	}
	if c.Generations < 1 {
		c.Generations = 1
	}
	if c.Mode != Self && c.Generations != 1 {
		return fmt.Errorf("generations %d: only mode self trains several generations", c.Generations)
	}
	if c.Epochs < 0 || c.Batch < 1 {
		return fmt.Errorf("epochs must not be negative and batch must be at least 1")
	}
	if !(c.Temperature > 0) {
		return fmt.Errorf("temperature %g must be positive", c.Temperature)
	}
	if c.SoftWeight < 0 || c.HardWeight < 0 || c.MSEWeight < 0 {
		return fmt.Errorf("loss weights must not be negative")
	}
	hints := 0.0
	for _, h := range c.Hints {
		if h.Student == "" || h.Teacher == "" {
			return fmt.Errorf("a hint loss needs student: and teacher: tensor names")
		}
		switch {
		case h.Weight < 0:
			return fmt.Errorf("hint %s -> %s: weight %g must not be negative", h.Student, h.Teacher, h.Weight)
		case h.Weight == 0: // the default, 1
			hints++
		default:
			hints += h.Weight
		}
	}
	if c.SoftWeight+c.HardWeight+c.MSEWeight+hints == 0 {
		return fmt.Errorf("every loss weight is 0: set soft_weight or hard_weight, or add an entry to losses")
	}
	if c.MemoryLimit <= 0 {
		c.MemoryLimit = 2 << 30
	}
	return nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

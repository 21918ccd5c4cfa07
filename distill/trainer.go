package distill

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/onnxpipe/onnxpipe/train"
)

// Epoch is one epoch's record.
type Epoch struct {
	Generation int     `json:"generation"`
	Epoch      int     `json:"epoch"` // 1-based
	LR         float64 `json:"lr"`
	// TrainLoss is the mean of the weighted objective over the epoch's steps, with its
	// parts (each already weighted).
	TrainLoss float64 `json:"train_loss"`
	Soft      float64 `json:"soft,omitempty"`
	Hard      float64 `json:"hard,omitempty"`
	MSE       float64 `json:"mse,omitempty"`
	Hint      float64 `json:"hint,omitempty"`
	// ValLoss is the objective on the validation data (NaN without validation), and
	// ValAccuracy the student's accuracy there (NaN without labels).
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	// TeacherAccuracy is the teacher's validation accuracy (online mode: it changes).
	TeacherAccuracy float64 `json:"teacher_accuracy"`
	Seconds         float64 `json:"seconds"`
	SamplesPerSec   float64 `json:"samples_per_second"`
}

// losses is one evaluation of the objective, weighted, by part.
type losses struct{ soft, hard, mse, hint float64 }

func (l losses) total() float64 { return l.soft + l.hard + l.mse + l.hint }

func (l *losses) add(o losses, w float64) {
	l.soft += w * o.soft
	l.hard += w * o.hard
	l.mse += w * o.mse
	l.hint += w * o.hint
}

// trainer trains one generation: a student, its hint adapters and, online, the teacher.
type trainer struct {
	cfg    *Config
	gen    int
	output string // the output the losses compare (its name in both models)
	// sOut and tOut are the student's and the teacher's tensors the losses read: the
	// output, or the logits into a final Softmax that gives it (softmaxLogits)
	sOut, tOut string
	student    *train.Graph
	teacher    *train.Graph // online mode only
	adapters   []*adapter
	opt        *train.Optimizer
	scaleOpt   *train.Optimizer // learned quantization scales (Config.LearnScales), or nil
	tOpt       *train.Optimizer
	data, val  *split
	classifier bool // the output is [N, C] and the data has labels
}

func (t *trainer) stepsPerEpoch() int { return (t.data.n + t.cfg.Batch - 1) / t.cfg.Batch }

// order is the sample order of an epoch: a permutation drawn from the seed, the
// generation and the epoch, so that a resumed run sees the same order.
func (t *trainer) order(epoch int) []int {
	r := rand.New(rand.NewPCG(t.cfg.Seed, uint64(t.gen)<<32|uint64(epoch)))
	return r.Perm(t.data.n)
}

// inputs gathers the samples at idx.
func inputs(s *split, idx []int) (map[string]*train.Tensor, error) {
	in := map[string]*train.Tensor{}
	for _, name := range s.names {
		r := s.inputs[name]
		t := train.Zeros(append([]int{len(idx)}, ints(r.sample)...)...)
		if err := r.gather(idx, t.Data); err != nil {
			return nil, err
		}
		in[name] = t
	}
	return in, nil
}

func teacherRows(s *split, name string, idx []int) (*train.Tensor, error) {
	r := s.teacher[name]
	t := train.Zeros(append([]int{len(idx)}, ints(r.sample)...)...)
	return t, r.gather(idx, t.Data)
}

func labelsAt(s *split, idx []int) []int {
	if s.labels == nil {
		return nil
	}
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = s.labels[i]
	}
	return out
}

func ints(d []int64) []int {
	out := make([]int, len(d))
	for i, v := range d {
		out[i] = int(v)
	}
	return out
}

// targets are the teacher's values for one batch: its output and hint features.
type targets struct {
	out   *train.Tensor
	hints []*train.Tensor
}

// teacherTargets reads the cached teacher values (offline, self) or runs the teacher
// graph (online; its tape is returned for its own update, nil otherwise).
func (t *trainer) teacherTargets(s *split, in map[string]*train.Tensor, idx []int, training bool) (targets, *train.Tape, error) {
	var tg targets
	if t.teacher == nil {
		var err error
		if tg.out, err = teacherRows(s, t.tOut, idx); err != nil {
			return tg, nil, err
		}
		for _, a := range t.adapters {
			h, err := teacherRows(s, a.hint.Teacher, idx)
			if err != nil {
				return tg, nil, err
			}
			tg.hints = append(tg.hints, h)
		}
		return tg, nil, nil
	}
	tape, err := t.teacher.Forward(in, training)
	if err != nil {
		return tg, nil, fmt.Errorf("teacher: %w", err)
	}
	tg.out = tape.Output(t.tOut)
	for _, a := range t.adapters {
		h := tape.Output(a.hint.Teacher)
		if h == nil {
			tape.Release()
			return tg, nil, fmt.Errorf("hint: the teacher has no tensor %q", a.hint.Teacher)
		}
		tg.hints = append(tg.hints, h)
	}
	return tg, tape, nil
}

// objective evaluates the student's losses on one batch; when training it also
// returns the seeds of the student's backward pass.
func (t *trainer) objective(tape *train.Tape, tg targets, labels []int, training bool) (losses, map[string]*train.Tensor, error) {
	c := t.cfg
	s := tape.Output(t.sOut)
	if s == nil {
		return losses{}, nil, fmt.Errorf("the student has no output %q", t.sOut)
	}
	if !sameShape(s.Shape, tg.out.Shape) {
		return losses{}, nil, fmt.Errorf("student output %q is %v, the teacher's is %v: they must match", t.sOut, s.Shape, tg.out.Shape)
	}
	var l losses
	grad := train.Zeros(s.Shape...)
	if c.SoftWeight > 0 {
		v, g := train.KL(s, tg.out, c.Temperature)
		l.soft = c.SoftWeight * v
		grad.AddScaled(float32(c.SoftWeight), g)
	}
	if c.HardWeight > 0 {
		v, g := train.CrossEntropy(s, labels)
		l.hard = c.HardWeight * v
		grad.AddScaled(float32(c.HardWeight), g)
	}
	if c.MSEWeight > 0 {
		v, g := train.MSE(s, tg.out)
		l.mse = c.MSEWeight * v
		grad.AddScaled(float32(c.MSEWeight), g)
	}
	seeds := map[string]*train.Tensor{t.sOut: grad}
	for i, a := range t.adapters {
		f := tape.Output(a.hint.Student)
		if f == nil {
			return l, nil, fmt.Errorf("hint: the student has no tensor %q", a.hint.Student)
		}
		v, g, err := a.loss(f, tg.hints[i], training)
		if err != nil {
			return l, nil, err
		}
		l.hint += v
		if g != nil {
			if prev := seeds[a.hint.Student]; prev != nil {
				prev.AddScaled(1, g)
			} else {
				seeds[a.hint.Student] = g
			}
		}
	}
	return l, seeds, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// epoch trains one pass over the data and returns the mean losses.
func (t *trainer) epoch(ctx context.Context, epoch int, tick func()) (losses, error) {
	var sum losses
	order := t.order(epoch)
	// Dropout's masks come from (seed, generation, epoch): a resumed run draws the same.
	t.student.Reseed(t.cfg.Seed ^ uint64(t.gen)<<40 ^ uint64(epoch)<<20 ^ 0x5eed)
	if t.teacher != nil {
		t.teacher.Reseed(t.cfg.Seed ^ uint64(t.gen)<<40 ^ uint64(epoch)<<20 ^ 0x7eac)
	}
	steps := 0
	for lo := 0; lo < len(order); lo += t.cfg.Batch {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		idx := order[lo:min(lo+t.cfg.Batch, len(order))]
		in, err := inputs(t.data, idx)
		if err != nil {
			return sum, err
		}
		labels := labelsAt(t.data, idx)
		tg, tTape, err := t.teacherTargets(t.data, in, idx, true)
		if err != nil {
			return sum, err
		}
		tape, err := t.student.Forward(in, true)
		if err != nil {
			return sum, fmt.Errorf("student: %w", err)
		}
		l, seeds, err := t.objective(tape, tg, labels, true)
		if err != nil {
			return sum, err
		}
		if v := l.total(); math.IsNaN(v) || math.IsInf(v, 0) {
			return sum, fmt.Errorf("the loss became %v at epoch %d, step %d: lower the learning rate or set clip_grad", v, epoch, steps+1)
		}
		if t.tOpt != nil { // mutual learning: the teacher learns from labels and student
			if err := t.teacherStep(tTape, tg.out, tape.Output(t.sOut), labels); err != nil {
				return sum, err
			}
		}
		t.opt.ZeroGrad()
		if t.scaleOpt != nil {
			t.scaleOpt.ZeroGrad()
		}
		if err := tape.Backward(seeds); err != nil {
			return sum, fmt.Errorf("student backward: %w", err)
		}
		t.opt.Step()
		if t.scaleOpt != nil {
			t.scaleOpt.Step()
		}
		tape.Release()
		if tTape != nil {
			tTape.Release()
		}
		sum.add(l, 1)
		steps++
		tick()
	}
	mean := losses{}
	mean.add(sum, 1/float64(max(steps, 1)))
	return mean, nil
}

// teacherStep updates the online teacher: cross-entropy on the labels plus the soft
// loss towards the student's current outputs (both held fixed for this step).
func (t *trainer) teacherStep(tape *train.Tape, tOut, sOut *train.Tensor, labels []int) error {
	c := t.cfg
	grad := train.Zeros(tOut.Shape...)
	if labels != nil && t.classifier {
		_, g := train.CrossEntropy(tOut, labels)
		grad.AddScaled(1, g)
	}
	if c.SoftWeight > 0 {
		_, g := train.KL(tOut, sOut, c.Temperature)
		grad.AddScaled(float32(c.SoftWeight), g)
	}
	t.tOpt.ZeroGrad()
	if err := tape.Backward(map[string]*train.Tensor{t.tOut: grad}); err != nil {
		return fmt.Errorf("teacher backward: %w", err)
	}
	t.tOpt.Step()
	return nil
}

// evaluate runs the student (and an online teacher) without training on s and returns
// the objective and the accuracies (NaN without labels).
func (t *trainer) evaluate(ctx context.Context, s *split) (loss, acc, teacherAcc float64, err error) {
	var sum losses
	var correct, tCorrect float64
	batch := max(t.cfg.Batch, 256)
	idx := make([]int, 0, batch)
	for lo := 0; lo < s.n; lo += batch {
		if err := ctx.Err(); err != nil {
			return 0, 0, 0, err
		}
		idx = idx[:0]
		for i := lo; i < min(lo+batch, s.n); i++ {
			idx = append(idx, i)
		}
		in, err := inputs(s, idx)
		if err != nil {
			return 0, 0, 0, err
		}
		labels := labelsAt(s, idx)
		tg, tTape, err := t.teacherTargets(s, in, idx, false)
		if err != nil {
			return 0, 0, 0, err
		}
		tape, err := t.student.Forward(in, false)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("student: %w", err)
		}
		l, _, err := t.objective(tape, tg, labels, false)
		if err != nil {
			return 0, 0, 0, err
		}
		sum.add(l, float64(len(idx)))
		if t.classifier && labels != nil {
			correct += train.Accuracy(tape.Output(t.sOut), labels) * float64(len(idx))
			tCorrect += train.Accuracy(tg.out, labels) * float64(len(idx))
		}
		tape.Release()
		if tTape != nil {
			tTape.Release()
		}
	}
	n := float64(s.n)
	if !t.classifier || s.labels == nil {
		return sum.total() / n, math.NaN(), math.NaN(), nil
	}
	return sum.total() / n, correct / n, tCorrect / n, nil
}

// better reports whether an epoch's validation result beats the best so far: higher
// accuracy (lower loss on a tie), or lower loss without labels.
func better(e Epoch, best *Epoch) bool {
	if best == nil {
		return true
	}
	if !math.IsNaN(e.ValAccuracy) && e.ValAccuracy != best.ValAccuracy {
		return e.ValAccuracy > best.ValAccuracy
	}
	a, b := e.ValLoss, best.ValLoss
	if math.IsNaN(a) { // no validation data: the training loss decides
		a, b = e.TrainLoss, best.TrainLoss
	}
	return a < b
}

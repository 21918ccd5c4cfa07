package distill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/train"
)

// Generation summarises one trained generation (one, except in self mode).
type Generation struct {
	Generation int `json:"generation"` // 1-based
	Epochs     int `json:"epochs"`     // epochs trained (fewer after early stopping)
	BestEpoch  int `json:"best_epoch"`
	// InitialAccuracy and InitialLoss are the student's validation figures before
	// training (NaN without validation, or when the generation was resumed).
	InitialAccuracy float64 `json:"initial_accuracy"`
	InitialLoss     float64 `json:"initial_loss"`
	ValAccuracy     float64 `json:"val_accuracy"`
	ValLoss         float64 `json:"val_loss"`
	TeacherAccuracy float64 `json:"teacher_accuracy"`
}

// Result is what Run produced.
type Result struct {
	// Student is the trained student (the best epoch's weights of the last generation).
	Student *onnxio.Model
	// Teacher is the trained teacher in online mode, else nil.
	Teacher     *onnxio.Model
	Output      string
	History     []Epoch
	Generations []Generation
	// Resumed says where a checkpoint let the run start ("" when it started afresh).
	Resumed string
	// TrainSamples and ValSamples count the samples used.
	TrainSamples, ValSamples int
	// Spilled is true when the training data did not fit MemoryLimit and was read from
	// temporary files.
	Spilled bool
	// SamplesPerSecond is the training throughput over the epochs this run trained.
	SamplesPerSecond float64
}

// Run trains a student from teacher on data and returns it; val, when not nil, is
// evaluated after each epoch (accuracy, objective) and chooses the best epoch. student
// must be nil in Self mode (the student is the teacher's architecture, re-initialised).
// Run checkpoints after every epoch when cfg.Checkpoint is set and resumes from a
// checkpoint of the same run.
func Run(ctx context.Context, teacher, student *onnxio.Model, data, val *dataset.Dataset, cfg Config) (*Result, error) {
	output, err := checkRun(teacher, student, data, &cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Output: output}
	tr, err := loadSplit(ctx, "training", data, cfg.MemoryLimit)
	if err != nil {
		return nil, err
	}
	defer tr.close()
	res.TrainSamples, res.Spilled = tr.n, tr.spilled()
	var vs *split
	var valDigest uint32
	if val != nil {
		if vs, err = loadSplit(ctx, "validation", val, cfg.MemoryLimit); err != nil {
			return nil, err
		}
		defer vs.close()
		res.ValSamples, valDigest = vs.n, vs.digest
	}
	if err := checkHardLabels(cfg, tr, vs); err != nil {
		return nil, err
	}
	if cfg.TeacherBatch <= 0 {
		cfg.TeacherBatch = cfg.Batch
	}
	key, err := runKey(cfg, teacher, student, tr.n, res.ValSamples, tr.digest, valDigest)
	if err != nil {
		return nil, err
	}
	ck := resumable(&cfg, key)
	if ck != nil {
		res.Resumed = fmt.Sprintf("generation %d, epoch %d", ck.Generation+1, ck.Epoch)
		res.History, res.Generations = ck.History, ck.Generations
	}
	r := &runner{cfg: &cfg, res: res, data: tr, val: vs, output: output, runKey: key}
	r.lossTensors(teacher, student)
	r.teacherOuts = teacherOutputNames(r.tOut, cfg.Hints)
	r.total = cfg.Generations * cfg.Epochs * ((tr.n + cfg.Batch - 1) / cfg.Batch)
	if err := r.generations(ctx, teacher, student, ck); err != nil {
		return nil, err
	}
	return res, nil
}

// checkRun checks cfg (filling in its defaults), that a student is given unless the
// mode is Self, and that the student fits the data and the teacher's output the losses
// compare, which it returns.
func checkRun(teacher, student *onnxio.Model, data *dataset.Dataset, cfg *Config) (string, error) {
	if err := cfg.check(); err != nil {
		return "", err
	}
	if (cfg.Mode == Self) != (student == nil) {
		return "", fmt.Errorf("mode self builds the student from the teacher; the other modes need a student")
	}
	output, err := pickOutput(teacher, cfg.Output)
	if err != nil {
		return "", err
	}
	if student != nil {
		if err := checkStudent(student, data, output); err != nil {
			return "", err
		}
	}
	return output, nil
}

// checkHardLabels checks that a hard loss has labels in the training data and, when
// there is one, in the validation data.
func checkHardLabels(cfg Config, tr, vs *split) error {
	if cfg.HardWeight > 0 && tr.labels == nil {
		return fmt.Errorf("hard_weight %g needs labels in the training dataset", cfg.HardWeight)
	}
	if cfg.HardWeight > 0 && vs != nil && vs.labels == nil {
		return fmt.Errorf("hard_weight %g needs labels in the validation dataset too (its objective has the hard loss)", cfg.HardWeight)
	}
	return nil
}

// teacherOutputNames lists the teacher tensors the losses read: the output, then each
// hint's teacher tensor once.
func teacherOutputNames(output string, hints []Hint) []string {
	outs := []string{output}
	for _, h := range hints {
		outs = appendNew(outs, h.Teacher)
	}
	return outs
}

// resumable loads cfg.Checkpoint and returns it when it was made by the run key
// identifies; otherwise (no checkpoint option, no file, another run's or an unreadable
// checkpoint, the last two logged) it returns nil.
func resumable(cfg *Config, key string) *checkpoint {
	if cfg.Checkpoint == "" {
		return nil
	}
	switch c, err := loadCheckpoint(cfg.Checkpoint); {
	case err == nil && c.Key == key:
		cfg.logf("resuming from checkpoint %s (%d epochs of generation %d done)", cfg.Checkpoint, c.Epoch, c.Generation+1)
		return c
	case err == nil:
		cfg.logf("checkpoint %s was made by another run (models, data or options differ): starting afresh", cfg.Checkpoint)
	case !errors.Is(err, os.ErrNotExist):
		cfg.logf("%v; starting afresh", err)
	}
	return nil
}

// generations trains the generations that ck (nil when starting afresh) leaves to do,
// each taught by the previous one's student (the first by teacher), and sets the
// result's Student (and, online, Teacher). A checkpoint of a finished run gives its last
// student and teacher without training.
func (r *runner) generations(ctx context.Context, teacher, student *onnxio.Model, ck *checkpoint) error {
	cfg, res := r.cfg, r.res
	current := teacher // the model that teaches the generation being trained
	startGen := 0
	var err error
	if ck != nil {
		startGen = ck.Generation
		if ck.LastModel != nil {
			if current, err = onnxio.LoadBytes(ck.LastModel, ""); err != nil {
				return fmt.Errorf("checkpoint %s: %w", cfg.Checkpoint, err)
			}
		}
	}
	if startGen >= cfg.Generations { // a finished run: its last student is the result
		res.Student = current
		if ck.LastTeacher != nil {
			if res.Teacher, err = onnxio.LoadBytes(ck.LastTeacher, ""); err != nil {
				return fmt.Errorf("checkpoint %s: %w", cfg.Checkpoint, err)
			}
		}
		return nil
	}
	for gen := startGen; gen < cfg.Generations; gen++ {
		var resume *checkpoint
		if ck != nil && ck.Generation == gen && ck.Params != nil {
			resume = ck
		}
		s := student
		if cfg.Mode == Self {
			if s, err = reinit(teacher, cfg.Seed+uint64(gen)); err != nil {
				return err
			}
		}
		trained, err := r.generation(ctx, gen, current, s, resume)
		if err != nil {
			return err
		}
		current = trained
	}
	res.Student = current
	if cfg.Progress != nil { // early stopping may end a generation before its last epoch
		cfg.Progress(r.total, r.total)
	}
	return nil
}

// runner carries the state of Run across generations.
type runner struct {
	cfg         *Config
	res         *Result
	data, val   *split
	output      string
	sOut, tOut  string // the tensors the losses read (trainer.sOut, tOut)
	teacherOuts []string
	runKey      string
	done, total int
	trainSecs   float64
	trainRows   int
}

// progress is the state of one generation's training that its checkpoints hold.
type progress struct {
	start   int   // epochs completed before this Run (resumed)
	epochs  int   // epochs completed
	initial Epoch // validation before training
	// best is the best epoch so far (nil before the first), with its parameters.
	best                  *Epoch
	bestParams, bestState map[string][]float32
}

// generation trains generation gen (0-based) of student taught by teacher, from resume
// when not nil, and returns the student with its best epoch's weights; it records the
// epochs and the generation's summary in the result.
func (r *runner) generation(ctx context.Context, gen int, teacher, student *onnxio.Model, resume *checkpoint) (*onnxio.Model, error) {
	t, err := r.newTrainer(ctx, gen, teacher, student)
	if err != nil {
		return nil, err
	}
	p, err := r.resumeGeneration(t, gen, resume)
	if err != nil {
		return nil, err
	}
	if p.initial, err = r.initialEval(ctx, t, gen, resume); err != nil {
		return nil, err
	}
	if err := r.trainEpochs(ctx, t, gen, teacher, p); err != nil {
		return nil, err
	}
	return r.finishGeneration(t, gen, p)
}

// newTrainer compiles the generation's student and, online, its teacher (otherwise it
// computes the teacher's outputs with onnxruntime), and sets up the losses and the
// optimizers.
func (r *runner) newTrainer(ctx context.Context, gen int, teacher, student *onnxio.Model) (*trainer, error) {
	cfg := r.cfg
	t := &trainer{cfg: cfg, gen: gen, output: r.output, sOut: r.sOut, tOut: r.tOut, data: r.data, val: r.val}
	var err error
	if cfg.Mode == Online {
		if t.teacher, err = train.Compile(teacher, train.CompileOptions{Seed: cfg.Seed + 1}); err != nil {
			return nil, fmt.Errorf("mode online trains the teacher, but the engine cannot: %w (use mode offline)", err)
		}
	} else if err := r.teacherOutputs(ctx, teacher); err != nil {
		return nil, err
	}
	if t.student, err = train.Compile(student, train.CompileOptions{Seed: cfg.Seed + uint64(gen), LearnScales: cfg.LearnScales}); err != nil {
		return nil, fmt.Errorf("student: %w", err)
	}
	if err := r.setup(t); err != nil {
		return nil, err
	}
	return t, nil
}

// resumeGeneration restores the parameters and optimizer states of resume (when not
// nil) into t and returns the generation's progress from it; it counts the steps done
// for Progress.
func (r *runner) resumeGeneration(t *trainer, gen int, resume *checkpoint) (*progress, error) {
	cfg := r.cfg
	p := &progress{}
	if resume == nil {
		r.done = gen * cfg.Epochs * t.stepsPerEpoch()
		return p, nil
	}
	if err := t.restore(resume.Params, resume.State); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", cfg.Checkpoint, err)
	}
	if err := t.opt.SetState(resume.Opt); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", cfg.Checkpoint, err)
	}
	if t.scaleOpt != nil {
		if err := t.scaleOpt.SetState(resume.ScaleOpt); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", cfg.Checkpoint, err)
		}
	}
	if t.tOpt != nil {
		if err := t.tOpt.SetState(resume.TeacherOpt); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", cfg.Checkpoint, err)
		}
	}
	p.start, p.best, p.bestParams, p.bestState = resume.Epoch, resume.Best, resume.BestParams, resume.BestState
	r.done += (gen*cfg.Epochs + p.start) * t.stepsPerEpoch()
	return p, nil
}

// initialEval returns the student's validation figures before training: those resume
// holds, else an evaluation on the validation data (NaN without one).
func (r *runner) initialEval(ctx context.Context, t *trainer, gen int, resume *checkpoint) (Epoch, error) {
	initial := Epoch{ValLoss: math.NaN(), ValAccuracy: math.NaN(), TeacherAccuracy: math.NaN()}
	if resume != nil && resume.Initial != nil {
		return *resume.Initial, nil
	}
	if r.val != nil {
		var err error
		if initial.ValLoss, initial.ValAccuracy, initial.TeacherAccuracy, err = t.evaluate(ctx, r.val); err != nil {
			return initial, fmt.Errorf("validation: %w", err)
		}
		r.cfg.logf("generation %d before training: val loss %.4f, val accuracy %.4f (teacher %.4f)", gen+1, initial.ValLoss, initial.ValAccuracy, initial.TeacherAccuracy)
	}
	return initial, nil
}

// trainEpochs trains the epochs left after p.start, stopping early after
// cfg.Patience epochs without a better one, keeps the best epoch in p and, with
// cfg.Checkpoint, checkpoints after each epoch.
func (r *runner) trainEpochs(ctx context.Context, t *trainer, gen int, teacher *onnxio.Model, p *progress) error {
	cfg := r.cfg
	stale := 0
	if p.best != nil {
		stale = p.start - p.best.Epoch
	}
	p.epochs = p.start
	for epoch := p.start + 1; epoch <= cfg.Epochs; epoch++ {
		if cfg.Patience > 0 && stale >= cfg.Patience {
			cfg.logf("early stopping: no better validation result for %d epochs", stale)
			break
		}
		e, err := r.trainEpoch(ctx, t, gen, epoch)
		if err != nil {
			return err
		}
		r.res.History = append(r.res.History, e)
		p.epochs = epoch
		if better(e, p.best) {
			eb := e
			p.best = &eb
			p.bestParams, p.bestState = t.snapshot()
			stale = 0
		} else {
			stale++
		}
		if cfg.Checkpoint != "" {
			if err := r.saveEpoch(t, gen, epoch, teacher, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// trainEpoch trains one epoch, reporting each step to cfg.Progress, evaluates it on the
// validation data when there is some, logs it and returns its figures.
func (r *runner) trainEpoch(ctx context.Context, t *trainer, gen, epoch int) (Epoch, error) {
	cfg := r.cfg
	e := Epoch{Generation: gen + 1, Epoch: epoch, LR: t.opt.LR(), ValLoss: math.NaN(), ValAccuracy: math.NaN(), TeacherAccuracy: math.NaN()}
	begin := time.Now()
	l, err := t.epoch(ctx, epoch, func() {
		r.done++
		if cfg.Progress != nil {
			cfg.Progress(r.done, r.total)
		}
	})
	if err != nil {
		return e, err
	}
	e.Seconds = time.Since(begin).Seconds()
	e.SamplesPerSec = float64(r.data.n) / e.Seconds
	r.trainSecs += e.Seconds
	r.trainRows += r.data.n
	e.TrainLoss, e.Soft, e.Hard, e.MSE, e.Hint = l.total(), l.soft, l.hard, l.mse, l.hint
	if r.val != nil {
		if e.ValLoss, e.ValAccuracy, e.TeacherAccuracy, err = t.evaluate(ctx, r.val); err != nil {
			return e, fmt.Errorf("validation: %w", err)
		}
	}
	cfg.logf("generation %d epoch %d/%d: loss %.4f, val loss %.4f, val accuracy %.4f (teacher %.4f), %.0f samples/s",
		gen+1, epoch, cfg.Epochs, e.TrainLoss, e.ValLoss, e.ValAccuracy, e.TeacherAccuracy, e.SamplesPerSec)
	return e, nil
}

// saveEpoch writes the checkpoint after epoch of generation gen: the current and the
// best parameters, the optimizer states, the history and, in Self mode after the first
// generation, teacher (the generation's teacher, which resuming needs).
func (r *runner) saveEpoch(t *trainer, gen, epoch int, teacher *onnxio.Model, p *progress) error {
	cfg := r.cfg
	params, state := t.snapshot()
	ck := &checkpoint{Version: checkpointVersion, Key: r.key(), Generation: gen, Epoch: epoch,
		Params: params, State: state, Opt: t.opt.State(), Initial: &p.initial, Best: p.best, BestParams: p.bestParams, BestState: p.bestState,
		History: r.res.History, Generations: r.res.Generations}
	if gen > 0 && cfg.Mode == Self { // the teacher of this generation is needed to go on
		var err error
		if ck.LastModel, err = teacher.Bytes(); err != nil {
			return err
		}
	}
	if t.tOpt != nil {
		ck.TeacherOpt = t.tOpt.State()
	}
	if t.scaleOpt != nil {
		ck.ScaleOpt = t.scaleOpt.State()
	}
	if err := ck.save(cfg.Checkpoint); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

// finishGeneration restores the best epoch's parameters, exports the student (and,
// online, the teacher into the result), records the generation's summary and, with
// cfg.Checkpoint, checkpoints the finished generation; it returns the student.
func (r *runner) finishGeneration(t *trainer, gen int, p *progress) (*onnxio.Model, error) {
	if r.trainSecs > 0 {
		r.res.SamplesPerSecond = float64(r.trainRows) / r.trainSecs
	}
	if p.best != nil {
		if err := t.restore(p.bestParams, p.bestState); err != nil {
			return nil, err
		}
	}
	out, err := t.student.Export()
	if err != nil {
		return nil, err
	}
	if t.teacher != nil {
		if r.res.Teacher, err = t.teacher.Export(); err != nil {
			return nil, err
		}
	}
	initial, best := p.initial, p.best
	g := Generation{Generation: gen + 1, Epochs: p.epochs, ValAccuracy: math.NaN(), ValLoss: math.NaN(), TeacherAccuracy: math.NaN(),
		InitialAccuracy: initial.ValAccuracy, InitialLoss: initial.ValLoss}
	if best == nil { // no epoch trained: the figures are those before training
		g.ValAccuracy, g.ValLoss, g.TeacherAccuracy = initial.ValAccuracy, initial.ValLoss, initial.TeacherAccuracy
	} else {
		g.BestEpoch, g.ValAccuracy, g.ValLoss, g.TeacherAccuracy = best.Epoch, best.ValAccuracy, best.ValLoss, best.TeacherAccuracy
	}
	r.res.Generations = append(r.res.Generations, g)
	if r.cfg.Checkpoint != "" {
		if err := r.saveFinished(gen, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// saveFinished writes the checkpoint of finished generation gen: the next generation
// starts from its student, out (and a finished online run's result has the teacher).
func (r *runner) saveFinished(gen int, out *onnxio.Model) error {
	b, err := out.Bytes()
	if err != nil {
		return err
	}
	ck := &checkpoint{Version: checkpointVersion, Key: r.key(), Generation: gen + 1,
		History: r.res.History, Generations: r.res.Generations, LastModel: b}
	if r.res.Teacher != nil {
		if ck.LastTeacher, err = r.res.Teacher.Bytes(); err != nil {
			return err
		}
	}
	if err := ck.save(r.cfg.Checkpoint); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

func (r *runner) key() string { return r.runKey }

// setup runs the student (and, online, the teacher) on one sample to find the shapes
// the losses need, checks the output, creates the hint adapters and the optimizers.
func (r *runner) setup(t *trainer) error {
	probe := []int{0}
	in, err := inputs(r.data, probe)
	if err != nil {
		return err
	}
	tape, err := t.student.Forward(in, false)
	if err != nil {
		return fmt.Errorf("student: %w", err)
	}
	defer tape.Release()
	tg, tTape, err := t.teacherTargetsNoHints(in, probe)
	if err != nil {
		return err
	}
	if err := r.checkOutput(t, tape.Output(r.sOut), tg); err != nil {
		return err
	}
	var params, scales []*train.Param
	for _, p := range t.student.Params() {
		if r.cfg.LearnScales != nil && r.cfg.LearnScales(p.Name) {
			scales = append(scales, p)
		} else {
			params = append(params, p)
		}
	}
	adapterParams, err := r.addAdapters(t, tape, tTape)
	if err != nil {
		return err
	}
	params = append(params, adapterParams...)
	if tTape != nil {
		tTape.Release()
	}
	return r.newOptimizers(t, params, scales)
}

// checkOutput checks the student's output out on the probe against the teacher's, tg,
// sets t.classifier (an [N, C] output and labels) and, for a classifier, checks the
// labels against the classes.
func (r *runner) checkOutput(t *trainer, out, tg *train.Tensor) error {
	if out == nil {
		return fmt.Errorf("the student has no output %q (the teacher's)", r.output)
	}
	if !sameShape(out.Shape, tg.Shape) {
		return fmt.Errorf("student output %q has samples of shape %v, the teacher's %v: they must match", r.output, out.Shape[1:], tg.Shape[1:])
	}
	t.classifier = r.data.labels != nil && len(out.Shape) == 2 && out.Shape[1] >= 2
	if r.cfg.HardWeight > 0 && !t.classifier {
		return fmt.Errorf("hard_weight needs a classifier output ([N, C]); %q is %v", r.output, out.Shape)
	}
	if t.classifier {
		if err := checkLabels("training", r.data.labels, out.Shape[1], r.output); err != nil {
			return err
		}
		if r.val != nil {
			if err := checkLabels("validation", r.val.labels, out.Shape[1], r.output); err != nil {
				return err
			}
		}
	}
	return nil
}

// addAdapters creates an adapter for each hint, from the shapes of its student tensor
// on tape and of its teacher tensor (on tTape online, else from the teacher's outputs
// computed beforehand), and returns the adapters' parameters.
func (r *runner) addAdapters(t *trainer, tape, tTape *train.Tape) ([]*train.Param, error) {
	var params []*train.Param
	for i, h := range r.cfg.Hints {
		sf := tape.Output(h.Student)
		if sf == nil {
			return nil, fmt.Errorf("hint: the student has no tensor %q", h.Student)
		}
		var tshape []int64
		if t.teacher != nil {
			tf := tTape.Output(h.Teacher)
			if tf == nil {
				return nil, fmt.Errorf("hint: the teacher has no tensor %q", h.Teacher)
			}
			tshape = int64s(tf.Shape[1:])
		} else {
			tshape = r.data.teacher[h.Teacher].sample
		}
		if h.Weight == 0 {
			h.Weight = 1
		}
		a, err := newAdapter(h, int64s(sf.Shape[1:]), tshape, r.cfg.Seed+uint64(1000+i))
		if err != nil {
			return nil, err
		}
		t.adapters = append(t.adapters, a)
		params = append(params, a.g.Params()...)
	}
	return params, nil
}

// newOptimizers creates the optimizer of params (the cosine schedule's length from the
// epochs when not given), and those of the learned scales (ScaleLR, by default a tenth
// of the learning rate, no weight decay) and of the online teacher (TeacherLR, by default
// a tenth).
func (r *runner) newOptimizers(t *trainer, params, scales []*train.Param) error {
	cfg := r.cfg
	oc := cfg.Optimizer
	if oc.Schedule.Name == "cosine" && oc.Schedule.TotalSteps == 0 {
		oc.Schedule.TotalSteps = max(1, cfg.Epochs*t.stepsPerEpoch())
	}
	var err error
	if t.opt, err = train.NewOptimizer(params, oc); err != nil {
		return err
	}
	if len(scales) > 0 {
		soc := oc
		soc.LR = cfg.ScaleLR
		if soc.LR == 0 {
			soc.LR = oc.LR / 10
		}
		soc.WeightDecay = 0
		if t.scaleOpt, err = train.NewOptimizer(scales, soc); err != nil {
			return err
		}
	}
	if t.teacher != nil {
		toc := oc
		toc.LR = cfg.TeacherLR
		if toc.LR == 0 {
			toc.LR = oc.LR / 10
		}
		if t.tOpt, err = train.NewOptimizer(t.teacher.Params(), toc); err != nil {
			return err
		}
	}
	return nil
}

// checkLabels checks that every label is a class of the output: the losses and the
// accuracy index the output's row by it.
func checkLabels(what string, labels []int, classes int, output string) error {
	for i, l := range labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("%s dataset: label %d of sample %d is not a class of output %q (0 to %d)", what, l, i, output, classes-1)
		}
	}
	return nil
}

// teacherTargetsNoHints gives the teacher's output on the samples at idx (and, online,
// the teacher's tape for the hint shapes).
func (t *trainer) teacherTargetsNoHints(in map[string]*train.Tensor, idx []int) (*train.Tensor, *train.Tape, error) {
	if t.teacher == nil {
		out, err := teacherRows(t.data, t.tOut, idx)
		return out, nil, err
	}
	tape, err := t.teacher.Forward(in, false)
	if err != nil {
		return nil, nil, fmt.Errorf("teacher: %w", err)
	}
	return tape.Output(t.tOut), tape, nil
}

// teacherOutputs computes the teacher's outputs (and hint features) on the training and
// validation data with onnxruntime.
func (r *runner) teacherOutputs(ctx context.Context, teacher *onnxio.Model) error {
	m := teacher.Clone()
	g := m.Proto.GetGraph()
	have := map[string]bool{}
	for _, o := range g.GetOutput() {
		have[o.GetName()] = true
	}
	for _, name := range r.teacherOuts {
		if !have[name] {
			g.Output = append(g.Output, onnxio.ValueInfo(name, onnxio.TypeFloat, nil))
		}
	}
	b, err := m.Bytes()
	if err != nil {
		return err
	}
	sess, err := ort.NewSession(b, r.cfg.Runtime)
	if err != nil {
		return fmt.Errorf("teacher: %w", err)
	}
	defer sess.Close()
	if err := r.data.fillTeacher(ctx, sess, r.teacherOuts, r.cfg.TeacherBatch, r.cfg.MemoryLimit); err != nil {
		return err
	}
	if r.val != nil {
		return r.val.fillTeacher(ctx, sess, r.teacherOuts, r.cfg.TeacherBatch, r.cfg.MemoryLimit)
	}
	return nil
}

func pickOutput(teacher *onnxio.Model, want string) (string, error) {
	var names []string
	for _, o := range teacher.Proto.GetGraph().GetOutput() {
		names = append(names, o.GetName())
	}
	if len(names) == 0 {
		return "", fmt.Errorf("the teacher has no outputs")
	}
	if want == "" {
		return names[0], nil
	}
	for _, n := range names {
		if n == want {
			return want, nil
		}
	}
	return "", fmt.Errorf("output %q: the teacher's outputs are %v", want, names)
}

// checkStudent checks that the data feeds every student input and that the student
// gives the output the losses compare.
func checkStudent(student *onnxio.Model, data *dataset.Dataset, output string) error {
	fed := map[string]bool{}
	for _, in := range data.Inputs() {
		fed[in.Name] = true
	}
	for _, in := range dataset.InputsOf(student) {
		if !fed[in.Name] {
			return fmt.Errorf("student input %q is not one of the teacher's inputs, which the data feeds", in.Name)
		}
	}
	for _, o := range student.Proto.GetGraph().GetOutput() {
		if o.GetName() == output {
			return nil
		}
	}
	return fmt.Errorf("the student has no output %q (the teacher's output the losses compare)", output)
}

// reinit returns a copy of m with freshly initialised parameters.
func reinit(m *onnxio.Model, seed uint64) (*onnxio.Model, error) {
	g, err := train.Compile(m, train.CompileOptions{})
	if err != nil {
		return nil, fmt.Errorf("mode self trains the teacher's architecture, but the engine cannot: %w", err)
	}
	g.Reinit(seed)
	return g.Export()
}

// runKey identifies a run for its checkpoint: options, models and data.
func runKey(cfg Config, teacher, student *onnxio.Model, n, nVal int, digest, valDigest uint32) (string, error) {
	cfg.Checkpoint = ""
	b, err := json.Marshal(struct {
		Cfg               Config
		LearnScales       bool
		Teacher, Student  string
		N, NVal           int
		Digest, ValDigest uint32
	}{cfg, cfg.LearnScales != nil, teacher.GraphHash(), graphHash(student), n, nVal, digest, valDigest})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func graphHash(m *onnxio.Model) string {
	if m == nil {
		return ""
	}
	return m.GraphHash()
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func int64s(d []int) []int64 {
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = int64(v)
	}
	return out
}

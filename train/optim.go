package train

import (
	"fmt"
	"math"
	"strings"
)

// OptimizerConfig configures an Optimizer. The update rules are PyTorch's (torch.optim
// SGD, Adam and AdamW with their default options otherwise).
type OptimizerConfig struct {
	// Name is "sgd", "adam" or "adamw".
	Name string
	// LR is the base learning rate (> 0).
	LR float64
	// Momentum and Nesterov apply to SGD.
	Momentum float64
	Nesterov bool
	// Beta1, Beta2 and Eps apply to Adam and AdamW; zero means 0.9, 0.999 and 1e-8.
	Beta1, Beta2, Eps float64
	// WeightDecay is L2 added to the gradient for SGD and Adam, and decoupled weight
	// decay (p -= lr·wd·p) for AdamW. It applies to every parameter.
	WeightDecay float64
	// ClipNorm, when > 0, scales the gradients down so that their global L2 norm is at
	// most ClipNorm before each step.
	ClipNorm float64
	// Schedule changes the learning rate from step to step.
	Schedule Schedule
}

// Schedule is a learning-rate schedule, by optimizer step.
type Schedule struct {
	// Name is "" or "none" (constant), "step" or "cosine".
	Name string
	// StepSize and Gamma: "step" multiplies the rate by Gamma (default 0.1) every
	// StepSize steps.
	StepSize int
	Gamma    float64
	// TotalSteps and MinLR: "cosine" anneals from LR to MinLR over TotalSteps steps.
	TotalSteps int
	MinLR      float64
	// WarmupSteps, with any schedule, ramps the rate linearly from LR/WarmupSteps up to
	// the schedule's value over the first WarmupSteps steps.
	WarmupSteps int
}

// Rate returns the learning rate at step t (0 for the first step) for base rate lr.
func (s Schedule) Rate(lr float64, t int) float64 {
	r := lr
	switch strings.ToLower(s.Name) {
	case "step":
		gamma := s.Gamma
		if gamma == 0 {
			gamma = 0.1
		}
		if s.StepSize > 0 {
			r = lr * math.Pow(gamma, float64(t/s.StepSize))
		}
	case "cosine":
		if s.TotalSteps > 0 {
			f := float64(min(t, s.TotalSteps)) / float64(s.TotalSteps)
			r = s.MinLR + (lr-s.MinLR)*(1+math.Cos(math.Pi*f))/2
		}
	}
	if s.WarmupSteps > 0 && t < s.WarmupSteps {
		r *= float64(t+1) / float64(s.WarmupSteps)
	}
	return r
}

func (s Schedule) check() error {
	switch strings.ToLower(s.Name) {
	case "", "none":
	case "step":
		if s.StepSize <= 0 {
			return fmt.Errorf("step schedule: step size %d must be positive", s.StepSize)
		}
	case "cosine":
		if s.TotalSteps <= 0 {
			return fmt.Errorf("cosine schedule: total steps %d must be positive", s.TotalSteps)
		}
	default:
		return fmt.Errorf("unknown schedule %q: use none, step or cosine", s.Name)
	}
	return nil
}

// Optimizer updates parameters from their gradients.
type Optimizer struct {
	cfg    OptimizerConfig
	params []*Param
	m, v   [][]float32 // SGD: momentum buffers in m; Adam: first and second moments
	steps  int
}

// NewOptimizer returns an optimizer for params.
func NewOptimizer(params []*Param, cfg OptimizerConfig) (*Optimizer, error) {
	cfg.Name = strings.ToLower(cfg.Name)
	switch cfg.Name {
	case "sgd", "adam", "adamw":
	default:
		return nil, fmt.Errorf("unknown optimizer %q: use sgd, adam or adamw", cfg.Name)
	}
	if !(cfg.LR > 0) {
		return nil, fmt.Errorf("learning rate %v must be positive", cfg.LR)
	}
	if cfg.Momentum < 0 || cfg.WeightDecay < 0 || cfg.ClipNorm < 0 {
		return nil, fmt.Errorf("momentum, weight decay and clip norm must not be negative")
	}
	if cfg.Nesterov && (cfg.Name != "sgd" || cfg.Momentum == 0) {
		return nil, fmt.Errorf("nesterov needs SGD with momentum")
	}
	if err := cfg.Schedule.check(); err != nil {
		return nil, err
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	o := &Optimizer{cfg: cfg, params: params, m: make([][]float32, len(params)), v: make([][]float32, len(params))}
	for i, p := range params {
		if cfg.Name != "sgd" || cfg.Momentum != 0 {
			o.m[i] = make([]float32, len(p.Value.Data))
		}
		if cfg.Name != "sgd" {
			o.v[i] = make([]float32, len(p.Value.Data))
		}
	}
	return o, nil
}

// LR returns the learning rate the next Step will use.
func (o *Optimizer) LR() float64 { return o.cfg.Schedule.Rate(o.cfg.LR, o.steps) }

// Steps returns the number of steps taken.
func (o *Optimizer) Steps() int { return o.steps }

// ZeroGrad clears the gradients of the optimizer's parameters.
func (o *Optimizer) ZeroGrad() {
	for _, p := range o.params {
		g := p.Grad.Data
		parallelFor(len(g), 1, func(lo, hi int) { clear(g[lo:hi]) })
	}
}

// GradNorm returns the global L2 norm of the parameters' gradients.
func (o *Optimizer) GradNorm() float64 {
	var s float64
	for _, p := range o.params {
		for _, g := range p.Grad.Data {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// Step updates every parameter from its gradient (clipped first when ClipNorm is set)
// and returns the gradient norm before clipping (0 when clipping is off). It does not
// clear the gradients.
func (o *Optimizer) Step() float64 {
	lr := o.LR()
	o.steps++
	gscale := float32(1)
	norm := 0.0
	if o.cfg.ClipNorm > 0 {
		norm = o.GradNorm()
		if norm > o.cfg.ClipNorm {
			gscale = float32(o.cfg.ClipNorm / (norm + 1e-6))
		}
	}
	c := o.cfg
	t := float64(o.steps)
	for i, p := range o.params {
		w, g, m, v := p.Value.Data, p.Grad.Data, o.m[i], o.v[i]
		switch c.Name {
		case "sgd":
			mom, wd, lrf := float32(c.Momentum), float32(c.WeightDecay), float32(lr)
			first := o.steps == 1
			parallelFor(len(w), 4, func(lo, hi int) {
				for j := lo; j < hi; j++ {
					d := g[j]*gscale + wd*w[j]
					if m != nil {
						if first {
							m[j] = d
						} else {
							m[j] = mom*m[j] + d
						}
						if c.Nesterov {
							d += mom * m[j]
						} else {
							d = m[j]
						}
					}
					w[j] -= lrf * d
				}
			})
		case "adam", "adamw":
			b1, b2 := float32(c.Beta1), float32(c.Beta2)
			bc1 := 1 - math.Pow(c.Beta1, t)
			bc2 := 1 - math.Pow(c.Beta2, t)
			stepSize := float32(lr / bc1)
			invSqrtBc2 := float32(1 / math.Sqrt(bc2))
			eps := float32(c.Eps)
			l2, decay := float32(0), float32(1)
			if c.Name == "adam" {
				l2 = float32(c.WeightDecay)
			} else {
				decay = float32(1 - lr*c.WeightDecay)
			}
			parallelFor(len(w), 8, func(lo, hi int) {
				adamUpdate(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], gscale, l2, b1, b2, invSqrtBc2, eps, decay, stepSize)
			})
		}
	}
	return norm
}

// adamUpdate is Adam's (AdamW's) update of w from its gradient g and moments m and v,
// all of one length. The loop is bound by the divide unit (a square root and a division
// an element): whole blocks of 8 run on an AVX2 kernel where the CPU has one
// (adam_amd64.s), which rounds every operation as this Go loop does, so the two give
// bit-identical weights and moments (the float32 conversions below forbid fusing a
// multiply and an add into an FMA).
func adamUpdate(w, g, m, v []float32, gscale, l2, b1, b2, invSqrtBc2, eps, decay, stepSize float32) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	ob1, ob2 := 1-b1, 1-b2
	done := 0
	if adamAsm && n >= 8 {
		adamAVX2(&w[0], &g[0], &m[0], &v[0], n/8, gscale, l2, b1, ob1, b2, ob2, invSqrtBc2, eps, decay, stepSize)
		done = n / 8 * 8
	}
	for j := done; j < n; j++ {
		d := float32(g[j]*gscale) + float32(l2*w[j])
		mj := float32(b1*m[j]) + float32(ob1*d)
		vj := float32(b2*v[j]) + float32(float32(ob2*d)*d)
		m[j], v[j] = mj, vj
		den := float32(float32(math.Sqrt(float64(vj)))*invSqrtBc2) + eps
		w[j] = float32(w[j]*decay) - float32(stepSize*mj)/den
	}
}

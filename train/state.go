package train

import (
	"fmt"
	"slices"
)

// OptimizerState is what an Optimizer keeps between steps, for checkpoints: the step
// count and, per parameter (in the optimizer's order), the first and second moment
// buffers (nil where the algorithm keeps none).
type OptimizerState struct {
	Steps int
	M, V  [][]float32
}

// State returns a copy of the optimizer's state.
func (o *Optimizer) State() OptimizerState {
	s := OptimizerState{Steps: o.steps, M: make([][]float32, len(o.m)), V: make([][]float32, len(o.v))}
	for i := range o.m {
		s.M[i] = slices.Clone(o.m[i])
		s.V[i] = slices.Clone(o.v[i])
	}
	return s
}

// SetState restores a state that State returned for an optimizer of the same algorithm
// over parameters of the same sizes.
func (o *Optimizer) SetState(s OptimizerState) error {
	if len(s.M) != len(o.m) || len(s.V) != len(o.v) {
		return fmt.Errorf("optimizer state holds %d parameters, the optimizer %d", len(s.M), len(o.m))
	}
	for i := range o.m {
		if len(s.M[i]) != len(o.m[i]) || len(s.V[i]) != len(o.v[i]) {
			return fmt.Errorf("optimizer state of parameter %s does not match its size", o.params[i].Name)
		}
	}
	for i := range o.m {
		copy(o.m[i], s.M[i])
		copy(o.v[i], s.V[i])
	}
	o.steps = s.Steps
	return nil
}

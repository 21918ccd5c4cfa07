package distill

import (
	"github.com/onnxpipe/onnxpipe/onnxio"
)

// SoftmaxLogits returns the input of the Softmax over the last axis whose output is m's
// graph output output (the logits of a model that outputs probabilities), or "" when
// the output does not come from such a Softmax.
func SoftmaxLogits(m *onnxio.Model, output string) string {
	g := m.Proto.GetGraph()
	rank := -1
	for _, o := range g.GetOutput() {
		if o.GetName() == output {
			if dims, _, ok := onnxio.ValueShape(o); ok {
				rank = len(dims)
			}
		}
	}
	for _, n := range g.GetNode() {
		if len(n.GetOutput()) == 0 || n.GetOutput()[0] != output {
			continue
		}
		if n.GetOpType() != "Softmax" || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") || len(n.GetInput()) == 0 {
			return ""
		}
		// Before opset 13 the input is flattened to 2-D at axis (default 1), after it the
		// softmax runs along axis (default -1): either way over the last axis alone when
		// axis is the last one.
		axis := int64(-1)
		if m.Opset("") < 13 {
			axis = 1
		}
		if a := onnxio.Attr(n, "axis"); a != nil {
			axis = a.GetI()
		}
		if axis == -1 || rank > 0 && axis == int64(rank-1) {
			return n.GetInput()[0]
		}
		return ""
	}
	return ""
}

// lossTensors sets the tensors the losses compare: the output itself or, where the
// teacher's or the student's output is a final Softmax's, that Softmax's input (the
// soft loss and the MSE work on logits, and softmax of probabilities is not the
// teacher's distribution). Self mode's students are the teacher's architecture.
func (r *runner) lossTensors(teacher, student *onnxio.Model) {
	r.tOut, r.sOut = r.output, r.output
	if student == nil {
		student = teacher
	}
	lt, ls := SoftmaxLogits(teacher, r.output), SoftmaxLogits(student, r.output)
	switch {
	case lt != "" && ls != "":
		r.tOut, r.sOut = lt, ls
		r.cfg.logf("the teacher's output %q is a Softmax of %q: the losses compare logits (the student's %q); the student's %q stays probabilities, as the teacher's", r.output, lt, ls, r.output)
	case lt != "":
		r.tOut = lt
		r.cfg.logf("warning: the teacher's output %q is a Softmax of %q but the student's is not: the losses take the student's %q as logits and compare it with the teacher's logits; the student does not output probabilities as the teacher does", r.output, lt, r.output)
	case ls != "":
		r.sOut = ls
		r.cfg.logf("warning: the student's output %q is a Softmax of %q but the teacher's is not: the losses compare the student's logits %q with the teacher's %q", r.output, ls, ls, r.output)
	}
}

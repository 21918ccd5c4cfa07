package train

import (
	"fmt"
	"math"
	"slices"
)

// Losses take logits of shape [..., C]: the last dimension holds the classes and every
// other element of the shape is one row of the batch. Each returns the loss (averaged
// over the rows) and its gradient w.r.t. the first argument, of the same shape. They
// compute in float64 with log-sum-exp, so logits of ±1e4 give finite results. Shapes
// that do not match are a programming error: they panic.

// flush returns v as float32, with magnitudes below 1e-30 set to zero: a loss gradient
// that small carries nothing, and subnormal float32 values would slow every product
// they pass through by two orders of magnitude (Go does not flush them to zero).
func flush(v float64) float32 {
	if math.Abs(v) < 1e-30 {
		return 0
	}
	return float32(v)
}

// rowsOf returns the number of rows and classes of logits.
func rowsOf(fn string, t *Tensor) (rows, classes int) {
	if t.DType != Float32 || len(t.Shape) == 0 {
		panic(fmt.Sprintf("train.%s: logits must be a float32 tensor with a class dimension, got %s", fn, t))
	}
	classes = t.Shape[len(t.Shape)-1]
	if classes == 0 {
		panic(fmt.Sprintf("train.%s: logits %s have no classes", fn, t))
	}
	return len(t.Data) / classes, classes
}

// logSoftmaxRow writes log(softmax(z/T)) of one row into out.
func logSoftmaxRow(z []float32, invT float64, out []float64) {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v)*invT)
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v)*invT - m)
	}
	lse := m + math.Log(s)
	for i, v := range z {
		out[i] = float64(v)*invT - lse
	}
}

// KL is Hinton's soft-target loss, T²·KL(softmax(teacher/T) ‖ softmax(student/T)),
// averaged over the rows; the gradient w.r.t. the student's logits is
// T·(softmax(student/T) − softmax(teacher/T)) / rows. temperature must be > 0.
func KL(student, teacher *Tensor, temperature float64) (float64, *Tensor) {
	return softLoss("KL", student, teacher, temperature, true)
}

// SoftCrossEntropy is T²·H(softmax(teacher/T), softmax(student/T)) averaged over the
// rows: KL plus T² times the teacher's entropy, a constant, so its gradient is KL's.
func SoftCrossEntropy(student, teacher *Tensor, temperature float64) (float64, *Tensor) {
	return softLoss("SoftCrossEntropy", student, teacher, temperature, false)
}

func softLoss(fn string, student, teacher *Tensor, temperature float64, kl bool) (float64, *Tensor) {
	rows, classes := rowsOf(fn, student)
	if !slices.Equal(student.Shape, teacher.Shape) || teacher.DType != Float32 {
		panic(fmt.Sprintf("train.%s: student %s and teacher %s differ", fn, student, teacher))
	}
	if !(temperature > 0) {
		panic(fmt.Sprintf("train.%s: temperature %v must be positive", fn, temperature))
	}
	invT := 1 / temperature
	grad := NewTensor(student.Shape, nil)
	ls, lt := make([]float64, classes), make([]float64, classes)
	var total float64
	for r := range rows {
		zs := student.Data[r*classes : (r+1)*classes]
		zt := teacher.Data[r*classes : (r+1)*classes]
		logSoftmaxRow(zs, invT, ls)
		logSoftmaxRow(zt, invT, lt)
		g := grad.Data[r*classes : (r+1)*classes]
		for i := range classes {
			pt := math.Exp(lt[i])
			if pt > 0 {
				if kl {
					total += pt * (lt[i] - ls[i])
				} else {
					total -= pt * ls[i]
				}
			}
			g[i] = flush(temperature * (math.Exp(ls[i]) - pt) / float64(rows))
		}
	}
	return temperature * temperature * total / float64(rows), grad
}

// CrossEntropy is the mean over rows of −log softmax(logits)[label]; the gradient is
// (softmax(logits) − onehot(label)) / rows. labels has one class index per row.
func CrossEntropy(logits *Tensor, labels []int) (float64, *Tensor) {
	rows, classes := rowsOf("CrossEntropy", logits)
	if len(labels) != rows {
		panic(fmt.Sprintf("train.CrossEntropy: %d labels for %d rows", len(labels), rows))
	}
	grad := NewTensor(logits.Shape, nil)
	ls := make([]float64, classes)
	var total float64
	for r, y := range labels {
		if y < 0 || y >= classes {
			panic(fmt.Sprintf("train.CrossEntropy: label %d of row %d is not in [0, %d)", y, r, classes))
		}
		logSoftmaxRow(logits.Data[r*classes:(r+1)*classes], 1, ls)
		total -= ls[y]
		g := grad.Data[r*classes : (r+1)*classes]
		for i, l := range ls {
			p := math.Exp(l)
			if i == y {
				p--
			}
			g[i] = flush(p / float64(rows))
		}
	}
	return total / float64(rows), grad
}

// MSE is the mean over all elements of (a − b)²; the gradient w.r.t. a is 2(a − b)/n.
func MSE(a, b *Tensor) (float64, *Tensor) {
	if !slices.Equal(a.Shape, b.Shape) || a.DType != Float32 || b.DType != Float32 {
		panic(fmt.Sprintf("train.MSE: %s and %s differ", a, b))
	}
	n := float64(max(1, len(a.Data)))
	grad := NewTensor(a.Shape, nil)
	var total float64
	for i, v := range a.Data {
		d := float64(v) - float64(b.Data[i])
		total += d * d
		grad.Data[i] = flush(2 * d / n)
	}
	return total / n, grad
}

// Accuracy returns the fraction of rows whose largest logit is at the label.
func Accuracy(logits *Tensor, labels []int) float64 {
	rows, classes := rowsOf("Accuracy", logits)
	if rows == 0 {
		return 0
	}
	right := 0
	for r := range min(rows, len(labels)) {
		row := logits.Data[r*classes : (r+1)*classes]
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		if best == labels[r] {
			right++
		}
	}
	return float64(right) / float64(rows)
}

package verify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
)

// AutoExcludeOptions configure AutoExclude.
type AutoExcludeOptions struct {
	// MaxTries is the most re-quantizations.
	MaxTries int
	// PerTry is how many layers go back to float on each try (default 2; a folded Relu and
	// the node before it count as two).
	PerTry int
	// Excluded are the nodes the first quantization kept in float already.
	Excluded []string
	// Quantized is the number of nodes the first quantization quantized.
	Quantized int
	// Log, when set, is told of each try.
	Log func(format string, args ...any)
}

// Requantizer quantizes the float model again with the nodes in exclude kept in float
// and returns the candidate and the number of nodes it quantized.
type Requantizer func(ctx context.Context, exclude []string) (cand *onnxio.Model, quantized int, err error)

// Evaluator judges a candidate: its report against the reference, thresholds included.
type Evaluator func(ctx context.Context, cand *onnxio.Model) (*Report, error)

// Try is one attempt of the accuracy-aware mode: try 0 is the first quantization, each
// later try quantizes the float model again with more nodes in float.
type Try struct {
	Try int `json:"try"`
	// Added are the nodes this try put back to float; Excluded all nodes kept in float
	// (the first quantization's exclusions included).
	Added    []string `json:"added,omitempty"`
	Excluded []string `json:"excluded"`
	// NodesQuantized counts the nodes quantized in this try's model.
	NodesQuantized int      `json:"nodes_quantized"`
	Passed         bool     `json:"passed"`
	Failures       []string `json:"failures,omitempty"`
	// The figures of the first judged output on cpu.
	Output        string       `json:"output,omitempty"`
	SQNRdB        report.Float `json:"sqnr_db"`
	Top1Agreement *float64     `json:"top1_agreement,omitempty"`
	Accuracy      *float64     `json:"accuracy,omitempty"`
	// SizeRatio is the candidate's size over the reference's.
	SizeRatio float64 `json:"size_ratio"`
}

// AutoExcluded is what AutoExclude found.
type AutoExcluded struct {
	// Tries are every attempt, the first quantization included as try 0.
	Tries []Try
	// Report judges the last candidate; Candidate is it (nil when no try was made).
	Report    *Report
	Candidate *onnxio.Model
}

// AutoExclude is the accuracy-aware mode of quantization: while the candidate's report
// fails its thresholds, the layers that introduce the most error (Introduced) go back to
// float and the float model is quantized again, up to MaxTries times. float is the
// model before quantization (its graph names the layers); first judges the first
// quantization.
func AutoExclude(ctx context.Context, float *onnxio.Model, first *Report, requant Requantizer, eval Evaluator, o AutoExcludeOptions) (*AutoExcluded, error) {
	perTry := o.PerTry
	if perTry == 0 {
		perTry = 2
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	excluded := slices.Clone(o.Excluded)
	res := &AutoExcluded{Report: first, Tries: []Try{tryOf(0, nil, excluded, o.Quantized, first)}}
	ix := onnxio.NewIndex(float.Graph())
	for try := 1; try <= o.MaxTries && !res.Report.Passed; try++ {
		added := putBack(ix, res.Report.PerLayer, excluded, perTry)
		if len(added) == 0 {
			logf("auto_exclude try %d: no quantized layer left to put back to float", try)
			break
		}
		excluded = append(excluded, added...)
		cand, quantized, err := requant(ctx, excluded[len(o.Excluded):])
		if err != nil {
			return nil, fmt.Errorf("auto_exclude try %d: %w", try, err)
		}
		rep, err := eval(ctx, cand)
		if err != nil {
			return nil, fmt.Errorf("auto_exclude try %d: %w", try, err)
		}
		status := "still failing"
		if rep.Passed {
			status = "passes"
		}
		logf("auto_exclude try %d: kept in float %v (%d excluded in all): %s (%d thresholds missed)", try, added, len(excluded), status, len(rep.Failures))
		res.Tries = append(res.Tries, tryOf(try, added, excluded, quantized, rep))
		res.Report, res.Candidate = rep, cand
	}
	return res, nil
}

// putBack picks up to n layers to put back to float: those that introduce the most error,
// each with the node folded into it, leaving out the nodes in float already.
func putBack(ix *onnxio.Index, layers []Layer, excluded []string, n int) []string {
	var added []string
	for _, l := range Introduced(ix, layers) {
		if len(added) >= n {
			break
		}
		for _, name := range producers(ix, l.Tensor) {
			if name != "" && !slices.Contains(excluded, name) && !slices.Contains(added, name) {
				added = append(added, name)
			}
		}
	}
	return added
}

func tryOf(n int, added, excluded []string, quantized int, rep *Report) Try {
	t := Try{Try: n, Added: added, Excluded: slices.Clone(excluded), NodesQuantized: quantized,
		Passed: rep.Passed, Failures: rep.Failures, SizeRatio: rep.SizeRatio}
	if t.Excluded == nil {
		t.Excluded = []string{}
	}
	for _, pr := range rep.Providers {
		if pr.Provider == ort.CPU && len(pr.Outputs) > 0 {
			m := pr.Outputs[0]
			t.Output, t.SQNRdB, t.Top1Agreement, t.Accuracy = m.Output, m.SQNRdB, m.Top1Agreement, m.CandAccuracy
		}
	}
	return t
}

// Introduced orders the quantized layers by the error each introduces, most first: the
// drop in SQNR from the layer's nearest measured inputs (upstream through the float
// values in between, e.g. a Conv output before its folded Relu) to its output. Errors
// accumulate along the graph, so the layers with the lowest SQNR are mostly the last
// ones, which only pass on what the early ones made; the drop points at the layer that
// made it (the MNIST CNN: its first convolution, 144 -> 40 dB, against 40 -> 38 dB for
// the second, whose output has the lowest SQNR). A layer below only exact or unmeasured
// (float) values made all of its error: it comes first. Ties go to the lower SQNR.
func Introduced(ix *onnxio.Index, layers []Layer) []Layer {
	known := make(map[string]float64, len(layers))
	for _, l := range layers {
		known[l.Tensor] = float64(l.SQNRdB)
	}
	drop := make(map[string]float64, len(layers))
	for _, l := range layers {
		drop[l.Tensor] = sqnrDrop(ix, l, known)
	}
	s := append([]Layer(nil), layers...)
	sort.SliceStable(s, func(i, j int) bool {
		di, dj := drop[s[i].Tensor], drop[s[j].Tensor]
		if di != dj {
			return di > dj
		}
		return s[i].SQNRdB < s[j].SQNRdB
	})
	return s
}

// sqnrDrop is the error layer l introduces, as a drop in dB: +Inf when everything above
// it is exact (+Inf SQNR) or unmeasured (float), so all of its error is its own; -Inf
// when its own output is exact; never NaN (which would scramble the order).
func sqnrDrop(ix *onnxio.Index, l Layer, known map[string]float64) float64 {
	out := float64(l.SQNRdB)
	switch {
	case math.IsNaN(out) || math.IsInf(out, 1):
		return math.Inf(-1)
	case math.IsInf(out, -1):
		return math.Inf(1)
	}
	in, ok := upstreamSQNR(ix, l.Tensor, known)
	if !ok || math.IsInf(in, 1) {
		return math.Inf(1)
	}
	if d := in - out; !math.IsNaN(d) {
		return d
	}
	return math.Inf(-1)
}

// upstreamSQNR is the lowest SQNR among the measured values nearest above tensor: the
// inputs of its producer, or, for an input that was not measured, that input's own
// producer's inputs, a few nodes up at most. Constants are skipped. ok is false when no
// measured value is found.
func upstreamSQNR(ix *onnxio.Index, tensor string, known map[string]float64) (float64, bool) {
	lo, found := math.Inf(1), false
	seen := map[string]bool{tensor: true}
	frontier := []string{tensor}
	for hop := 0; hop < 8 && len(frontier) > 0; hop++ {
		var next []string
		for _, t := range frontier {
			n := ix.Producer[t]
			if n == nil {
				continue
			}
			for _, in := range n.GetInput() {
				if in == "" || seen[in] || ix.IsConstant(in) {
					continue
				}
				seen[in] = true
				if q, ok := known[in]; ok {
					lo, found = math.Min(lo, q), true
				} else {
					next = append(next, in)
				}
			}
		}
		frontier = next
	}
	return lo, found
}

// producers names the float node that makes tensor and, when that node is an activation
// folded into its producer's range (Relu, Clip), the node before it as well.
func producers(ix *onnxio.Index, tensor string) []string {
	n := ix.Producer[tensor]
	if n == nil {
		return nil
	}
	names := []string{n.GetName()}
	if op := n.GetOpType(); (op == "Relu" || op == "Clip") && len(n.GetInput()) > 0 {
		if p := ix.Producer[n.GetInput()[0]]; p != nil {
			names = append(names, p.GetName())
		}
	}
	return names
}

package verify

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/report"
	quantstage "github.com/onnxpipe/onnxpipe/stages/quantize"
	v "github.com/onnxpipe/onnxpipe/verify"
)

// Try is one attempt of the accuracy-aware mode: try 0 is the quantization the quantize
// stage made, each later try quantizes the float model again with more nodes in float.
type Try struct {
	Try int `json:"try"`
	// Added are the nodes this try put back to float; Excluded all nodes kept in float
	// (the quantize stage's exclude_nodes included).
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

func tryOf(n int, added, excluded []string, quantized int, rep *v.Report) Try {
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

func countQuantized(r *quantstage.Result) int {
	n := 0
	for _, k := range r.Quantized {
		n += k
	}
	return n
}

// autoExclude is the accuracy-aware mode: while the thresholds fail right after a
// quantize stage, the layers that introduce the most error (introduced) go back to float
// and the model is quantized again, up to MaxTries times. Every try, the first
// quantization included, is in the result (and so in the report).
func autoExclude(p *pipeline.Pass, o *Options, ref *onnxio.Model, ds *dataset.Dataset, opts v.Options, rep *v.Report) (*Result, error) {
	res := &Result{Report: rep}
	prev := p.Entry - 1
	if prev < 0 || p.Job.Entries[prev].Stage != quantstage.Stage {
		p.Warn("auto_exclude applies right after a quantize stage; thresholds failed with no retry")
		return res, nil
	}
	qr, ok := p.ResultOf[quantstage.Stage].(*quantstage.Result)
	if !ok || qr.Options == nil || qr.Before == nil {
		return res, nil
	}
	perTry := o.AutoExclude.PerTry
	if perTry == 0 {
		perTry = 2
	}
	qo := *qr.Options
	qo.ExcludeNodes = append([]string(nil), qr.Options.ExcludeNodes...)
	res.Tries = append(res.Tries, tryOf(0, nil, qo.ExcludeNodes, countQuantized(qr), rep))
	before := onnxio.NewIndex(qr.Before.Graph())
	for try := 1; try <= o.AutoExclude.MaxTries && !rep.Passed; try++ {
		var added []string
		for _, l := range introduced(before, rep.PerLayer) {
			if len(added) >= perTry {
				break
			}
			for _, name := range producers(before, l.Tensor) {
				if name != "" && !slices.Contains(qo.ExcludeNodes, name) {
					qo.ExcludeNodes = append(qo.ExcludeNodes, name)
					added = append(added, name)
				}
			}
		}
		if len(added) == 0 {
			p.Note("auto_exclude try %d: no quantized layer left to put back to float", try)
			break
		}
		// The quantize code reports into a scratch record: its figures describe this
		// try's model, which the try's row in the report sums up.
		sp, _ := p.Scratch()
		qres, err := quantstage.Apply(sp, &qo, qr.Before)
		if err != nil {
			return nil, fmt.Errorf("auto_exclude try %d: %w", try, err)
		}
		next, err := v.Run(p.Ctx, ref, p.Job.Model, ds, opts)
		if err != nil {
			return nil, fmt.Errorf("auto_exclude try %d: %w", try, err)
		}
		status := "still failing"
		if next.Passed {
			status = "passes"
		}
		p.Note("auto_exclude try %d: kept in float %v (%d excluded in all): %s (%d thresholds missed)", try, added, len(qo.ExcludeNodes), status, len(next.Failures))
		p.Metric(fmt.Sprintf("auto_exclude_try%d_failures", try), float64(len(next.Failures)), "")
		res.Tries = append(res.Tries, tryOf(try, added, qo.ExcludeNodes, countQuantized(qres), next))
		rep = next
		res.Report = next
	}
	if !rep.Passed {
		p.Warn("auto_exclude: the thresholds still fail after %d tries", len(res.Tries)-1)
	}
	return res, nil
}

// recordTries adds the table of the accuracy-aware mode's tries to the report.
func recordTries(p *pipeline.Pass, tries []Try) {
	if len(tries) == 0 {
		return
	}
	t := report.Table{Title: "auto_exclude tries", Columns: []string{"try", "put back to float", "in float", "quantized nodes",
		"SQNR (dB)", "top-1", "accuracy", "size ratio", "result"}}
	opt := func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.4f", *f)
	}
	for _, tr := range tries {
		added := strings.Join(tr.Added, ", ")
		if tr.Try == 0 {
			added = "(the quantize stage's model)"
		}
		result := "passes"
		if !tr.Passed {
			result = fmt.Sprintf("%d missed: %s", len(tr.Failures), strings.Join(tr.Failures, "; "))
		}
		t.Rows = append(t.Rows, []string{strconv.Itoa(tr.Try), added, strconv.Itoa(len(tr.Excluded)), strconv.Itoa(tr.NodesQuantized),
			fmt.Sprintf("%.2f", float64(tr.SQNRdB)), opt(tr.Top1Agreement), opt(tr.Accuracy), fmt.Sprintf("%.3fx", tr.SizeRatio), result})
	}
	t.Note = "Each try puts the nodes that introduce the most error (the largest drop in per-layer SQNR from their inputs to their output) back to float and quantizes the float model again; the last try is the model this stage judged."
	p.Table(t)
}

// introduced orders the quantized layers by the error each introduces, most first: the
// drop in SQNR from the layer's nearest measured inputs (upstream through the float
// values in between, e.g. a Conv output before its folded Relu) to its output. Errors
// accumulate along the graph, so the layers with the lowest SQNR are mostly the last
// ones, which only pass on what the early ones made; the drop points at the layer that
// made it (the MNIST CNN: its first convolution, 144 -> 40 dB, against 40 -> 38 dB for
// the second, whose output has the lowest SQNR). A layer below only exact or unmeasured
// (float) values made all of its error: it comes first. Ties go to the lower SQNR.
func introduced(ix *onnxio.Index, layers []v.Layer) []v.Layer {
	known := make(map[string]float64, len(layers))
	for _, l := range layers {
		known[l.Tensor] = float64(l.SQNRdB)
	}
	drop := make(map[string]float64, len(layers))
	for _, l := range layers {
		drop[l.Tensor] = sqnrDrop(ix, l, known)
	}
	s := append([]v.Layer(nil), layers...)
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
func sqnrDrop(ix *onnxio.Index, l v.Layer, known map[string]float64) float64 {
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

// Package prepare is the `prepare` stage: graph clean-up before calibration and
// quantization.
package prepare

import (
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/pipeline"
	"github.com/onnxpipe/onnxpipe/quantize"
	"reflect"
)

// Stage is the prepare stage.
var Stage = &pipeline.Stage{
	Name: "prepare",
	Doc: `Clean the graph up for calibration and quantization.

Sorts the nodes topologically, raises the opset (rewriting the ops whose signature
changed), turns Constant-node weights into initializers, bypasses Identity nodes on
weights, folds constant subgraphs (evaluated by onnxruntime) and folds BatchNormalization
into the Conv, ConvTranspose or Gemm before it. When a config has calibrate or quantize
but no prepare, the plan adds one with these defaults before the first of them: the
calibration table is tied to the prepared graph.`,
	NewOptions: func() any {
		return &Options{FoldBatchNorm: true, FoldConstants: true, ConstantsToInitializers: true, MinOpset: 13}
	},
	ResultType: reflect.TypeFor[*quantize.PrepareReport](),
	Mutates:    pipeline.Always,
	Run:        run,
}

// Options are the prepare stage's options.
type Options struct {
	// FoldBatchNorm folds BatchNormalization into a preceding Conv, ConvTranspose or Gemm.
	FoldBatchNorm bool `yaml:"fold_batchnorm" json:"fold_batchnorm"`
	// FoldConstants replaces nodes whose inputs are all constants by their values.
	FoldConstants bool `yaml:"fold_constants" json:"fold_constants"`
	// ConstantsToInitializers turns Constant nodes into initializers.
	ConstantsToInitializers bool `yaml:"constants_to_initializers" json:"constants_to_initializers"`
	// MinOpset is the lowest default-domain opset the result imports (per-channel
	// quantization needs 13); 0 leaves the opset alone.
	MinOpset int64 `yaml:"min_opset" json:"min_opset"`
}

func run(p *pipeline.Pass) (any, error) {
	o := p.Options.(*Options)
	m := p.EditModel()
	rep, err := quantize.Prepare(m, quantize.PrepareOptions{
		FoldBatchNorm:           o.FoldBatchNorm,
		FoldConstants:           o.FoldConstants,
		ConstantsToInitializers: o.ConstantsToInitializers,
		MinOpset:                o.MinOpset,
		Eval:                    Eval(p.Runtime()),
	})
	if err != nil {
		return nil, err
	}
	p.Metric("batchnorms_folded", float64(rep.BatchNormsFolded), "")
	p.Metric("constants_folded", float64(rep.ConstantsFolded), "")
	p.Metric("constant_nodes_to_initializers", float64(rep.ConstantsToInitializers), "")
	if rep.OpsetFrom != rep.OpsetTo {
		p.Note("opset raised from %d to %d", rep.OpsetFrom, rep.OpsetTo)
	}
	for _, n := range rep.Notes {
		p.Note("%s", n)
	}
	return rep, nil
}

// Eval returns an evaluator that runs a model without inputs in onnxruntime (CPU, no
// graph optimizations, so the values are computed exactly as the graph says).
func Eval(rt pipeline.Runtime) func(*onnxio.Model) (map[string]*onnxio.Tensor, error) {
	return func(m *onnxio.Model) (map[string]*onnxio.Tensor, error) {
		data, err := m.Bytes()
		if err != nil {
			return nil, err
		}
		s, err := ort.NewSession(data, ort.Options{Threads: rt.Threads, Optimization: "none"})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Run(map[string]*onnxio.Tensor{})
	}
}

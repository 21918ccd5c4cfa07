// Package results holds the values stages hand each other through the plan: the result
// types one stage declares (Stage.ResultType) and a later one requires
// (pipeline.Requirement), and the requests a reader makes of them. Stage packages import
// this package, never each other.
package results

import (
	"context"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/quantize"
	"github.com/onnxpipe/onnxpipe/report"
)

// Calibration is the calibrate stage's result: the table of ranges, and the dataset it
// was measured on (quantize checks its result on a few of those samples).
type Calibration struct {
	Table *calibrate.Table
	// Dataset names the config's dataset the table was measured on.
	Dataset string
}

// RangeRequest is what a stage that reads the calibration table asks of the calibrate
// stage before it: the values whose ranges it reads on a graph, and the aliases among
// them (quantize.CalibrationTensorsFor with the reader's options). The calibrate stage
// measures just those.
type RangeRequest func(m *onnxio.Model) (tensors []string, aliases map[string]string, err error)

// JudgedLater is the request of a stage that judges the quantization itself and may
// requantize it (verify's auto_exclude): quantize then reports a result under its
// min_sqnr_db floor as a warning and leaves the verdict to that stage.
type JudgedLater struct{}

// Quantization is the quantize stage's result: what it quantized and how onnxruntime
// fused it.
type Quantization struct {
	*quantize.Result
	// SampleSQNR is the SQNR of each float output against the float model on the check
	// samples (empty when the stage ran none).
	SampleSQNR map[string]report.Float `json:"sample_sqnr_db,omitempty"`
	// Fusion says which quantized nodes onnxruntime runs as integer kernels (nil in mode
	// dynamic before the model is opened).
	Fusion *quantize.Fusion `json:"fusion,omitempty"`
	// Exclude are the nodes the stage kept in float by its options (exclude_nodes).
	Exclude []string `json:"-"`
	// Requantize quantizes m (the model the stage quantized) again with the stage's
	// options and calibration, with the nodes in exclude also kept in float, and checks
	// the result as the stage did: verify's auto_exclude retries with it.
	Requantize func(ctx context.Context, m *onnxio.Model, exclude []string) (*onnxio.Model, *Quantization, error) `json:"-"`
}

// ReportData is what the report shows of it.
func (r *Quantization) ReportData() any { return r }

// NodesQuantized counts the nodes quantized.
func (r *Quantization) NodesQuantized() int {
	n := 0
	if r.Result != nil {
		for _, k := range r.Quantized {
			n += k
		}
	}
	return n
}

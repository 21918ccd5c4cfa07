package verify

import (
	"fmt"
	"sort"
	"strings"

	"github.com/x448/float16"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// Conversion is one element-type conversion a verification made: float data converted to
// the float type a model's input declares (a float16 model with float16 inputs fed
// float32 data), or a float output of another type read as float32 for the metrics.
// Only float types (float, double, float16, bfloat16) are converted, among themselves.
type Conversion struct {
	// Model is reference or candidate.
	Model string `json:"model"`
	// Kind is input or output.
	Kind string `json:"kind"`
	// Name is the input's or output's name.
	Name string `json:"name"`
	// From is the data's element type (an output's type in the model) and To the type it
	// was converted to (the model's input type, or float for an output's metrics).
	From onnxio.DataType `json:"from"`
	To   onnxio.DataType `json:"to"`
}

// String is "candidate input "x": float -> float16".
func (c Conversion) String() string {
	return fmt.Sprintf("%s %s %q: %s -> %s", c.Model, c.Kind, c.Name, c.From, c.To)
}

// ConversionsNote says in one line which conversions were made ("" when none).
func ConversionsNote(cs []Conversion) string {
	if len(cs) == 0 {
		return ""
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return "element types converted (float types only; outputs for the metrics, which are computed in float32): " + strings.Join(parts, "; ")
}

// Feeder converts dataset batches to the element types one model's inputs declare: float
// data to another float type where the model wants one (float32 data for a float16
// input); any other mismatch is an error naming the input and both types. It records
// each conversion it made once.
type Feeder struct {
	model string
	types map[string]onnxio.DataType
	done  map[string]bool
	convs []Conversion
}

// NewFeeder makes the feeder of a model ("reference" or "candidate" in messages) with
// these inputs (an onnxruntime session's Inputs).
func NewFeeder(model string, inputs []ort.ValueInfo) *Feeder {
	f := &Feeder{model: model, types: map[string]onnxio.DataType{}, done: map[string]bool{}}
	for _, in := range inputs {
		f.types[in.Name] = in.Type
	}
	return f
}

// Feed returns the inputs converted to the model's types; tensors that already have
// their input's type (or feed no declared input, which the session reports) are passed
// as they are.
func (f *Feeder) Feed(inputs map[string]*onnxio.Tensor) (map[string]*onnxio.Tensor, error) {
	var out map[string]*onnxio.Tensor
	for name, t := range inputs {
		want, ok := f.types[name]
		if !ok || t == nil || t.Type == want || want == onnxio.TypeUndefined {
			continue
		}
		if !t.Type.IsFloat() || !want.IsFloat() {
			return nil, fmt.Errorf("input %q: the %s wants %s but the data is %s; only float types (float, double, float16, bfloat16) are converted into each other: give %s data", name, f.model, want, t.Type, want)
		}
		c, err := ConvertFloat(t, want)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		if out == nil {
			out = make(map[string]*onnxio.Tensor, len(inputs))
			for k, v := range inputs {
				out[k] = v
			}
		}
		out[name] = c
		f.note("input", name, t.Type, want)
	}
	if out == nil {
		return inputs, nil
	}
	return out, nil
}

// Output records that output name, of type from, is read as float32 for the metrics
// (nothing is recorded for float32 and non-float outputs).
func (f *Feeder) Output(name string, from onnxio.DataType) {
	if from != onnxio.TypeFloat && from.IsFloat() {
		f.note("output", name, from, onnxio.TypeFloat)
	}
}

func (f *Feeder) note(kind, name string, from, to onnxio.DataType) {
	key := kind + "\x00" + name
	if f.done[key] {
		return
	}
	f.done[key] = true
	f.convs = append(f.convs, Conversion{Model: f.model, Kind: kind, Name: name, From: from, To: to})
}

// Conversions returns the conversions made so far, inputs first, each sorted by name.
func (f *Feeder) Conversions() []Conversion {
	cs := append([]Conversion(nil), f.convs...)
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Kind != cs[j].Kind {
			return cs[i].Kind == "input"
		}
		return cs[i].Name < cs[j].Name
	})
	return cs
}

// ConvertFloat converts a tensor of a float type (float, double, float16, bfloat16) to
// another float type, rounding to nearest even where the target is narrower (double
// data bound for float16 or bfloat16 is rounded to float32 first).
func ConvertFloat(t *onnxio.Tensor, to onnxio.DataType) (*onnxio.Tensor, error) {
	if !t.Type.IsFloat() || !to.IsFloat() {
		return nil, fmt.Errorf("cannot convert %s data to %s: only float types convert", t.Type, to)
	}
	if t.Type == to {
		return t, nil
	}
	shape := append([]int64(nil), t.Shape...)
	if to == onnxio.TypeDouble {
		var d []float64
		switch s := t.Data.(type) {
		case []float32:
			d = convertSlice(s, func(v float32) float64 { return float64(v) })
		case []float16.Float16:
			d = convertSlice(s, func(v float16.Float16) float64 { return float64(v.Float32()) })
		case []onnxio.BFloat16:
			d = convertSlice(s, func(v onnxio.BFloat16) float64 { return float64(v.Float32()) })
		default:
			return nil, fmt.Errorf("a %s tensor holds %T", t.Type, t.Data)
		}
		return onnxio.NewTensor(shape, d), nil
	}
	src, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	switch to {
	case onnxio.TypeFloat:
		return onnxio.NewTensor(shape, src), nil
	case onnxio.TypeFloat16:
		return onnxio.NewTensor(shape, convertSlice(src, float16.Fromfloat32)), nil
	case onnxio.TypeBFloat16:
		return onnxio.NewTensor(shape, convertSlice(src, onnxio.BFloat16FromFloat32)), nil
	}
	return nil, fmt.Errorf("cannot convert to %s", to)
}

func convertSlice[S, D any](s []S, f func(S) D) []D {
	d := make([]D, len(s))
	for i, v := range s {
		d[i] = f(v)
	}
	return d
}

// DataInputs returns the inputs to open spec's dataset with when it feeds ref and cand
// (Run feeds each model the element types it declares through a Feeder). They are ref's
// inputs, except where ref declares a float input other than float32 (a float16 model
// with keep_io_types: false): files (npy, npz, pb) are then read at their own type
// and converted for each model, and generated data (idx, images, random) for a float16
// or bfloat16 input is made in float32, so that a float32 model compared with it does
// not get data rounded to 16 bits.
func DataInputs(spec *dataset.Spec, ref *onnxio.Model) []dataset.InputInfo {
	ins := dataset.InputsOf(ref)
	for i, in := range ins {
		if !in.Type.IsFloat() || in.Type == onnxio.TypeFloat {
			continue
		}
		switch spec.Format {
		case "npy", "npz", "pb":
			ins[i].Type = onnxio.TypeUndefined
		default:
			if in.Type != onnxio.TypeDouble {
				ins[i].Type = onnxio.TypeFloat
			}
		}
	}
	return ins
}

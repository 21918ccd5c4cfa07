package pipeline

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/verify"
)

// DataUse is a dataset the job's plan reads, with the entries that read it.
type DataUse struct {
	Name string
	// By names the entries that read it: "verify, stage 3".
	By []string
}

// DataUses lists the datasets the job's entries read (their options tagged
// `onnxpipe:"dataset"`), in the order of their first reader.
func (j *Job) DataUses() []DataUse {
	var out []DataUse
	for _, e := range j.Entries {
		walkTagged(reflect.ValueOf(e.Options), func(tag string, v reflect.Value, field string) {
			if tag != "dataset" || v.String() == "" {
				return
			}
			by := fmt.Sprintf("%s, stage %d", e.Stage.Name, e.Index+1)
			i := slices.IndexFunc(out, func(u DataUse) bool { return u.Name == v.String() })
			if i < 0 {
				out = append(out, DataUse{Name: v.String()})
				i = len(out) - 1
			}
			if !slices.Contains(out[i].By, by) {
				out[i].By = append(out[i].By, by)
			}
		})
	}
	return out
}

// checkData opens every dataset the job's plan reads for the model m (the job's input),
// with dataset.Open's checks: every model input has data and every dataset input names a
// model input, element types and sample shapes match the model's, and the inputs and
// labels hold the same number of samples. It reads file headers and labels, no sample
// data. The inputs are those verify feeds (verify.DataInputs: a float16, bfloat16 or
// double input accepts the data's own float type, which the stages convert), so that
// the check never refuses what a stage accepts; each stage still opens its data with its
// own model's inputs. It returns one error per dataset that fails (nil when all pass).
// The datasets stay open for the stages (the job closes them).
func (j *Job) checkData(m *onnxio.Model) []error {
	var errs []error
	for _, u := range j.DataUses() {
		spec, err := j.Dataset(u.Name)
		if err == nil {
			_, err = j.dataset(u.Name, verify.DataInputs(spec, m))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dataset %q (read by %s): %w", u.Name, strings.Join(u.By, "; "), err))
		}
	}
	return errs
}

// CheckData loads the job's model and checks every dataset its plan reads against the
// model's inputs, as a run does before the job's first stage (`onnxpipe validate
// --deep`); it runs no stage and needs no onnxruntime. Each error is one problem: the
// model that cannot be loaded, or a dataset (naming it, its file or input, and what is
// wrong).
func (j *Job) CheckData() []error {
	defer j.closeDatasets()
	m, err := onnxio.Load(j.ModelPath)
	if err != nil {
		return []error{err}
	}
	return j.checkData(m)
}

// dataErr is the error that fails a job whose data checkData refused: the first problem,
// on one line, with the count of the others (validate --deep lists them all).
func dataErr(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("bad data, found before the first stage: %w", errs[0])
	}
	return fmt.Errorf("bad data, found before the first stage: %w (and %d more problem(s): onnxpipe validate --deep lists them)", errs[0], len(errs)-1)
}

package cli

import (
	"fmt"

	"github.com/onnxpipe/onnxpipe/pipeline"
)

// checkData is `validate --deep`: every job's model is loaded and every dataset its plan
// reads is checked against the model's inputs (names, element types, sample shapes,
// sample and label counts), the checks a run makes before each job's first stage. It
// prints one line per problem, naming the model and the dataset, and returns exit status 1
// when there is any: what a run would fail the job for.
func checkData(g *globals, jobs []*pipeline.Job) error {
	problems := 0
	for _, j := range jobs {
		for _, err := range j.CheckData() {
			fmt.Fprintf(g.stderr, "%s: %v\n", j.ModelPath, err)
			problems++
		}
	}
	if problems > 0 {
		return exit(ExitFailed, fmt.Errorf("data check: %d problem(s)", problems))
	}
	fmt.Fprintf(g.stdout, "data: ok (%d model(s) and the datasets their stages read)\n", len(jobs))
	return nil
}

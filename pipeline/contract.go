package pipeline

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// contractGuard checks that stages keep the contract: every result has the stage's
// ResultType; and, in test binaries (where it costs a hash of the model around each
// stage), that a stage that does not declare Mutates leaves the current model as it
// was, and that no stage edits the input model. A breach is a programming error: the
// job fails with an internal error naming the stage.
type contractGuard struct {
	j                  *Job
	deep               bool
	inputSum, modelSum [sha256.Size]byte
}

func newContractGuard(j *Job) *contractGuard {
	g := &contractGuard{j: j, deep: testing.Testing()}
	if g.deep {
		g.inputSum = modelSum(j.input)
	}
	return g
}

// before notes the model a stage starts from.
func (g *contractGuard) before(p *Pass) {
	if g.deep && !p.mutates {
		g.modelSum = modelSum(g.j.model)
	}
}

// after checks what the stage returned and what it did to the models.
func (g *contractGuard) after(p *Pass, result any) error {
	want := p.Stage.ResultType
	switch got := reflect.TypeOf(result); {
	case want == nil && result != nil:
		return fmt.Errorf("internal error (please report it): stage %s returned a %v but declares no result", p.Stage.Name, got)
	case want != nil && got != want:
		return fmt.Errorf("internal error (please report it): stage %s returned %v, it declares %v", p.Stage.Name, got, want)
	}
	if !g.deep {
		return nil
	}
	if !p.mutates && (g.j.model != nil && modelSum(g.j.model) != g.modelSum) {
		return fmt.Errorf("internal error (please report it): stage %s changed the model but does not declare Mutates", p.Stage.Name)
	}
	if modelSum(g.j.input) != g.inputSum {
		return fmt.Errorf("internal error (please report it): stage %s edited the input model", p.Stage.Name)
	}
	return nil
}

// modelSum hashes the model's deterministic serialization.
func modelSum(m *onnxio.Model) [sha256.Size]byte {
	if m == nil {
		return [sha256.Size]byte{}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256(b)
}

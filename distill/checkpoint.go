package distill

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/train"
)

const checkpointVersion = 1

// checkpoint is everything needed to go on with a run after an interruption: written
// atomically after each epoch.
type checkpoint struct {
	Version int
	// Key identifies the run: models, data and configuration. A checkpoint with another
	// key is not resumed.
	Key string
	// Generation (0-based) and Epoch (epochs completed in it).
	Generation, Epoch int
	Params, State     map[string][]float32 // student, adapters (a<i>/), online teacher (t/)
	Opt, TeacherOpt   train.OptimizerState
	ScaleOpt          train.OptimizerState
	Initial           *Epoch // validation before training
	// Best is the best epoch so far in this generation, with its parameters.
	Best                  *Epoch
	BestParams, BestState map[string][]float32
	History               []Epoch
	Generations           []Generation
	LastModel             []byte // the last finished generation's student (self mode: the next teacher)
	LastTeacher           []byte // online mode, once the run is finished: the trained teacher
}

func loadCheckpoint(path string) (*checkpoint, error) {
	b, err := regular.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&c); err != nil {
		return nil, fmt.Errorf("checkpoint %s is unreadable (%v): delete it to start over", path, err)
	}
	if c.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint %s has version %d, this build writes %d: delete it to start over", path, c.Version, checkpointVersion)
	}
	return &c, nil
}

func (c *checkpoint) save(path string) error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(c); err != nil {
		return err
	}
	return onnxio.WriteFileAtomic(path, b.Bytes())
}

// snapshot copies the values of every trained tensor of the trainer.
func (t *trainer) snapshot() (params, state map[string][]float32) {
	params, state = map[string][]float32{}, map[string][]float32{}
	put := func(prefix string, g *train.Graph) {
		for _, p := range g.Params() {
			params[prefix+p.Name] = append([]float32(nil), p.Value.Data...)
		}
		for name, s := range g.State() {
			state[prefix+name] = append([]float32(nil), s.Data...)
		}
	}
	put("", t.student)
	for i, a := range t.adapters {
		put(fmt.Sprintf("a%d/", i), a.g)
	}
	if t.teacher != nil {
		put("t/", t.teacher)
	}
	return params, state
}

// restore puts values that snapshot took back into the trainer's graphs.
func (t *trainer) restore(params, state map[string][]float32) error {
	get := func(prefix string, g *train.Graph) error {
		for _, p := range g.Params() {
			v, ok := params[prefix+p.Name]
			if !ok || len(v) != len(p.Value.Data) {
				return fmt.Errorf("checkpoint has no values of the right size for %s%s", prefix, p.Name)
			}
			copy(p.Value.Data, v)
		}
		for name, s := range g.State() {
			v, ok := state[prefix+name]
			if !ok || len(v) != len(s.Data) {
				return fmt.Errorf("checkpoint has no values of the right size for %s%s", prefix, name)
			}
			copy(s.Data, v)
		}
		return nil
	}
	if err := get("", t.student); err != nil {
		return err
	}
	for i, a := range t.adapters {
		if err := get(fmt.Sprintf("a%d/", i), a.g); err != nil {
			return err
		}
	}
	if t.teacher != nil {
		return get("t/", t.teacher)
	}
	return nil
}

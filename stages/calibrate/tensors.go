package calibrate

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// TensorSelection is the tensors option: `all` (every float activation, as coverage:
// all) or a list of tensor names; empty, coverage decides.
type TensorSelection struct {
	All   bool
	Names []string
}

// UnmarshalYAML accepts the scalar all or a list of names.
func (s *TensorSelection) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "all" {
			*s = TensorSelection{All: true}
			return nil
		}
		return fmt.Errorf("tensors: %q: write all, or a list of tensor names", n.Value)
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return fmt.Errorf("tensors: %v", err)
		}
		*s = TensorSelection{Names: names}
		return nil
	}
	return fmt.Errorf("tensors: write all, or a list of tensor names")
}

// MarshalJSON writes "all" or the list, as the option is written.
func (s TensorSelection) MarshalJSON() ([]byte, error) {
	if s.All {
		return json.Marshal("all")
	}
	if s.Names == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(s.Names)
}

// OptionType names the option's type in `onnxpipe stages`.
func (TensorSelection) OptionType() string { return "all, or list of string" }

package yamlx

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Test types shaped like an onnxpipe config.

type QConfig struct {
	Name     string              `yaml:"name"`
	Version  int                 `yaml:"version,omitempty"`
	Runtime  *QRuntime           `yaml:"runtime"`
	Datasets map[string]QDataset `yaml:"datasets"`
	Stages   []QStage            `yaml:"stages"`
	Tags     []string            `yaml:"tags,flow"`
	Extra    any                 `yaml:"extra"`
	Secret   string              `yaml:"-"`
	QMeta    `yaml:",inline"`
	Shape    [2]int             `yaml:"shape"`
	Timeout  time.Duration      `yaml:"timeout"`
	Custom   QCustom            `yaml:"custom"`
	Raw      yaml.Node          `yaml:"raw"`
	Plugins  []QPlugin          `yaml:"plugins"`
	Limits   map[int]float64    `yaml:"limits"`
	Env      map[string]*string `yaml:"env"`
	//lint:ignore U1000 an unexported field the decoder must skip (check_test: "private" is an unknown field)
	private int
}

type QMeta struct {
	Owner  string            `yaml:"owner"`
	Labels map[string]string `yaml:"labels"`
}

type QRuntime struct {
	Threads       int     // untagged: "threads"
	Device        string  `yaml:"device"`
	Deterministic bool    `yaml:"deterministic,omitempty"`
	Seed          *uint64 `yaml:"seed"`
}

type QDataset struct {
	Path    string `yaml:"path"`
	Limit   uint   `yaml:"limit"`
	Shuffle *bool  `yaml:"shuffle"`
	Norm    *QNorm `yaml:"normalize"`
}

type QNorm struct {
	Mean []float64 `yaml:"mean"`
	Std  []float64 `yaml:"std"`
}

type QStage struct {
	Quantize *QQuantize `yaml:"quantize"`
	Verify   *QVerify   `yaml:"verify"`
}

type QQuantize struct {
	Mode        string `yaml:"mode"`
	PerChannel  bool   `yaml:"per_channel"`
	Calibration QCalib `yaml:"calibration"`
}

type QCalib struct {
	Method     string  `yaml:"method"`
	Percentile float64 `yaml:"percentile"`
	Samples    int     `yaml:"samples"`
}

type QVerify struct {
	Tolerance float64  `yaml:"tolerance"`
	Metrics   []string `yaml:"metrics"`
}

type QPlugin struct {
	Kind   string         `yaml:"kind"`
	Params map[string]int `yaml:",inline"`
}

// QCustom validates itself: Check must accept anything for it.
type QCustom struct{ kind yaml.Kind }

func (c *QCustom) UnmarshalYAML(n *yaml.Node) error { c.kind = n.Kind; return nil }

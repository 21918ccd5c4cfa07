package badinput

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/onnxpipe/onnxpipe/internal/testutil"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

// Kinds of cases.
const (
	KindModel       = "model"       // the model file as a whole
	KindNode        = "node"        // one node of a fixture
	KindInitializer = "initializer" // one initializer of a fixture
	KindBuilt       = "built"       // a small model made with onnxio.Builder
	KindDataset     = "dataset"     // a dataset file or spec
	KindConfig      = "config"      // the config file
)

// Case is one bad input: a folder with a model, datasets and a config.
type Case struct {
	// Name is short and unique: fixture/what/how ("mnist/n3/drop-inputs").
	Name string
	Kind string
	// Fixture is the fixture the case starts from (its inputs and outputs are the data).
	Fixture string
	// Mentions are the names an error must contain at least one of: the file, node,
	// tensor or key involved.
	Mentions []string
	// MustFail says that no run of this input can be correct: a job that ends "ok" is a
	// silent wrong result.
	MustFail bool
	// Unchanged says the model computes what the fixture computes: when the job ends
	// ok, the artifact must agree with the fixture's reference outputs.
	Unchanged bool
	fixture   *Fixture
	// edit changes the fixture's workspace into the case.
	edit func(w *Workspace) error
}

// Workspace is what a case writes into its folder: model.onnx, calib.npy, eval.npy,
// labels.npy and c.yaml, each replaceable.
type Workspace struct {
	fx *Fixture
	// Model is written to ModelFile unless ModelBytes is set.
	Model      *onnxpb.ModelProto
	ModelBytes []byte
	ModelFile  string // relative to the folder; "" writes no model
	// Calib and Eval are the two datasets' input arrays (calib.npy, eval.npy) and Labels
	// the eval dataset's labels (labels.npy); nil writes nothing.
	Calib, Eval, Labels *onnxio.Tensor
	// Files are more files to write (relative path -> bytes), after the ones above (so
	// they may replace them); Dirs and FIFOs are folders and named pipes to make.
	Files map[string][]byte
	Dirs  []string
	FIFOs []string
	// Links are symbolic links to make (relative path -> target).
	Links map[string]string
	// Config is rendered to c.yaml unless RawConfig is set.
	Config    Config
	RawConfig *string
	// Sets are --set overrides passed to pipeline.Load.
	Sets []string
	// Mutable are files of the folder a run may rewrite (a calibration cache it
	// replaces); every other file that was there before the run must be unchanged.
	Mutable []string
}

// Config is the config file, as YAML fragments.
type Config struct {
	Model, Output, Report string
	Runtime               string
	// Datasets are the entries of datasets:, in order: name and flow mapping.
	Datasets []Dataset
	// Stages are the entries of stages:, in order (YAML text after "- ").
	Stages []string
	// Extra is appended verbatim.
	Extra string
}

// Dataset is one named dataset of a Config.
type Dataset struct{ Name, Spec string }

// SetDataset replaces (or adds) the named dataset's spec.
func (c *Config) SetDataset(name, spec string) {
	for i := range c.Datasets {
		if c.Datasets[i].Name == name {
			c.Datasets[i].Spec = spec
			return
		}
	}
	c.Datasets = append(c.Datasets, Dataset{name, spec})
}

// Render is the config's YAML text.
func (c *Config) Render() string {
	var b strings.Builder
	if c.Model != "" {
		fmt.Fprintf(&b, "model: %s\n", c.Model)
	}
	if c.Output != "" {
		fmt.Fprintf(&b, "output: %s\n", c.Output)
	}
	if c.Report != "" {
		fmt.Fprintf(&b, "report: %s\n", c.Report)
	}
	if c.Runtime != "" {
		fmt.Fprintf(&b, "runtime: %s\n", c.Runtime)
	}
	if len(c.Datasets) > 0 {
		b.WriteString("datasets:\n")
		for _, d := range c.Datasets {
			fmt.Fprintf(&b, "  %s: %s\n", d.Name, d.Spec)
		}
	}
	if len(c.Stages) > 0 {
		b.WriteString("stages:\n")
		for _, s := range c.Stages {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	b.WriteString(c.Extra)
	return b.String()
}

// The default chain's stages, by position in Config.Stages.
const (
	stPrepare = iota
	stCalibrate
	stQuantize
	stVerify
)

// Verify thresholds of the default chain: int8 versions of the fixtures are far above
// them; a wrong result is far below.
const defaultVerify = "verify: {dataset: eval, latency: {runs: 0}, thresholds: {sqnr_db: 12, top1_agreement: 0.75}}"

// DefaultConfig is the chain every case starts from.
func DefaultConfig() Config {
	return Config{
		Model:   "model.onnx",
		Output:  "out/{name}.int8.onnx",
		Runtime: "{threads: 1}",
		Datasets: []Dataset{
			{"calib", "{format: npy, inputs: {input: calib.npy}}"},
			{"eval", "{format: npy, inputs: {input: eval.npy}, labels: labels.npy}"},
		},
		Stages: []string{"prepare", "calibrate: {dataset: calib}", "quantize: {mode: static}", defaultVerify},
	}
}

// Written is a case's folder, made by Write.
type Written struct {
	Config string   // the config's path
	Sets   []string // the --set overrides
	// Mutable are the files a run may rewrite (absolute paths).
	Mutable []string
}

// Write makes the case's folder in dir.
func (c *Case) Write(dir string) (*Written, error) {
	w := c.workspace()
	if err := c.edit(w); err != nil {
		return nil, fmt.Errorf("case %s: %w", c.Name, err)
	}
	config, err := w.write(dir)
	if err != nil {
		return nil, err
	}
	out := &Written{Config: config, Sets: w.Sets}
	for _, m := range w.Mutable {
		out.Mutable = append(out.Mutable, filepath.Join(dir, m))
	}
	return out, nil
}

func (c *Case) workspace() *Workspace {
	fx := c.fx()
	return &Workspace{
		fx:        fx,
		Model:     proto.Clone(fx.Model).(*onnxpb.ModelProto),
		ModelFile: "model.onnx",
		Calib:     fx.Input,
		Eval:      fx.Input,
		Labels:    fx.Labels,
		Files:     map[string][]byte{},
		Links:     map[string]string{},
		Config:    DefaultConfig(),
	}
}

func (c *Case) fx() *Fixture { return c.fixture }

func (w *Workspace) write(dir string) (string, error) {
	put := func(rel string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	if w.ModelFile != "" {
		data := w.ModelBytes
		if data == nil {
			var err error
			if data, err = marshal(w.Model); err != nil {
				return "", err
			}
		}
		if err := put(w.ModelFile, data); err != nil {
			return "", err
		}
	}
	for name, t := range map[string]*onnxio.Tensor{"calib.npy": w.Calib, "eval.npy": w.Eval, "labels.npy": w.Labels} {
		if t == nil {
			continue
		}
		data, err := testutil.NPY(t)
		if err != nil {
			return "", err
		}
		if err := put(name, data); err != nil {
			return "", err
		}
	}
	for rel, data := range w.Files {
		if err := put(rel, data); err != nil {
			return "", err
		}
	}
	for _, rel := range w.Dirs {
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			return "", err
		}
	}
	for _, rel := range w.FIFOs {
		p := filepath.Join(dir, rel)
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			return "", err
		}
	}
	for rel, target := range w.Links {
		p := filepath.Join(dir, rel)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return "", err
		}
	}
	text := w.Config.Render()
	if w.RawConfig != nil {
		text = *w.RawConfig
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

func marshal(mp *onnxpb.ModelProto) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(mp)
}

// float32Bytes is v little-endian.
func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

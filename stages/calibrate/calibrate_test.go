package calibrate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/internal/cli"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

// config calibrates the residual-net fixture on its 4 samples (cached in cache), then
// runs the stages after it.
const config = `model: %s
output: out/{name}.onnx
datasets:
  x: {format: npy, inputs: {input: %s}, batch: 4}
stages:
  - calibrate: {dataset: x, cache: %s}
%s`

type stageReport struct {
	Stages []struct {
		Stage   string `json:"stage"`
		Status  string `json:"status"`
		Notes   []string
		Metrics []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"metrics"`
	} `json:"stages"`
}

// run runs the chain and returns the calibrate stage's metrics and notes, and the table.
func run(t *testing.T, work, cache, after string) (map[string]float64, string, *calibrate.Table) {
	t.Helper()
	model, _ := filepath.Abs("../../testdata/models/resnet_small.onnx")
	data, _ := filepath.Abs("../../testdata/models/resnet_small.input.npy")
	path := filepath.Join(work, "c.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(config, model, data, cache, after)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"run", path, "--force"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(work, "out", "resnet_small.report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep stageReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]float64{}
	notes := ""
	for _, s := range rep.Stages {
		if s.Stage != "calibrate" {
			continue
		}
		for _, m := range s.Metrics {
			metrics[m.Name] = m.Value
		}
		notes = strings.Join(s.Notes, "\n")
	}
	tab, err := calibrate.LoadTable(cache)
	if err != nil {
		t.Fatal(err)
	}
	return metrics, notes, tab
}

// The calibrate stage measures what the quantize stage after it reads with its options:
// with the default (asymmetric uint8, cpu) the Conv and Add outputs that a Relu folds
// into are left out; symmetric activations fold nothing, so they are measured. A cached
// table serves a later run that needs no more than it holds, and is remade otherwise.
func TestMeasuresWhatTheNextQuantizeReads(t *testing.T) {
	work := t.TempDir()
	cache := filepath.Join(work, "calib.json")
	folded, _, tab := run(t, work, cache, "  - quantize: {mode: static}\n")
	if folded["cache_hit"] != 0 {
		t.Fatalf("first run hit the cache")
	}
	symmetric, notes, tab2 := run(t, work, cache, "  - quantize: {mode: static, activation_type: int8, activation_symmetric: true}\n")
	if symmetric["cache_hit"] != 0 || !strings.Contains(notes, "recalibrating") {
		t.Errorf("symmetric activations need the Conv outputs: the folded table must not be reused (notes %q)", notes)
	}
	if !(folded["tensors_measured"] < symmetric["tensors_measured"]) {
		t.Errorf("tensors measured: folded %v, symmetric %v: want fewer when quantize folds Relu", folded["tensors_measured"], symmetric["tensors_measured"])
	}
	if len(tab.Tensors) >= len(tab2.Tensors) {
		t.Errorf("table sizes: folded %d, symmetric %d", len(tab.Tensors), len(tab2.Tensors))
	}
	// The symmetric table holds everything the folding quantize reads: a hit.
	again, notes, _ := run(t, work, cache, "  - quantize: {mode: static}\n")
	if again["cache_hit"] != 1 {
		t.Errorf("the symmetric table covers the default quantize: want a cache hit (notes %q)", notes)
	}
	// No quantize after calibrate: what quantize reads under any options (more again).
	anyOpts, _, _ := run(t, work, filepath.Join(work, "any.json"), "")
	t.Logf("values measured: %v folded, %v symmetric, %v for any options", folded["tensors_measured"], symmetric["tensors_measured"], anyOpts["tensors_measured"])
	if anyOpts["tensors_measured"] < symmetric["tensors_measured"] {
		t.Errorf("tensors measured for any options %v < for symmetric activations %v", anyOpts["tensors_measured"], symmetric["tensors_measured"])
	}
}

// tensors: all measures every float activation, as coverage: all does (the contract's
// spelling); a list measures those; any other scalar is a config error naming the line.
func TestTensorsOption(t *testing.T) {
	work := t.TempDir()
	model, _ := filepath.Abs("../../testdata/models/resnet_small.onnx")
	data, _ := filepath.Abs("../../testdata/models/resnet_small.input.npy")
	measured := func(option string) (float64, string) {
		path := filepath.Join(work, "c2.yaml")
		cfg := fmt.Sprintf("model: %s\noutput: out2/{name}.onnx\ndatasets:\n  x: {format: npy, inputs: {input: %s}, batch: 4}\nstages:\n  - calibrate:\n      dataset: x\n      %s\n", model, data, option)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := cli.Main([]string{"run", path, "--force"}, &stdout, &stderr); code != 0 {
			return -1, stderr.String()
		}
		raw, err := os.ReadFile(filepath.Join(work, "out2", "resnet_small.report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep stageReport
		if err := json.Unmarshal(raw, &rep); err != nil {
			t.Fatal(err)
		}
		for _, m := range rep.Stages[len(rep.Stages)-1].Metrics {
			if m.Name == "tensors_measured" {
				return m.Value, ""
			}
		}
		return -1, "no tensors_measured"
	}
	every, msg := measured("coverage: all")
	if every < 20 {
		t.Fatalf("coverage: all measured %v (%s)", every, msg)
	}
	if n, msg := measured("tensors: all"); n != every {
		t.Errorf("tensors: all measured %v (%s); coverage: all measures %v", n, msg, every)
	}
	if n, msg := measured("tensors: [input, /stem/stem.2/Relu_output_0]"); n != 2 {
		t.Errorf("a list of two measured %v (%s)", n, msg)
	}
	if n, msg := measured("tensors: some"); n != -1 || !strings.Contains(msg, "c2.yaml:7") || !strings.Contains(msg, `"some"`) {
		t.Errorf("tensors: some: %v, %q; want a config error naming the line", n, msg)
	}
}

package corpus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/onnxpipe/onnxpipe/report"
)

// Variant is one way the corpus check converts every model.
type Variant struct {
	Name   string
	Stages string // the config's stages, YAML
}

// verifyStage is the verify every variant ends with; %s is the model's extra options.
const verifyStage = `  - verify:
      dataset: eval
      latency: {warmup: 3, runs: 20, batch: [1]}%s
`

// Variants are the conversions the table compares, each against the float model.
var Variants = []Variant{
	{"int8 minmax", "  - prepare\n  - calibrate: {dataset: calib, method: minmax}\n  - quantize: {mode: static}\n"},
	{"int8 percentile", "  - prepare\n  - calibrate: {dataset: calib, method: percentile}\n  - quantize: {mode: static}\n"},
	{"int8 entropy", "  - prepare\n  - calibrate: {dataset: calib, method: entropy}\n  - quantize: {mode: static}\n"},
	{"int8 dynamic", "  - prepare\n  - quantize: {mode: dynamic}\n"},
	{"float16", "  - prepare\n  - float16\n"},
}

// verifyExtra are verify options a model's task needs: PaddleOCR binarizes its text
// mask at 0.3 (its db_thresh).
var verifyExtra = map[string]string{
	"ocr_det": "\n      tasks: {sigmoid_0.tmp_0: {threshold: 0.3}}",
}

// batchOf is the dataset batch of a model: 1 where the model's batch axis is fixed at 1.
func batchOf(shape []int64) int {
	if len(shape) > 0 && shape[0] == 1 {
		return 1
	}
	return 8
}

// slug is a variant's name in file names.
func slug(v string) string { return strings.ReplaceAll(v, " ", "-") }

// Result is one model through one variant.
type Result struct {
	Model   string                  `json:"model"`
	Variant string                  `json:"variant"`
	Status  string                  `json:"status"` // the job's status, or "not run"
	Reason  string                  `json:"reason,omitempty"`
	Exit    int                     `json:"exit"`
	Seconds float64                 `json:"seconds"`
	Metrics map[string]report.Float `json:"metrics,omitempty"` // verify's and quantize's
	Key     string                  `json:"key,omitempty"`     // the task metric's name
}

// WriteConfig writes the config of model e through variant v into dir/runs and returns
// its path.
func WriteConfig(dir string, e Entry, v Variant) (string, error) {
	dir, err := filepath.Abs(dir) // the config's paths would resolve against its folder
	if err != nil {
		return "", err
	}
	model := filepath.Join(dir, "models", e.Name+".onnx")
	name, shape, err := firstInput(model)
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data", e.Name)
	labels := ""
	if _, err := os.Stat(filepath.Join(data, "eval", "labels.npy")); err == nil {
		labels = fmt.Sprintf(", labels: %s", filepath.Join(data, "eval", "labels.npy"))
	}
	b := batchOf(shape)
	cfg := fmt.Sprintf(`# %s through %s (written by cmd/corpus)
model: %s
output: %s
report: %s
datasets:
  calib: {format: npy, inputs: {%q: %s}, batch: %d}
  eval: {format: npy, inputs: {%q: %s}%s, batch: %d}
stages:
%s`+verifyStage,
		e.Name, v.Name, model,
		filepath.Join(dir, "out", slug(v.Name), "{name}.onnx"),
		filepath.Join(dir, "out", slug(v.Name), "{name}"),
		name, filepath.Join(data, "calib", name+".npy"), b,
		name, filepath.Join(data, "eval", name+".npy"), labels, b,
		v.Stages, verifyExtra[e.Name])
	path := filepath.Join(dir, "runs", slug(v.Name), e.Name+".yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// Run runs model e through variant v with the onnxpipe binary bin, at most timeout, and
// reads the job's report.
func Run(ctx context.Context, bin, dir string, e Entry, v Variant, timeout time.Duration) Result {
	r := Result{Model: e.Name, Variant: v.Name, Status: "not run"}
	if why := Unfed(e.Inputs); why != "" {
		r.Reason = why
		return r
	}
	cfg, err := WriteConfig(dir, e, v)
	if err != nil {
		r.Reason = err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "run", cfg, "--force", "--quiet")
	out, err := cmd.CombinedOutput()
	r.Seconds = time.Since(start).Seconds()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.Exit = exit.ExitCode()
	} else if err != nil {
		r.Exit, r.Reason = -1, err.Error()
	}
	if ctx.Err() != nil {
		r.Status, r.Reason = "timeout", fmt.Sprintf("over %s", timeout)
		return r
	}
	rep := filepath.Join(dir, "out", slug(v.Name), e.Name+".report.json")
	job, err := readJob(rep)
	if err != nil {
		r.Status = "no report"
		r.Reason = fmt.Sprintf("exit %d: %s", r.Exit, lastLine(out))
		return r
	}
	r.Status, r.Reason = job.Status, job.Error
	r.Metrics = map[string]report.Float{}
	for _, s := range job.Stages {
		if s.Status == "failed" && r.Reason == "" {
			r.Reason = fmt.Sprintf("%s: %s", s.Stage, s.Error)
		}
		for _, m := range s.Metrics {
			switch s.Stage {
			case "verify", "quantize":
				if _, seen := r.Metrics[m.Name]; !seen || s.Stage == "verify" {
					r.Metrics[m.Name] = m.Value
				}
				if m.Key && s.Stage == "verify" {
					r.Key = m.Name
				}
			}
		}
	}
	if r.Status != "ok" && r.Reason == "" {
		r.Reason = lastLine(out)
	}
	return r
}

func readJob(path string) (*report.Job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j report.Job
	return &j, json.Unmarshal(data, &j)
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

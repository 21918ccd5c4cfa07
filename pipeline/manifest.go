package pipeline

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
)

// ManifestSchemaVersion is the version of the manifest JSON layout (docs/manifest.md).
const ManifestSchemaVersion = 1

// Manifest is written beside each artifact as <output without .onnx>.manifest.json. A
// rerun skips a job whose manifest matches its input and effective config.
type Manifest struct {
	SchemaVersion int             `json:"schema_version"`
	Tool          report.Tool     `json:"tool"`
	Created       time.Time       `json:"created"`
	ConfigSHA256  string          `json:"config_sha256"`
	Input         report.File     `json:"input"`
	Output        report.File     `json:"output"`
	Report        string          `json:"report"`
	Seconds       float64         `json:"seconds"`
	Stages        []*report.Stage `json:"stages"`
}

// ManifestPath is the manifest file of an output path.
func ManifestPath(output string) string {
	return strings.TrimSuffix(output, ".onnx") + ".manifest.json"
}

func writeManifest(j *Job, rep *report.Job) error {
	m := Manifest{
		SchemaVersion: ManifestSchemaVersion,
		Tool:          rep.Tool,
		Created:       time.Now().UTC().Truncate(time.Second),
		ConfigSHA256:  rep.ConfigSHA256,
		Input:         rep.Model,
		Output:        *rep.Output,
		Report:        j.ReportPrefix + ".report.json",
		Seconds:       rep.Seconds,
		Stages:        rep.Stages,
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return onnxio.WriteFileReplace(ManifestPath(j.Output), append(data, '\n'))
}

// manifestMatches reports whether the job is already done: its manifest names the same
// input (sha256), the same effective config, the same tool and onnxruntime versions, and
// the output it records is still there unchanged. It returns the manifest when it does,
// else nil.
func manifestMatches(j *Job, inHash string, rep *report.Job) *Manifest {
	data, err := os.ReadFile(ManifestPath(j.Output))
	if err != nil {
		return nil
	}
	var m Manifest
	if json.Unmarshal(data, &m) != nil || m.SchemaVersion != ManifestSchemaVersion {
		return nil
	}
	if m.Input.SHA256 != inHash || m.ConfigSHA256 != rep.ConfigSHA256 ||
		m.Tool.Version != rep.Tool.Version || m.Tool.Name != rep.Tool.Name {
		return nil
	}
	if v := ort.Version(); v != "" && m.Tool.ONNXRuntime != v {
		return nil
	}
	h, _, err := fileSHA256(j.Output)
	if err != nil || h != m.Output.SHA256 {
		return nil
	}
	rep.Output = &m.Output
	rep.Stages = m.Stages
	rep.Tool.ONNXRuntime = m.Tool.ONNXRuntime
	return &m
}

package onnxio

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// killedSave is the child process of TestSaveKilledAtEveryStep: it saves version
// ONNXPIPE_TEST_VERSION of the model with external data and kills itself (SIGKILL: no
// deferred clean-up runs) at step ONNXPIPE_TEST_KILL_AT.
func killedSave(t *testing.T) {
	at := os.Getenv("ONNXPIPE_TEST_KILL_AT")
	saveStep = func(step string) {
		if step == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	v, _ := strconv.Atoi(os.Getenv("ONNXPIPE_TEST_VERSION"))
	if err := versionedModel(t, v).Save(os.Getenv("ONNXPIPE_TEST_PATH"), SaveOptions{External: ExternalAlways, Threshold: 1}); err != nil {
		t.Fatal(err)
	}
}

// versionedModel is mlpModel with its first weight byte set to v.
func versionedModel(t *testing.T, v int) *Model {
	m := mlpModel(t)
	m.Graph().Initializer[0].RawData[0] = byte(v)
	return m
}

// A save with external data killed between any two of its file operations, over an older
// artifact, leaves a model that loads with its own data (the old one or the new one,
// whole), never the old model with new data; the next save of the same path leaves no
// stray file once RemoveTemps has run.
func TestSaveKilledAtEveryStep(t *testing.T) {
	if os.Getenv("ONNXPIPE_TEST_KILL_AT") != "" {
		killedSave(t)
		return
	}
	for _, step := range SaveSteps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.onnx")
			if err := versionedModel(t, 1).Save(path, SaveOptions{External: ExternalAlways, Threshold: 1}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestSaveKilledAtEveryStep$")
			cmd.Env = append(os.Environ(), "ONNXPIPE_TEST_KILL_AT="+step, "ONNXPIPE_TEST_VERSION=2", "ONNXPIPE_TEST_PATH="+path)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at %q: %v\n%s", step, err, out)
			}
			m, err := Load(path)
			if err != nil {
				t.Fatalf("after a kill at %q the model does not load: %v", step, err)
			}
			got := m.Graph().Initializer[0].RawData[0]
			want := byte(1)
			if step == "model renamed" {
				want = 2
			}
			if got != want || !bytes.Equal(m.Graph().Initializer[0].RawData[1:], versionedModel(t, 1).Graph().Initializer[0].RawData[1:]) {
				t.Errorf("after a kill at %q the model holds version %d's weights, want %d", step, got, want)
			}
			RemoveTemps(dir, "m.onnx")
			if err := versionedModel(t, 3).Save(path, SaveOptions{External: ExternalAlways, Threshold: 1}); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) != 2 {
				t.Errorf("after the rerun the folder holds %q; want the model and one data file", names)
			}
		})
	}
}

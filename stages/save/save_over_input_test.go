package save_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/pipeline"
)

// copyFixture copies a fixture model into dir.
func copyFixture(t *testing.T, dir, name string) (path string, data []byte) {
	t.Helper()
	data, err := os.ReadFile(testutil.Fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestSaveOverInput: a save path equal to the job's input model is refused before
// anything runs, at the path's line:col, as output: is (it overwrote the input with the
// chain's model, here the prepared one); through {name} too, and at the entry when the
// path is the input of another job of the config.
func TestSaveOverInput(t *testing.T) {
	for _, tc := range []struct {
		name, stages, want string
	}{
		{"written as is", "  - prepare\n  - save: {path: mnist_cnn.onnx}\n",
			"c.yaml:4:18: save: path %s is the input model itself; write it elsewhere"},
		{"through the name placeholder", "  - prepare\n  - save:\n      path: ./{name}.onnx\n",
			"c.yaml:5:13: save: path %s is the input model itself; write it elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, data := copyFixture(t, dir, "mnist_cnn.onnx")
			cfg := writeConfig(t, dir, src, "", tc.stages)
			c, err := pipeline.Load(cfg, pipeline.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Jobs()
			if err == nil {
				res := testutil.RunConfig(t, cfg)
				after, _ := os.ReadFile(src)
				t.Fatalf("accepted; job %s; the input file changed: %v", res.Outcomes[0].Status, string(after) != string(data))
			}
			if want := strings.Replace(tc.want, "%s", src, 1); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

// TestSaveOverAnotherInput: with several models, a save path that is another job's input
// would overwrite it (for the job that runs second, or while the other reads it).
func TestSaveOverAnotherInput(t *testing.T) {
	dir := t.TempDir()
	a, _ := copyFixture(t, dir, "mnist_cnn.onnx")
	b, _ := copyFixture(t, dir, "resnet_small.onnx")
	cfg := filepath.Join(dir, "c.yaml")
	src := "models:\n  - model: " + a + "\n  - model: " + b + "\nstages:\n  - save: {path: " + a + "}\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := pipeline.Load(cfg, pipeline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Jobs()
	for _, want := range []string{
		"c.yaml:5:18: save: path " + a + " is the input model itself; write it elsewhere",
		"c.yaml:5:18: save: path " + a + " is the input model of another job (" + a + "); write it elsewhere",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

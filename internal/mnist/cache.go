package mnist

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// Version is the version of Module that go.mod requires (a test keeps the two equal).
const Version = "v0.0.0-20150320212226-2fbe10d0fa63"

// Var is the environment variable the example configs read the MNIST folder from.
const Var = "MNIST_DIR"

// SetCommand is a shell command that downloads the data, when needed, and sets Var to
// its folder.
const SetCommand = `export ` + Var + `="$(go mod download -json ` + Module + `@` + Version +
	` | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/data"`

// Cached returns the data folder of Module@Version in the Go module cache, without running
// go: building onnxpipe puts the module there, as the binary imports it. The cache is
// $GOMODCACHE, else $GOPATH/pkg/mod (the first GOPATH entry), else ~/go/pkg/mod, as go
// itself has it. The error says where it looked and how to set Var instead.
func Cached() (string, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := filepath.SplitList(os.Getenv("GOPATH"))
		if len(gopath) > 0 && gopath[0] != "" {
			cache = filepath.Join(gopath[0], "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	dir := filepath.Join(cache, filepath.FromSlash(escapePath(Module))+"@"+Version, "data")
	for _, f := range []string{TrainImages, TrainLabels, TestImages, TestLabels} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("its default, the data of the Go module %s@%s, is not in the Go module cache (no %s); set it: %s",
				Module, Version, filepath.Join(dir, f), SetCommand)
		}
	}
	return dir, nil
}

// escapePath is a module path as the module cache spells it: each upper-case letter as
// "!" and its lower case (golang.org/x/mod/module.EscapePath).
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

package mnist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Version is the one go.mod requires: Cached looks for that folder.
func TestVersionIsGoMod(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\t"+Module+" "+Version+"\n") {
		t.Errorf("go.mod does not require %s %s", Module, Version)
	}
}

func TestCached(t *testing.T) {
	if got := escapePath(Module); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Errorf("escapePath: %s", got)
	}
	cache := t.TempDir()
	t.Setenv("GOMODCACHE", cache)
	_, err := Cached()
	if err == nil || !strings.Contains(err.Error(), SetCommand) || !strings.Contains(err.Error(), cache) {
		t.Errorf("an empty cache: %v", err)
	}
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+Version, "data")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{TrainImages, TrainLabels, TestImages, TestLabels} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	if got, err := Cached(); err != nil || got != dir {
		t.Errorf("Cached() = %s, %v; want %s", got, err, dir)
	}
	t.Setenv("GOMODCACHE", "")
	t.Setenv("GOPATH", filepath.Dir(filepath.Dir(cache))+string(filepath.ListSeparator)+"/elsewhere")
	os.MkdirAll(filepath.Join(filepath.Dir(filepath.Dir(cache)), "pkg"), 0o755)
	if _, err := Cached(); err == nil || !strings.Contains(err.Error(), filepath.Join(filepath.Dir(filepath.Dir(cache)), "pkg", "mod")) {
		t.Errorf("GOPATH: %v", err)
	}
}

package pipeline

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// lockPrefix starts the name of the file in each output folder that a run holds locked
// while it writes: .onnxpipe-<config key>.lock.
const lockPrefix = ".onnxpipe-"

// configKey names a config's lock: the first 8 bytes of the effective config's sha256.
// Shards of one config (--shard, JOB_COMPLETION_INDEX) share it.
func configKey(cfg *Config) string {
	sum := sha256.Sum256(cfg.Effective)
	return fmt.Sprintf("%x", sum[:8])
}

// folderLocks are the output folders a run holds.
type folderLocks struct{ files []*os.File }

// lockOutputs locks every folder the jobs write to (artifacts, reports), so that runs of
// two configs never mix their files in one folder, and then removes the temporary files
// a killed run left there for these jobs' files. Runs of one config (its shards, which
// write distinct files) share the folders; a folder a run of another config holds is an
// error naming it.
func lockOutputs(jobs []*Job, key string) (*folderLocks, error) {
	dirs := map[string][]string{} // folder -> the file-name prefixes the jobs write there
	for _, j := range jobs {
		for _, p := range []string{j.Output, j.ReportPrefix} {
			if p == "" {
				continue
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			dir := filepath.Dir(abs)
			dirs[dir] = append(dirs[dir], strings.TrimSuffix(filepath.Base(abs), ".onnx"))
		}
	}
	order := make([]string, 0, len(dirs))
	for d := range dirs {
		order = append(order, d)
	}
	sort.Strings(order) // one order for every run: two runs cannot hold each other's first
	l := &folderLocks{}
	for _, dir := range order {
		f, err := lockFolder(dir, key)
		if err != nil {
			l.release()
			return nil, err
		}
		l.files = append(l.files, f)
		for _, prefix := range dirs[dir] {
			onnxio.RemoveTemps(dir, prefix)
		}
	}
	return l, nil
}

// lockFolder creates dir, takes a shared lock on its lock file for key, and checks that
// no run of another config holds one of its own, without waiting.
func lockFolder(dir, key string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the output folder %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockPrefix+key+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
	}
	others, _ := filepath.Glob(filepath.Join(dir, lockPrefix+"*.lock"))
	for _, o := range others {
		if filepath.Base(o) == filepath.Base(f.Name()) {
			continue
		}
		if busy, err := heldElsewhere(o); err != nil || busy {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
			}
			return nil, fmt.Errorf("the output folder %s is being written by another onnxpipe run of a different config; wait for it to finish or write elsewhere", dir)
		}
	}
	return f, nil
}

// heldElsewhere reports whether some process holds the lock file at path.
func heldElsewhere(path string) (bool, error) {
	g, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer g.Close()
	if err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	return false, nil // closing g releases the lock taken to test it
}

// release unlocks the folders (closing a file releases its flock).
func (l *folderLocks) release() {
	if l == nil {
		return
	}
	for _, f := range l.files {
		f.Close()
	}
	l.files = nil
}

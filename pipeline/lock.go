package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// lockName is the file in each output folder that a run holds locked while it writes.
const lockName = ".onnxpipe.lock"

// folderLocks are the output folders a run holds.
type folderLocks struct{ files []*os.File }

// lockOutputs locks every folder the jobs write to (artifacts, reports), so that two runs
// never mix their files in one folder, and then removes the temporary files a killed
// run left there for these jobs' files. A folder another run holds is an error naming it.
func lockOutputs(jobs []*Job) (*folderLocks, error) {
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
		f, err := lockFolder(dir)
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

// lockFolder creates dir and takes its lock without waiting.
func lockFolder(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the output folder %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the output folder %s is being written by another onnxpipe run; wait for it to finish or write elsewhere", dir)
		}
		return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
	}
	return f, nil
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

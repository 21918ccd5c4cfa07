package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
)

// Fingerprint identifies a dataset for caches: its spec (format, files, limit, shuffle,
// preprocessing) plus the size and modification time of every file it names (files in
// a named folder included). Two fingerprints differ when the data may differ.
func Fingerprint(s *Spec) (string, error) {
	type file struct {
		Path    string `json:"path"`
		Size    int64  `json:"size"`
		ModTime int64  `json:"mtime"`
	}
	var files []file
	add := func(p string) error {
		return filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			st, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, file{path, st.Size(), st.ModTime().UnixNano()})
			return nil
		})
	}
	var paths []string
	for _, p := range s.Inputs {
		paths = append(paths, p)
	}
	if s.Labels != "" {
		paths = append(paths, s.Labels)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if s.Format == "random" {
			break
		}
		// npz members are named "file.npz:array": fingerprint the file.
		if _, err := os.Stat(p); err != nil {
			if i := lastColon(p); i > 0 {
				p = p[:i]
			}
		}
		if err := add(p); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(struct {
		Spec  *Spec  `json:"spec"`
		Files []file `json:"files"`
	}{s, files})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
		if s[i] == '/' {
			return -1
		}
	}
	return -1
}

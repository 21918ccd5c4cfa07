package corpus

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Entry is one model of the corpus list.
type Entry struct {
	Name    string // the model's file name in the corpus folder, without .onnx
	Package string // npm package@version it comes from
	Path    string // its path inside the package
	Inputs  string // the kind of inputs it takes (see Kinds)
}

// ReadList reads corpus/models.tsv: tab-separated name, package@version, tarball sha256,
// path in the package, model sha256, inputs kind; # starts a comment.
func ReadList(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := sc.Text()
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "#") {
			continue
		}
		cols := strings.Split(t, "\t")
		if len(cols) != 6 {
			return nil, fmt.Errorf("%s:%d: %d tab-separated columns, want 6 (name, package, tarball sha256, path, model sha256, inputs)", path, line, len(cols))
		}
		if _, ok := kinds[cols[5]]; !ok {
			return nil, fmt.Errorf("%s:%d: inputs %q: one of %s", path, line, cols[5], strings.Join(Kinds(), ", "))
		}
		out = append(out, Entry{Name: cols[0], Package: cols[1], Path: cols[3], Inputs: cols[5]})
	}
	return out, sc.Err()
}

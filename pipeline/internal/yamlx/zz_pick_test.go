package yamlx

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestZZPick(t *testing.T) {
	dir := os.Getenv("CORPUS")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	best := map[string]string{}
	bestLen := map[string]int{}
	re := regexp.MustCompile("\"[^\"]*\"|`[^`]*`|\\([^)]*\\)|\\d+|\\*\\S+")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(string(b), "\n")
		if len(lines) < 2 {
			continue
		}
		arg := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		s, err := strconv.Unquote(arg)
		if err != nil {
			continue
		}
		doc, ok := parseFuzz([]byte(s))
		if !ok {
			continue
		}
		for _, d := range Check(doc, configType, "") {
			k := re.ReplaceAllString(d.Msg, "_")
			if _, ok := best[k]; !ok || len(s) < bestLen[k] {
				best[k], bestLen[k] = f, len(s)
			}
		}
	}
	var keys []string
	for k := range best {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s\t%s", filepath.Base(best[k]), k)
	}
}

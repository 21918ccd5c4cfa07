package optdocs

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Module is the module path the extracted keys start with.
const Module = "github.com/onnxpipe/onnxpipe"

// Extract reads the Go files (tests excluded) of each package folder under root/dir for
// dir in dirs, recursively, and returns the doc comment of every field of every struct
// type, keyed as Key does. Only exported struct types are considered.
func Extract(root string, dirs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			return extractDir(path, Module+"/"+filepath.ToSlash(rel), out)
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func extractDir(dir, pkgPath string, out map[string]string) error {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok || !ts.Name.IsExported() {
					continue
				}
				for _, field := range st.Fields.List {
					doc := strings.TrimSpace(field.Doc.Text())
					if doc == "" {
						doc = strings.TrimSpace(field.Comment.Text())
					}
					for _, name := range field.Names {
						if name.IsExported() {
							out[pkgPath+"."+ts.Name.Name+"."+name.Name] = strings.Join(strings.Fields(doc), " ")
						}
					}
				}
			}
		}
	}
	return nil
}

// Dirs are the folders whose option structs are documented.
var Dirs = []string{"stages", "dataset", "verify", "quantize", "distill"}

// Encode renders docs as docs.json is written: sorted keys, two-space indent, no HTML
// escaping.
func Encode(docs map[string]string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(docs)
	return b.Bytes()
}

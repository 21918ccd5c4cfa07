package yamlx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Set applies one --set override: it puts value at the dot path in the
// document root (a document node, or the top mapping or list itself).
//
// path names mapping keys and, on lists, 0-based indexes:
// "stages.1.quantize.per_channel", "datasets.calib.limit", "runtime.threads".
// value is parsed as YAML ("false", "64", "[1, 8]", "{a: 1}", "'007'"); an
// empty value is null.
//
// Along the path, missing mapping keys are created, null values become
// mappings, and a list entry that is a bare string equal to the next path
// element becomes a one-key mapping, so "stages.1.quantize.mode" works on
// "- quantize", "- quantize:" and "- quantize: {...}" alike. A key that a
// mapping only gets through a "<<" merge is copied into the mapping before
// it is changed, and a value reached through an alias is copied in place of
// the alias, so anchored values shared elsewhere are never changed.
//
// Nodes created by Set have Line and Column 0 (copies keep the positions of
// the text they copy); untouched nodes keep theirs. The error names the part
// of the path that failed: `--set stages.7.quantize.mode: the list "stages"
// has 3 entries`. On error root is left unchanged.
func Set(root *yaml.Node, path string, value string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("--set %s: %s", path, fmt.Sprintf(format, args...))
	}
	if root == nil {
		return fail("no document")
	}
	segs, err := splitPath(path)
	if err != nil {
		return fail("%v", err)
	}
	val, err := parseValue(value)
	if err != nil {
		return fail("invalid value %q: %v", value, err)
	}
	// Check first, so that a failing Set changes nothing.
	if err := walkSet(cloneTree(root, false), segs, val); err != nil {
		return fail("%v", err)
	}
	if err := walkSet(root, segs, val); err != nil {
		return fail("%v", err) // not reached: the dry run would have failed
	}
	return nil
}

// walkSet does the work of Set on root.
func walkSet(root *yaml.Node, segs []string, val *yaml.Node) error {
	holder := []*yaml.Node{root}
	slot := &holder[0]
	if root.Kind == 0 {
		*root = yaml.Node{Kind: yaml.DocumentNode}
	}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			root.Content = []*yaml.Node{newMapping()}
		}
		slot = &root.Content[0]
	}
	defer func() {
		if holder[0] != root {
			*root = *holder[0]
		}
	}()
	for i, seg := range segs {
		prefix := strings.Join(segs[:i], ".")
		node := *slot
		if node.Kind == yaml.AliasNode {
			node = cloneTree(resolveAlias(node), true)
			*slot = node
		}
		if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null" {
			node = newMapping()
			*slot = node
		}
		switch node.Kind {
		case yaml.MappingNode:
			if seg == "<<" {
				return errors.New(`cannot set a "<<" merge key`)
			}
			idx := directKey(node, seg)
			if idx < 0 {
				v := newNull()
				if _, mv := lookupKey(node, seg); mv != nil && i < len(segs)-1 {
					v = cloneTree(resolveAlias(mv), true)
				}
				node.Content = append(node.Content, newKey(seg), v)
				idx = len(node.Content) - 1
			}
			slot = &node.Content[idx]
		case yaml.SequenceNode:
			n, err := strconv.Atoi(seg)
			if err != nil || seg[0] == '+' || seg[0] == '-' {
				return fmt.Errorf("%s is a list, and %q is not an index", where(prefix), seg)
			}
			if n >= len(node.Content) {
				return fmt.Errorf("the list %s has %s", quotePath(prefix), plural(len(node.Content), "entry", "entries"))
			}
			slot = &node.Content[n]
			if i+1 < len(segs) {
				// A bare "- quantize" entry addressed as stages.N.quantize.x
				// becomes "- quantize: null", filled in by the next steps.
				item := resolveAlias(*slot)
				if item.Kind == yaml.ScalarNode && item.Value == segs[i+1] && item.ShortTag() == "!!str" {
					key := *slot
					if key.Kind != yaml.ScalarNode {
						key = newKey(item.Value)
					}
					m := newMapping()
					m.Content = []*yaml.Node{key, newNull()}
					*slot = m
				}
			}
		default:
			return fmt.Errorf("%s holds %s, not a mapping or a list", where(prefix), describe(node))
		}
	}
	*slot = cloneTree(val, false)
	return nil
}

func where(prefix string) string {
	if prefix == "" {
		return "the document"
	}
	return strconv.Quote(prefix)
}

func quotePath(prefix string) string {
	if prefix == "" {
		return "at the document root"
	}
	return strconv.Quote(prefix)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func splitPath(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if !utf8.ValidString(path) {
		return nil, errors.New("path is not valid UTF-8")
	}
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			return nil, errors.New("empty key in path")
		}
	}
	return segs, nil
}

// parseValue parses a --set value as YAML; positions are cleared.
func parseValue(value string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return nil, errors.New(cleanError(err))
	}
	v := newNull()
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		v = doc.Content[0]
	}
	zeroPositions(v)
	return v, nil
}

func zeroPositions(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		zeroPositions(c)
	}
}

func newMapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }
func newNull() *yaml.Node    { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"} }

// newKey makes a key node for s, tagged as if s were written plain (so that
// "8" is an integer key, as in the text "8: x"), but never null.
func newKey(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	n.Tag = n.ShortTag()
	if n.Tag == "!!null" || n.Tag == "!!merge" {
		n.Tag = "!!str"
	}
	return n
}

// cloneTree deep-copies n through its Content (aliases inside stay aliases
// to the original nodes). clearAnchors drops the anchors of the copies, so
// that a copy does not define an anchor a second time.
func cloneTree(n *yaml.Node, clearAnchors bool) *yaml.Node {
	c := *n
	if clearAnchors {
		c.Anchor = ""
	}
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, x := range n.Content {
			c.Content[i] = cloneTree(x, clearAnchors)
		}
	}
	return &c
}

// directKey returns the index in m.Content of the value of key name written
// in m itself (merge keys are not looked through), or -1.
func directKey(m *yaml.Node, name string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if isMerge(k) {
			continue
		}
		if r := resolveAlias(k); r.Kind == yaml.ScalarNode && r.Value == name {
			return i + 1
		}
	}
	return -1
}

// lookupKey finds key name in mapping m, then in the mappings m merges with
// "<<" (depth first, in order). It returns nil, nil when absent.
func lookupKey(m *yaml.Node, name string) (key, value *yaml.Node) {
	return lookupMerged(m, name, make(map[*yaml.Node]bool))
}

func lookupMerged(m *yaml.Node, name string, visited map[*yaml.Node]bool) (key, value *yaml.Node) {
	if visited[m] {
		return nil, nil
	}
	visited[m] = true
	if i := directKey(m, name); i >= 0 {
		return m.Content[i-1], m.Content[i]
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !isMerge(m.Content[i]) {
			continue
		}
		src := resolveAlias(m.Content[i+1])
		sources := []*yaml.Node{src}
		if src.Kind == yaml.SequenceNode {
			sources = src.Content
		}
		for _, s := range sources {
			if s = resolveAlias(s); s.Kind == yaml.MappingNode {
				if k, v := lookupMerged(s, name, visited); v != nil {
					return k, v
				}
			}
		}
	}
	return nil, nil
}

// Locate returns the node at the dot path in root (a document node or any
// node), or nil when there is none. The empty path is the document's top
// node. Mapping keys are also found through "<<" merges, and aliases along
// the way are followed; the node returned is the one written at the path,
// so it may itself be an alias node (whose Alias field holds the value).
// On a list entry that is a bare string ("- save"), the path element equal
// to that string locates the string itself.
func Locate(root *yaml.Node, path string) *yaml.Node {
	_, v := locate(root, path)
	return v
}

// LocateKey is like Locate but returns the key node of the last path element
// when it names a mapping key (the value otherwise), for diagnostics that
// concern the key rather than its value.
func LocateKey(root *yaml.Node, path string) *yaml.Node {
	k, v := locate(root, path)
	if k != nil {
		return k
	}
	return v
}

func locate(root *yaml.Node, path string) (key, value *yaml.Node) {
	if root == nil {
		return nil, nil
	}
	n := root
	if n.Kind == 0 {
		return nil, nil
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		n = n.Content[0]
	}
	if path == "" {
		return nil, n
	}
	segs := strings.Split(path, ".")
	fromList := false
	for i, seg := range segs {
		r := resolveAlias(n)
		switch r.Kind {
		case yaml.MappingNode:
			key, n = lookupKey(r, seg)
			if n == nil {
				return nil, nil
			}
			fromList = false
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 || idx >= len(r.Content) || seg[0] == '+' || seg[0] == '-' {
				return nil, nil
			}
			key, n = nil, r.Content[idx]
			fromList = true
		case yaml.ScalarNode:
			if fromList && i == len(segs)-1 && r.Value == seg {
				return n, n
			}
			return nil, nil
		default:
			return nil, nil
		}
	}
	return key, n
}

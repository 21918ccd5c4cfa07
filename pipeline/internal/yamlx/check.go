package yamlx

import (
	"encoding"
	"errors"
	"fmt"
	"github.com/onnxpipe/onnxpipe/internal/suggest"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

var (
	unmarshalerType         = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	obsoleteUnmarshalerType = reflect.TypeOf((*interface {
		UnmarshalYAML(unmarshal func(any) error) error
	})(nil)).Elem()
	nodeType     = reflect.TypeOf(yaml.Node{})
	stringType   = reflect.TypeOf("")
	anyType      = reflect.TypeOf((*any)(nil)).Elem()
	durationType = reflect.TypeOf(time.Duration(0))

	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	enumType            = reflect.TypeOf((*Enum)(nil)).Elem()
)

// Enum is implemented by string types that take one of a fixed set of values (a stage
// option such as quantize's mode). Check reports any other value, at the value, with the
// values allowed and the nearest one; as a mapping key type, every key is checked.
type Enum interface {
	Values() []string
}

// checkEnum reports a scalar of enum type t whose text is not one of its values.
func (c *checker) checkEnum(n *yaml.Node, t reflect.Type, path string, at *yaml.Node, what string) {
	if t == nil || t.Kind() != reflect.String || !t.Implements(enumType) {
		return
	}
	values := reflect.Zero(t).Interface().(Enum).Values()
	v := resolveAlias(n).Value
	for _, ok := range values {
		if v == ok {
			return
		}
	}
	msg := fmt.Sprintf("%s %q is not one of %s", what, v, strings.Join(values, ", "))
	if s := suggest.Closest(v, values); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	c.report(at, path, "%s", msg)
}

// lastElem is the last element of a dot path.
func lastElem(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// Check walks a YAML node tree (document, mapping, sequence, scalar or alias
// node) against the Go type t, the way yaml.v3 would decode it with
// KnownFields(true), and returns every problem found, sorted by position.
// path is the dot path of node itself ("" for a document root); the paths
// of the diagnostics extend it.
//
// Structs are matched by their yaml tags like yaml.v3 does (name,
// ",omitempty", ",flow", "-", ",inline" structs, struct pointers and
// maps; untagged fields by their lower-cased name). Pointers are followed;
// slices and arrays have each element checked; maps have each key decoded
// into the key type and each value checked against the element type.
// Interface types accept any value, and so do types implementing
// yaml.Unmarshaler (they validate themselves) and yaml.Node (but not
// *yaml.Node, which yaml.v3 v3.0.1 decodes as an ordinary struct). Scalars are
// decoded by yaml.v3 into a zero value of the target type, so yaml.v3's own
// resolution rules (and encoding.TextUnmarshaler, time.Duration) apply.
//
// Reported: unknown keys (at the key, with a "did you mean" hint or the list
// of valid keys), a mapping or list where something else is expected and
// vice versa, scalars that do not decode (at the value), numbers that yaml.v3
// decodes into an integer type but not as themselves (a fraction, which it
// truncates, or a float out of the type's range; at the value, naming the
// key), NaN where a number is expected, duplicate keys, keys that are not
// scalars, malformed "<<" merge keys, arrays of the wrong length and aliases
// that contain themselves. Merge keys are followed (keys of the mapping itself
// override merged ones, earlier merged mappings override later ones) and so
// are aliases. A problem inside an anchored value
// reached through several aliases is reported once, at the anchored text;
// a problem with the value as a whole is reported at the alias.
//
// A nil t checks node as if the target were an interface (only duplicate
// keys, merges, scalar tags and alias cycles are checked).
func Check(node *yaml.Node, t reflect.Type, path string) []Diagnostic {
	if node == nil {
		return nil
	}
	c := &checker{done: make(map[visit]bool), open: make(map[*yaml.Node]bool)}
	c.walk(node, t, path, nil)
	if len(c.diags) == 0 {
		return nil
	}
	return Diagnostics(dedupe(c.diags)).Sort()
}

type visit struct {
	n *yaml.Node
	t reflect.Type
}

type checker struct {
	diags []Diagnostic
	done  map[visit]bool      // mapping and sequence nodes checked against a type
	open  map[*yaml.Node]bool // mapping and sequence nodes being checked (ancestors)
}

func (c *checker) report(n *yaml.Node, path, format string, args ...any) {
	c.diags = append(c.diags, diagAt(n, path, format, args...))
}

// enter reports whether the contents of n still have to be checked against t
// and marks them as checked.
// Call leave(n) when done.
func (c *checker) enter(n *yaml.Node, t reflect.Type) bool {
	k := visit{n, t}
	if c.done[k] {
		return false
	}
	c.done[k] = true
	c.open[n] = true
	return true
}

func (c *checker) leave(n *yaml.Node) { delete(c.open, n) }

// walk checks n against t (nil: anything). at, when non-nil, is where a
// problem with the value as a whole is reported: the alias through which n
// was reached.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string, at *yaml.Node) {
	if n == nil {
		return
	}
	if at == nil {
		at = n
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			c.walk(n.Content[0], t, path, nil)
		}
		return
	case yaml.AliasNode:
		if n.Alias == nil {
			return
		}
		if c.open[resolveAlias(n)] {
			c.report(n, path, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		c.walk(n.Alias, t, path, at)
		return
	case 0:
		return // the zero Node: an empty document
	}
	t, open := targetType(t)
	if open {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		c.scalar(n, t, path, at)
	case yaml.MappingNode:
		switch {
		case t == nil:
			if c.enter(n, nil) {
				c.mapping(n, anyType, nil, path)
				c.leave(n)
			}
		case t.Kind() == reflect.Struct:
			if c.enter(n, t) {
				c.structMapping(n, t, path)
				c.leave(n)
			}
		case t.Kind() == reflect.Map:
			if c.enter(n, t) {
				c.mapping(n, t.Key(), t.Elem(), path)
				c.leave(n)
			}
		default:
			c.report(at, path, "expected %s, got a mapping", expectation(t))
		}
	case yaml.SequenceNode:
		var elem reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Slice:
			elem = t.Elem()
		case t.Kind() == reflect.Array:
			elem = t.Elem()
			if len(n.Content) != t.Len() {
				c.report(at, path, "expected a list of %d items, got %d", t.Len(), len(n.Content))
			}
		default:
			c.report(at, path, "expected %s, got a list", expectation(t))
			return
		}
		if c.enter(n, t) {
			for i, item := range n.Content {
				c.walk(item, elem, joinPath(path, fmt.Sprint(i)), nil)
			}
			c.leave(n)
		}
	default:
		c.report(at, path, "unexpected YAML node kind %d", n.Kind)
	}
}

// targetType dereferences pointers. It returns nil for interface types
// (anything goes, but the value is still looked at) and open=true for types
// that accept anything unseen: yaml.Node and yaml.Unmarshaler implementations
// (as yaml.v3 does, the Unmarshaler is looked for on a pointer to each
// dereferenced type).
func targetType(t reflect.Type) (_ reflect.Type, open bool) {
	if t == nodeType {
		return t, true
	}
	// A *yaml.Node is not special to yaml.v3 v3.0.1: it decodes into the
	// Node struct field by field, and so does Check.
	for t != nil {
		switch t.Kind() {
		case reflect.Interface:
			return nil, false
		case reflect.Pointer:
			t = t.Elem()
			continue
		}
		pt := reflect.PointerTo(t)
		if pt.Implements(unmarshalerType) || pt.Implements(obsoleteUnmarshalerType) {
			return t, true
		}
		return t, false
	}
	return nil, false
}

func (c *checker) scalar(n *yaml.Node, t reflect.Type, path string, at *yaml.Node) {
	target := t
	if target == nil {
		target = anyType
	}
	err := decodeInto(n, target)
	if err == nil {
		msg := lossyInteger(n, t)
		if msg == "" {
			msg = lossy(n, t)
		}
		if msg != "" {
			if k := keyName(path); k != "" {
				msg = k + ": " + msg
			}
			c.report(at, path, "%s", msg)
			return
		}
		c.checkEnum(n, t, path, at, lastElem(path)+":")
		return
	}
	if t != nil && !reflect.PointerTo(t).Implements(textUnmarshalerType) {
		switch t.Kind() {
		case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
			if n.ShortTag() != "!!binary" {
				c.report(at, path, "expected %s, got %s", expectation(t), describe(n))
				return
			}
		}
	}
	c.report(at, path, "%s", err)
}

// lossy says what is wrong with a scalar that yaml.v3 decodes into t without an error
// but not as written: a number with a fraction into an integer (yaml.v3 truncates 2.5 to
// 2), or NaN into a float (.nan is no bound, percentile or rate: every comparison with it
// is false, so range checks let it through).
func lossy(n *yaml.Node, t reflect.Type) string {
	if t == nil {
		return ""
	}
	r := resolveAlias(n)
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var f float64
		if r.ShortTag() == "!!float" && decodeValue(r, &f) == nil && f != math.Trunc(f) {
			return fmt.Sprintf("expected %s, got %s", expectation(t), describe(r))
		}
	case reflect.Float32, reflect.Float64:
		var f float64
		if decodeValue(r, &f) == nil && math.IsNaN(f) {
			return fmt.Sprintf("expected a number, got NaN (%s)", r.Value)
		}
	}
	return ""
}

// structMapping checks the keys and values of mapping m against struct t.
func (c *checker) structMapping(m *yaml.Node, t reflect.Type, path string) {
	info, err := structInfoOf(t)
	if err != nil {
		c.report(m, path, "cannot check against %s: %v", t, err)
		return
	}
	for _, p := range c.pairs(m, path) {
		name, ok := c.key(p.key, stringType, path)
		if !ok {
			continue
		}
		shown := name
		if shown == "" {
			shown = resolveAlias(p.key).Value // a null key such as "~"
		}
		sub := joinPath(path, shown)
		switch ft, known := info.fields[name]; {
		case known:
			c.walk(p.value, ft, sub, nil)
		case info.hasInlineMap:
			c.walk(p.value, info.inlineMap, sub, nil)
		case info.open:
		default:
			c.report(p.key, sub, "%s", unknownField(shown, info.keys))
		}
	}
}

// mapping checks the keys of m against kt and its values against et (nil:
// anything).
func (c *checker) mapping(m *yaml.Node, kt, et reflect.Type, path string) {
	for _, p := range c.pairs(m, path) {
		name, ok := c.key(p.key, kt, path)
		if !ok {
			continue
		}
		c.walk(p.value, et, joinPath(path, name), nil)
	}
}

func unknownField(name string, keys []string) string {
	msg := fmt.Sprintf("unknown field %q", name)
	if s := suggest.Closest(name, keys); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	switch {
	case len(keys) == 0:
		return msg + " (no fields are allowed here)"
	case len(keys) <= 12:
		return msg + " (valid fields: " + strings.Join(keys, ", ") + ")"
	}
	return msg
}

// key checks that k is a scalar decodable into kt and returns its name
// (the decoded string for string-kinded kt, the scalar text otherwise).
func (c *checker) key(k *yaml.Node, kt reflect.Type, path string) (string, bool) {
	r := resolveAlias(k)
	if r.Kind != yaml.ScalarNode {
		c.report(k, path, "a mapping key must be a scalar, got %s", describe(r))
		return "", false
	}
	if r.ShortTag() == "!!null" {
		switch kt.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice:
		default:
			// yaml.v3 silently drops the pair.
			what := "an empty key"
			if r.Value != "" {
				what = fmt.Sprintf("a null key (%s)", r.Value)
			}
			c.report(k, path, "%s is ignored by the YAML decoder; quote it if you mean a string", what)
			return "", false
		}
	}
	if kt.Kind() == reflect.String {
		var s string
		if err := decodeValue(r, &s); err == nil {
			if kt.Implements(enumType) {
				before := len(c.diags)
				c.checkEnum(r, kt, joinPath(path, s), k, "key")
				return s, len(c.diags) == before
			}
			return s, true
		}
	}
	if err := decodeInto(r, kt); err != nil {
		c.report(k, joinPath(path, r.Value), "invalid key: %s", err)
		return "", false
	}
	if msg := lossyInteger(r, kt); msg != "" {
		c.report(k, joinPath(path, r.Value), "invalid key: %s", msg)
		return "", false
	}
	return r.Value, true
}

// lossyInteger returns what is wrong with a number that yaml.v3 decodes into the
// integer type t without an error but not as itself ("" when nothing is): a fraction,
// which it truncates (13.5 becomes 13), or a float out of t's range, negative ones for
// an unsigned type included, which Go's conversion turns into an arbitrary value (-2.5
// into uint64 is 18446744073709551614). A float that is an integer in range (1e3, 13.0)
// is that integer.
func lossyInteger(n *yaml.Node, t reflect.Type) string {
	if t == nil || t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return ""
	}
	r := resolveAlias(n)
	if r.Kind != yaml.ScalarNode || r.ShortTag() != "!!float" {
		return ""
	}
	var f float64
	if decodeValue(r, &f) != nil {
		return ""
	}
	v := reflect.New(t)
	if decodeValue(r, v.Interface()) != nil {
		return "" // reported by the caller
	}
	var exact bool
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		exact = f >= -0x1p63 && f < 0x1p63 && float64(v.Elem().Int()) == f
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		exact = f >= 0 && f < 0x1p64 && float64(v.Elem().Uint()) == f
	default:
		return ""
	}
	switch {
	case exact:
		return ""
	case f != math.Trunc(f):
		return fmt.Sprintf("expected %s, got %s", expectation(t), describe(r))
	}
	return fmt.Sprintf("%s is out of range for %s", r.Value, t)
}

// keyName names the value at path in a message: its key, with the key of the list
// for an item of one ("sizes.1").
func keyName(path string) string {
	elems := strings.Split(path, ".")
	i := len(elems) - 1
	for i > 0 && isIndex(elems[i]) {
		i--
	}
	return strings.Join(elems[i:], ".")
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

type pair struct{ key, value *yaml.Node }

// pairs returns the effective key/value pairs of mapping m: its own pairs
// (less "<<" merge keys and later duplicates) followed by the pairs of its
// merged mappings that are not overridden. It reports duplicate keys and
// malformed merges.
func (c *checker) pairs(m *yaml.Node, path string) []pair {
	var out []pair
	c.collect(m, path, make(map[string]bool), make(map[*yaml.Node]bool), &out)
	return out
}

// collect appends the effective pairs of m to out. seen holds the keys
// already taken, visited the mappings already merged (true while m's own
// merges are being collected).
func (c *checker) collect(m *yaml.Node, path string, seen map[string]bool, visited map[*yaml.Node]bool, out *[]pair) {
	visited[m] = true
	defer func() { visited[m] = false }()
	first := make(map[string]*yaml.Node)
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		r := resolveAlias(k)
		if r.Kind == yaml.ScalarNode {
			if prev := first[r.Value]; prev != nil {
				if prev.Kind == k.Kind && prev.Value == k.Value {
					c.report(k, joinPath(path, r.Value), "duplicate key %q (first defined at %s)", r.Value, position(prev))
				} else {
					// yaml.v3 only catches this one when decoding a struct.
					c.report(k, joinPath(path, r.Value), "duplicate key %q, written through an alias (first defined at %s)", r.Value, position(prev))
				}
				continue
			}
			first[r.Value] = k
		}
		if isMerge(k) {
			merges = append(merges, v)
			continue
		}
		if r.Kind == yaml.ScalarNode {
			if seen[r.Value] {
				continue // overridden by an earlier key
			}
			seen[r.Value] = true
		}
		*out = append(*out, pair{k, v})
	}
	// merge merges mapping src, written as node v.
	merge := func(v, src *yaml.Node) {
		if v.Kind == yaml.AliasNode && (c.open[src] || visited[src]) {
			c.report(v, path, "alias *%s refers to a value that contains it", v.Value)
			return
		}
		if _, done := visited[src]; !done {
			c.collect(src, path, seen, visited, out)
		}
	}
	for _, v := range merges {
		src := resolveAlias(v)
		switch src.Kind {
		case yaml.MappingNode:
			merge(v, src)
		case yaml.SequenceNode:
			for _, item := range src.Content {
				if r := resolveAlias(item); r.Kind == yaml.MappingNode {
					merge(item, r)
				} else {
					c.report(item, path, `a "<<" merge key needs a mapping or a list of mappings, got a list holding %s`, describe(r))
				}
			}
		default:
			c.report(v, path, `a "<<" merge key needs a mapping or a list of mappings, got %s`, describe(src))
		}
	}
}

// isMerge reports whether k is a "<<" merge key (as yaml.v3 decides it).
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" &&
		(k.Tag == "" || k.Tag == "!" || k.Tag == "!!merge" || k.Tag == "tag:yaml.org,2002:merge")
}

// resolveAlias follows alias nodes to the node they stand for.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 1000; i++ {
		n = n.Alias
	}
	return n
}

func position(n *yaml.Node) string {
	if n.Line == 0 {
		return "an unknown position"
	}
	return fmt.Sprintf("line %d, column %d", n.Line, n.Column)
}

func joinPath(path, elem string) string {
	if path == "" {
		return elem
	}
	return path + "." + elem
}

// decodeInto decodes n into a new zero value of type t and returns yaml.v3's
// error, cleaned of its "yaml: unmarshal errors:" and "line N:" prefixes.
func decodeInto(n *yaml.Node, t reflect.Type) error {
	return decodeValue(n, reflect.New(t).Interface())
}

func decodeValue(n *yaml.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot decode %s: %v", describe(n), r)
		}
	}()
	if err := n.Decode(v); err != nil {
		return errors.New(cleanError(err))
	}
	return nil
}

var lineRE = regexp.MustCompile(`^line \d+: `)

// cleanError strips yaml.v3's prefixes from err's text.
func cleanError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = lineRE.ReplaceAllString(e, "")
		}
		return strings.Join(msgs, "; ")
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return lineRE.ReplaceAllString(msg, "")
}

// expectation names what a value of type t looks like in YAML.
func expectation(t reflect.Type) string {
	if t == durationType {
		return "a duration (like 30s)"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a value of type " + t.String()
}

// describe names what node n is, for messages.
func describe(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
	default:
		return "a node"
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 40 {
		v = string([]rune(v)[:37]) + "..."
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean (" + v + ")"
	case "!!int":
		return "an integer (" + v + ")"
	case "!!float":
		return "a number (" + v + ")"
	case "!!str":
		return fmt.Sprintf("a string (%q)", v)
	case "!!timestamp":
		return "a timestamp (" + v + ")"
	case "!!binary":
		return "binary data"
	default:
		return fmt.Sprintf("a %s value (%q)", tag, v)
	}
}

// structInfo is what Check needs to know about a struct type.
type structInfo struct {
	fields       map[string]reflect.Type // yaml key -> field type, inlined structs flattened
	keys         []string                // keys in declaration order
	hasInlineMap bool
	inlineMap    reflect.Type // element type of the ",inline" map
	open         bool         // an inlined yaml.Unmarshaler may take any key
}

var structInfoCache sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) (*structInfo, error) {
	if v, ok := structInfoCache.Load(t); ok {
		return v.(*structInfo), nil
	}
	info, err := buildStructInfo(t, make(map[reflect.Type]bool))
	if err != nil {
		return nil, err
	}
	structInfoCache.Store(t, info)
	return info, nil
}

// buildStructInfo mirrors yaml.v3's getStructInfo.
func buildStructInfo(t reflect.Type, building map[reflect.Type]bool) (*structInfo, error) {
	if building[t] {
		return nil, fmt.Errorf("struct %s inlines itself", t)
	}
	building[t] = true
	defer delete(building, t)

	info := &structInfo{fields: make(map[string]reflect.Type)}
	add := func(key string, ft reflect.Type) error {
		if _, dup := info.fields[key]; dup {
			return fmt.Errorf("duplicated key '%s' in struct %s", key, t)
		}
		info.fields[key] = ft
		info.keys = append(info.keys, key)
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue // unexported
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		inline := false
		parts := strings.Split(tag, ",")
		for _, flag := range parts[1:] {
			switch flag {
			case "omitempty", "flow":
			case "inline":
				inline = true
			default:
				return nil, fmt.Errorf("unsupported flag %q in tag %q of type %s", flag, tag, t)
			}
		}
		if !inline {
			name := parts[0]
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if err := add(name, f.Type); err != nil {
				return nil, err
			}
			continue
		}
		switch f.Type.Kind() {
		case reflect.Map:
			if info.hasInlineMap {
				return nil, fmt.Errorf("multiple ,inline maps in struct %s", t)
			}
			if f.Type.Key() != stringType {
				return nil, fmt.Errorf("option ,inline needs a map with string keys in struct %s", t)
			}
			info.hasInlineMap, info.inlineMap = true, f.Type.Elem()
		case reflect.Struct, reflect.Pointer:
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() != reflect.Struct {
				return nil, errors.New("option ,inline may only be used on a struct or map field")
			}
			if reflect.PointerTo(ft).Implements(unmarshalerType) {
				info.open = true
				continue
			}
			sub, err := buildStructInfo(ft, building)
			if err != nil {
				return nil, err
			}
			info.open = info.open || sub.open
			for _, k := range sub.keys {
				if err := add(k, sub.fields[k]); err != nil {
					return nil, err
				}
			}
		default:
			return nil, errors.New("option ,inline may only be used on a struct or map field")
		}
	}
	return info, nil
}

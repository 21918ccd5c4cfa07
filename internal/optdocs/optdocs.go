// Package optdocs documents stage options from one source: the options structs that the
// decoder fills. Names, types and defaults come from the structs by reflection; the text
// comes from the fields' doc comments, extracted from the source by `go generate` into
// docs.json (embedded). A test fails when docs.json is stale or a field has no comment.
package optdocs

//go:generate go run ./gen

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode"
)

//go:embed docs.json
var docsJSON []byte

var docs = func() map[string]string {
	m := map[string]string{}
	if err := json.Unmarshal(docsJSON, &m); err != nil {
		panic("optdocs: corrupt docs.json: " + err.Error())
	}
	return m
}()

// Key is the docs.json key of a struct field: "<package path>.<Type>.<Field>".
func Key(t reflect.Type, field string) string {
	return t.PkgPath() + "." + t.Name() + "." + field
}

// Option is one documented option.
type Option struct {
	Path    string `json:"path"` // dot path of YAML keys (e.g. "optimizer.lr")
	Type    string `json:"type"`
	Default string `json:"default"`
	Doc     string `json:"doc"`
}

// Describe lists the options of an options struct (a pointer filled with defaults, as a
// stage's NewOptions returns it), nested structs flattened into dot paths.
func Describe(opts any) []Option {
	var out []Option
	describe(reflect.ValueOf(opts), "", &out)
	return out
}

func describe(v reflect.Value, prefix string, out *[]Option) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v = reflect.New(v.Type().Elem())
		}
		v = v.Elem()
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fv := v.Field(i)
		o := Option{Path: prefix + name, Type: typeName(f.Type), Doc: yamlNames(docs[Key(t, f.Name)], t)}
		inner := f.Type
		if inner.Kind() == reflect.Pointer {
			inner = inner.Elem()
		}
		if tn, ok := reflect.New(inner).Interface().(interface{ OptionType() string }); ok {
			o.Type = tn.OptionType() // a type that decodes itself says what it accepts
		}
		if inner.Kind() == reflect.Struct && !implementsUnmarshaler(inner) {
			o.Type = "mapping"
			*out = append(*out, o)
			describe(fv, prefix+name+".", out)
			continue
		}
		o.Default = defaultString(fv)
		if d, ok := f.Tag.Lookup("default"); ok && fv.IsZero() {
			o.Default = d // the value the zero value stands for
		}
		*out = append(*out, o)
	}
}

// yamlNames replaces, in a field's doc comment, the Go names of t's fields (a comment
// starts with its field's Go name: "MovingAverage, when > 0, ...") by their YAML keys, the
// names a config uses ("moving_average, when > 0, ...").
func yamlNames(doc string, t reflect.Type) string {
	if doc == "" {
		return doc
	}
	names := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && key != "" && key != "-" {
			names[f.Name] = key
		}
	}
	var b strings.Builder
	word := func(w string) {
		if key, ok := names[w]; ok {
			w = key
		}
		b.WriteString(w)
	}
	start := -1
	for i, r := range doc {
		isWord := r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case isWord && start < 0:
			start = i
		case !isWord && start >= 0:
			word(doc[start:i])
			start = -1
		}
		if !isWord {
			b.WriteRune(r)
		}
	}
	if start >= 0 {
		word(doc[start:])
	}
	return b.String()
}

// implementsUnmarshaler reports whether *t decodes itself from YAML (either of yaml.v3's
// Unmarshaler signatures): such a struct is one option, not a mapping of options.
func implementsUnmarshaler(t reflect.Type) bool {
	_, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return ok
}

// enum is what option types with a fixed set of spellings implement (the decoder checks
// them too).
type enum interface{ Values() []string }

// typeName is how the option reference names a type: an enum by its values
// ("static | dynamic"), other types by their YAML kind.
func typeName(t reflect.Type) string {
	if t.Kind() != reflect.Pointer && t.Implements(reflect.TypeFor[enum]()) {
		return strings.Join(reflect.Zero(t).Interface().(enum).Values(), " | ")
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "mapping of " + typeName(t.Key()) + " to " + typeName(t.Elem())
	case reflect.Struct:
		return "mapping"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Interface:
		return "any"
	}
	return t.Kind().String()
}

func defaultString(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			if v.Kind() == reflect.Map {
				return "{}"
			}
			return "[]"
		}
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	return string(b)
}

package yamlx

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type badTag struct {
	A int `yaml:"a,bogus"`
}

type level struct{}

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low", "high":
		return nil
	}
	return errors.New("level must be low or high")
}

type oldStyle struct{}

func (*oldStyle) UnmarshalYAML(func(any) error) error { return nil }

type withInlineUnmarshaler struct {
	Name    string `yaml:"name"`
	QCustom `yaml:",inline"`
}

type withInlinePointer struct {
	*QRuntime `yaml:",inline"`
	Name      string `yaml:"name"`
}

type misc struct {
	Levels []level               `yaml:"levels"`
	Old    oldStyle              `yaml:"old"`
	Open   withInlineUnmarshaler `yaml:"open"`
	Ptr    withInlinePointer     `yaml:"ptr"`
	PP     **QCalib              `yaml:"pp"`
	Any    map[string]any        `yaml:"any"`
	List   []any                 `yaml:"list"`
	Bytes  []byte                `yaml:"bytes"`
	Matrix [][2]float32          `yaml:"matrix"`
	Small  int8                  `yaml:"small"`
	Old2   *oldStyle             `yaml:"old2"`
	Nested map[string][]QCalib   `yaml:"nested"`
}

func TestCheckMisc(t *testing.T) {
	miscType := reflect.TypeOf(misc{})
	tests := []struct {
		name string
		src  string
		typ  reflect.Type
		want []string
	}{
		{
			name: "text unmarshalers decode scalars",
			src:  "levels: [low, high, medium]\n",
			want: []string{"1:21 levels.2: level must be low or high"},
		},
		{
			name: "old-style unmarshalers accept anything",
			src:  "old: [1, 2]\nold2: {a: b}\n",
		},
		{
			name: "inline unmarshaler takes unknown keys",
			src:  "open: {name: x, anything: 1}\n",
		},
		{
			name: "inline struct pointer",
			src:  "ptr: {name: x, threads: 2, thread: 3}\n",
			want: []string{`1:28 ptr.thread: unknown field "thread" (did you mean "threads"?)`},
		},
		{
			name: "pointer to pointer to struct",
			src:  "pp: {method: m, samples: x}\n",
			want: []string{"1:26 pp.samples: cannot unmarshal !!str `x` into int"},
		},
		{
			name: "interfaces take anything",
			src:  "any: {a: [1, {b: c}], d: ~}\nlist: [1, a, {b: [c]}]\n",
		},
		{
			name: "yaml.v3 decodes no scalar into []byte, not even !!binary",
			src:  "bytes: !!binary aGVsbG8=\n---\n",
			want: []string{"1:8 bytes: cannot unmarshal !!binary `aGVsbG8=` into []uint8"},
		},
		{
			name: "bytes from a list",
			src:  "bytes: [1, 2, 300]\n",
			want: []string{"1:15 bytes.2: cannot unmarshal !!int `300` into uint8"},
		},
		{
			name: "bytes not from a string",
			src:  "bytes: hello\n",
			want: []string{`1:8 bytes: expected a list, got a string ("hello")`},
		},
		{
			name: "nested lists and arrays",
			src:  "matrix: [[1, 2], [3], {a: 1}, [x, 1]]\nsmall: 300\n",
			want: []string{
				"1:18 matrix.1: expected a list of 2 items, got 1",
				"1:23 matrix.2: expected a list, got a mapping",
				"1:32 matrix.3.0: cannot unmarshal !!str `x` into float32",
				"2:8 small: cannot unmarshal !!int `300` into int8",
			},
		},
		{
			// yaml.v3 decodes both without an error: 2.5 truncated to 2, and a NaN
			// that every range check lets through.
			name: "fractions into integers, NaN into numbers",
			src:  "small: 2.5\nmatrix: [[1.5, .nan], [-.inf, 2]]\n",
			want: []string{
				"1:8 small: small: expected an integer, got a number (2.5)",
				"2:16 matrix.0.1: matrix.0.1: expected a number, got NaN (.nan)",
			},
		},
		{
			name: "integral numbers into integers",
			src:  "small: 2.0\npp: {samples: 1e3}\n",
		},
		{
			name: "map of lists of structs",
			src:  "nested:\n  a:\n    - {method: x, smaples: 3}\n  b: {method: y}\n",
			want: []string{
				`3:19 nested.a.0.smaples: unknown field "smaples" (did you mean "samples"?)`,
				"4:6 nested.b: expected a list, got a mapping",
			},
		},
		{
			name: "null and odd keys",
			src:  "~: 1\n?\n: 3\nnested: {null: [], a: []}\nany: {~: 1}\nlist: [{~: 1}]\n",
			want: []string{
				`1:1 : a null key (~) is ignored by the YAML decoder; quote it if you mean a string`,
				`2:2 : an empty key is ignored by the YAML decoder; quote it if you mean a string`,
				`4:10 nested: a null key (null) is ignored by the YAML decoder; quote it if you mean a string`,
				`5:7 any: a null key (~) is ignored by the YAML decoder; quote it if you mean a string`,
			},
		},
		{
			name: "the empty string is a key, but names no field",
			src:  "\"\": 2\n",
			want: []string{
				`1:1 : unknown field "" (valid fields: levels, old, open, ptr, pp, any, list, bytes, matrix, small, old2, nested)`,
			},
		},
		{
			name: "struct tags yaml.v3 rejects",
			src:  "a: 1\n",
			typ:  reflect.TypeOf(badTag{}),
			want: []string{`1:1 : cannot check against yamlx.badTag: unsupported flag "bogus" in tag "a,bogus" of type yamlx.badTag`},
		},
		{
			name: "nil type checks only the shape of the YAML",
			src:  "a: 1\nb: [x, {c: 1, c: 2}]\na: 2\n",
			typ:  nil,
			want: []string{
				`2:15 b.1.c: duplicate key "c" (first defined at line 2, column 9)`,
				`3:1 a: duplicate key "a" (first defined at line 1, column 1)`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := tc.typ
			if typ == nil && tc.name != "nil type checks only the shape of the YAML" {
				typ = miscType
			}
			got := Check(parse(t, tc.src), typ, "")
			diffLines(t, format(got), tc.want)
			if typ == miscType {
				dec := yaml.NewDecoder(strings.NewReader(tc.src))
				dec.KnownFields(true)
				var v misc
				err := dec.Decode(&v)
				if (err == nil) != (len(got) == 0) && !(err == nil && onlyStricter(got)) {
					t.Errorf("Check found %d problems, yaml.v3 strict decoding says %v", len(got), err)
				}
			}
		})
	}
}

func TestCheckSubtree(t *testing.T) {
	doc := parse(t, "stages:\n  - quantize: {mode: int8, bitz: 4}\n")
	stage := Locate(doc, "stages.0")
	got := Check(stage, reflect.TypeOf(QStage{}), "stages.0")
	want := []string{`2:28 stages.0.quantize.bitz: unknown field "bitz" (valid fields: mode, per_channel, calibration)`}
	diffLines(t, format(got), want)

	if Check(nil, configType, "") != nil {
		t.Error("Check(nil) reported something")
	}
	if got := Check(&yaml.Node{}, configType, ""); got != nil {
		t.Errorf("Check(zero node) = %v", got)
	}
	// Diagnostics from Check work as an error with the file name set.
	err := Diagnostics(Check(parse(t, "runtime: {threads: x}\ncolour: 1\n"), configType, "")).WithFile("p.yaml").Err()
	wantErr := "p.yaml:1:20: cannot unmarshal !!str `x` into int\np.yaml:2:1: unknown field \"colour\""
	if err == nil || err.Error() != wantErr {
		t.Errorf("error:\n%v\nwant:\n%s", err, wantErr)
	}
}

package yamlx

import (
	"bytes"
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"
)

const setBase = `name: resnet
runtime:
  threads: 4
datasets:
  calib:
    path: data/calib
stages:
  - quantize:
      mode: int8
  - quantize
  - quantize:
  - save
`

// encode renders a document with a 2-space indent.
func encode(t testing.TB, n *yaml.Node) string {
	t.Helper()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b.String()
}

func TestSet(t *testing.T) {
	tests := []struct {
		name  string
		src   string // setBase when empty
		sets  [][2]string
		want  string // the whole document after the sets
		check func(t *testing.T, doc *yaml.Node)
	}{
		{
			name: "replace, create and extend",
			sets: [][2]string{
				{"runtime.threads", "8"},
				{"runtime.device", "cuda"},
				{"datasets.calib.limit", "64"},
				{"datasets.eval.path", "data/eval"},
				{"name", "'007'"},
			},
			want: `name: '007'
runtime:
  threads: 8
  device: cuda
datasets:
  calib:
    path: data/calib
    limit: 64
  eval:
    path: data/eval
stages:
  - quantize:
      mode: int8
  - quantize
  - quantize:
  - save
`,
		},
		{
			name: "all shapes of stage entries",
			sets: [][2]string{
				{"stages.0.quantize.per_channel", "false"},
				{"stages.1.quantize.mode", "int4"},
				{"stages.2.quantize.calibration.samples", "16"},
				{"stages.3.save.path", "out.onnx"},
			},
			want: `name: resnet
runtime:
  threads: 4
datasets:
  calib:
    path: data/calib
stages:
  - quantize:
      mode: int8
      per_channel: false
  - quantize:
      mode: int4
  - quantize:
      calibration:
        samples: 16
  - save:
      path: out.onnx
`,
		},
		{
			name: "flow values and replacing whole subtrees",
			sets: [][2]string{
				{"runtime", "{threads: 2, device: cpu}"},
				{"stages.3", "{verify: {tolerance: 0.01}}"},
				{"stages.1.quantize", "[1, 8]"},
				{"datasets.calib.path", ""},
			},
			want: `name: resnet
runtime: {threads: 2, device: cpu}
datasets:
  calib:
    path:
stages:
  - quantize:
      mode: int8
  - quantize: [1, 8]
  - quantize:
  - {verify: {tolerance: 0.01}}
`,
		},
		{
			name: "numeric keys in mappings are keys",
			src:  "limits:\n  1: 0.5\n",
			sets: [][2]string{{"limits.1", "0.7"}, {"limits.8", "0.9"}},
			want: "limits:\n  1: 0.7\n  8: 0.9\n",
		},
		{
			name: "empty and null documents",
			src:  "",
			sets: [][2]string{{"a.b", "1"}},
			want: "a:\n  b: 1\n",
		},
		{
			name: "null document",
			src:  "~\n",
			sets: [][2]string{{"a", "x"}},
			want: "a: x\n",
		},
		{
			name: "root list",
			src:  "- a\n- b\n",
			sets: [][2]string{{"1", "c"}, {"0.a", "1"}},
			want: "- a: 1\n- c\n",
		},
		{
			name: "merged keys are copied, anchors stay untouched",
			src: `base: &base
  limit: 5
  aug: {flip: true, crop: 3}
data:
  <<: *base
  path: x
`,
			sets: [][2]string{{"data.aug.flip", "false"}, {"data.limit", "6"}},
			want: `base: &base
  limit: 5
  aug: {flip: true, crop: 3}
data:
  !!merge <<: *base
  path: x
  aug: {flip: false, crop: 3}
  limit: 6
`,
			check: func(t *testing.T, doc *yaml.Node) {
				var v struct {
					Base map[string]any
					Data map[string]any
				}
				if err := doc.Decode(&v); err != nil {
					t.Fatal(err)
				}
				if v.Base["limit"] != 5 || v.Data["limit"] != 6 || v.Data["path"] != "x" {
					t.Errorf("decoded %v", v)
				}
			},
		},
		{
			name: "values reached through an alias are copied",
			src:  "a: &rt {threads: 1}\nb: *rt\nc: [*rt]\n",
			sets: [][2]string{{"b.threads", "2"}, {"c.0.device", "cpu"}},
			want: "a: &rt {threads: 1}\nb: {threads: 2}\nc: [{threads: 1, device: cpu}]\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if src == "" && tc.name != "empty and null documents" {
				src = setBase
			}
			doc := parse(t, src)
			for _, s := range tc.sets {
				if err := Set(doc, s[0], s[1]); err != nil {
					t.Fatalf("Set(%s, %s): %v", s[0], s[1], err)
				}
			}
			if got := encode(t, doc); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, doc)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct {
		path, value string
		want        string
	}{
		{"stages.7.quantize.mode", "int8", `--set stages.7.quantize.mode: the list "stages" has 4 entries`},
		{"runtime.threads.max", "1", `--set runtime.threads.max: "runtime.threads" holds an integer (4), not a mapping or a list`},
		{"stages.x.mode", "1", `--set stages.x.mode: "stages" is a list, and "x" is not an index`},
		{"stages.-1.mode", "1", `--set stages.-1.mode: "stages" is a list, and "-1" is not an index`},
		{"stages.+1.mode", "1", `--set stages.+1.mode: "stages" is a list, and "+1" is not an index`},
		{"stages.1.verify.tolerance", "1", `--set stages.1.verify.tolerance: "stages.1" holds a string ("quantize"), not a mapping or a list`},
		{"stages.3.quantize.mode", "1", `--set stages.3.quantize.mode: "stages.3" holds a string ("save"), not a mapping or a list`},
		{"name.first", "x", `--set name.first: "name" holds a string ("resnet"), not a mapping or a list`},
		{"", "1", `--set : empty path`},
		{"runtime..threads", "1", `--set runtime..threads: empty key in path`},
		{"runtime.threads", "[1,", `--set runtime.threads: invalid value "[1,": did not find expected node content`},
		{"runtime.<<", "{a: 1}", `--set runtime.<<: cannot set a "<<" merge key`},
		{"runtime.\xbd", "1", "--set runtime.\xbd: path is not valid UTF-8"},
		{"runtime.threads", "\xbd", "--set runtime.threads: invalid value \"\\xbd\": invalid leading UTF-8 octet"},
	}
	for _, tc := range tests {
		doc := parse(t, setBase)
		before := encode(t, doc)
		err := Set(doc, tc.path, tc.value)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Set(%q, %q) = %v\nwant %s", tc.path, tc.value, err, tc.want)
		}
		if after := encode(t, doc); after != before {
			t.Errorf("Set(%q, %q) failed but changed the document:\n%s", tc.path, tc.value, after)
		}
	}
	if err := Set(nil, "a", "1"); err == nil {
		t.Error("Set(nil) succeeded")
	}
	doc := parse(t, "- a\n")
	if err := Set(doc, "3", "x"); err == nil || err.Error() != "--set 3: the list at the document root has 1 entry" {
		t.Errorf("root list: %v", err)
	}
	doc = parse(t, "hello\n")
	if err := Set(doc, "a", "x"); err == nil || err.Error() != `--set a: the document holds a string ("hello"), not a mapping or a list` {
		t.Errorf("root scalar: %v", err)
	}
}

func TestSetPositions(t *testing.T) {
	doc := parse(t, setBase)
	for _, s := range [][2]string{{"runtime.threads", "many"}, {"runtime.devices", "[a, {b: c}]"}, {"stages.1.quantize.mode", "int4"}} {
		if err := Set(doc, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	pos := func(n *yaml.Node) [2]int {
		if n == nil {
			return [2]int{-1, -1}
		}
		return [2]int{n.Line, n.Column}
	}
	tests := []struct {
		path string
		key  bool
		want [2]int
	}{
		{"runtime.threads", true, [2]int{3, 3}},  // the key was untouched
		{"runtime.threads", false, [2]int{0, 0}}, // the value is new
		{"runtime.devices", true, [2]int{0, 0}},
		{"runtime.devices.1.b", false, [2]int{0, 0}},
		{"stages.1.quantize", true, [2]int{10, 5}}, // the bare string became the key
		{"stages.1.quantize.mode", false, [2]int{0, 0}},
		{"stages.0.quantize.mode", false, [2]int{9, 13}},
		{"name", false, [2]int{1, 7}},
	}
	for _, tc := range tests {
		var n *yaml.Node
		if tc.key {
			n = LocateKey(doc, tc.path)
		} else {
			n = Locate(doc, tc.path)
		}
		if got := pos(n); got != tc.want {
			t.Errorf("%s (key %v) at %v, want %v", tc.path, tc.key, got, tc.want)
		}
	}
	// Diagnostics about set values carry no position.
	got := format(Check(doc, configType, ""))
	want := []string{
		"0:0 runtime.threads: cannot unmarshal !!str `many` into int",
		`0:0 runtime.devices: unknown field "devices" (did you mean "device"?)`,
		`12:5 stages.3: expected a mapping, got a string ("save")`,
	}
	diffLines(t, got, want)
}

func TestLocate(t *testing.T) {
	doc := parse(t, `extra:
  base: &base {limit: 5, path: a}
  rt: &rt
    threads: 2
datasets:
  m:
    <<: *base
    path: b
runtime: *rt
stages:
  - quantize: {mode: int8}
  - save
`)
	tests := []struct {
		path string
		want string // "line:col kind value" or "nil"
	}{
		{"", "1:1 mapping "},
		{"extra.base.limit", "2:23 scalar 5"},
		{"datasets.m.limit", "2:23 scalar 5"}, // through the merge
		{"datasets.m.path", "8:11 scalar b"},  // own key wins
		{"runtime", "9:10 alias rt"},          // the alias as written
		{"runtime.threads", "4:14 scalar 2"},  // through the alias
		{"stages.0.quantize.mode", "11:22 scalar int8"},
		{"stages.1", "12:5 scalar save"},
		{"stages.1.save", "12:5 scalar save"}, // a bare stage entry
		{"stages.1.save.path", "nil"},
		{"stages.2", "nil"},
		{"stages.-1", "nil"},
		{"stages.x", "nil"},
		{"runtime.threads.x", "nil"},
		{"nope", "nil"},
		{"datasets.m.nope", "nil"},
		{"extra..base", "nil"},
	}
	kinds := map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list", yaml.ScalarNode: "scalar", yaml.AliasNode: "alias"}
	for _, tc := range tests {
		n := Locate(doc, tc.path)
		got := "nil"
		if n != nil {
			got = fmt.Sprintf("%d:%d %s %s", n.Line, n.Column, kinds[n.Kind], n.Value)
		}
		if got != tc.want {
			t.Errorf("Locate(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if k := LocateKey(doc, "datasets.m.limit"); k == nil || k.Line != 2 || k.Column != 16 {
		t.Errorf("LocateKey through merge = %+v", k)
	}
	if Locate(nil, "a") != nil || Locate(&yaml.Node{Kind: yaml.DocumentNode}, "") != nil {
		t.Error("Locate on empty input found something")
	}
}

package yamlx

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var configType = reflect.TypeOf(QConfig{})

// parse parses src into a document node or fails the test.
func parse(t testing.TB, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return &doc
}

// format renders diagnostics as "line:col path: msg" lines for comparison.
func format(ds []Diagnostic) []string {
	var out []string
	for _, d := range ds {
		s := fmt.Sprintf("%d:%d %s: %s", d.Line, d.Col, d.Path, d.Msg)
		if d.Warning {
			s += " (warning)"
		}
		out = append(out, s)
	}
	return out
}

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// strictDecode decodes src the way Check claims to predict: yaml.v3 with
// KnownFields(true) straight from the bytes.
func strictDecode(src string) error {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	var v QConfig
	return dec.Decode(&v)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "valid config",
			src: `
name: resnet
version: 2
runtime:
  threads: 4
  device: cuda
  deterministic: true
  seed: 42
datasets:
  calib:
    path: data/calib
    limit: 512
    shuffle: false
    normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
stages:
  - quantize:
      mode: int8
      per_channel: true
      calibration: {method: percentile, percentile: 99.99, samples: 64}
  - verify:
      tolerance: 1e-3
      metrics: [top1, top5]
tags: [a, b]
extra: {anything: [goes, {here: 1}]}
owner: me
labels: {team: vision}
shape: [224, 224]
timeout: 90s
custom: [1, {x: 2}]
raw: {whatever: [1, 2]}
plugins:
  - {kind: prune, ratio: 3, steps: 10}
limits: {1: 0.5, 8: 0.9}
env: {HOME: /root, EMPTY: ~}
`,
		},
		{
			name: "empty document",
			src:  "",
		},
		{
			name: "null values are fine everywhere",
			src:  "name: ~\nruntime:\ndatasets: {calib: null}\nstages: [~, {quantize: }]\nshape: null\n",
		},
		{
			name: "misspelt key two levels down",
			src: `stages:
  - quantize:
      mode: int8
      calibration:
        method: percentile
        percentle: 99.9
`,
			want: []string{`6:9 stages.0.quantize.calibration.percentle: unknown field "percentle" (did you mean "percentile"?)`},
		},
		{
			name: "unknown key lists the valid fields",
			src:  "runtime:\n  gpu: true\n",
			want: []string{`2:3 runtime.gpu: unknown field "gpu" (valid fields: threads, device, deterministic, seed)`},
		},
		{
			name: "untagged field is lower case, yaml:- and unexported are not fields",
			src:  "runtime: {Threads: 4}\nsecret: x\nprivate: 1\n",
			want: []string{
				`1:11 runtime.Threads: unknown field "Threads" (did you mean "threads"?)`,
				`2:1 secret: unknown field "secret"`,
				`3:1 private: unknown field "private"`,
			},
		},
		{
			name: "inline struct",
			src:  "owner: me\nlabels: {team: a}\nownr: you\n",
			want: []string{`3:1 ownr: unknown field "ownr" (did you mean "owner"?)`},
		},
		{
			name: "map of structs",
			src: `datasets:
  calib:
    path: x
    limt: 5
  eval:
    path: y
    limit: -1
    normalize: {mean: [a], stdev: [1]}
`,
			want: []string{
				`4:5 datasets.calib.limt: unknown field "limt" (did you mean "limit"?)`,
				"7:12 datasets.eval.limit: cannot unmarshal !!int `-1` into uint",
				"8:24 datasets.eval.normalize.mean.0: cannot unmarshal !!str `a` into float64",
				`8:28 datasets.eval.normalize.stdev: unknown field "stdev" (did you mean "std"?)`,
			},
		},
		{
			name: "list of structs",
			src: `stages:
  - quantize: {mode: int8}
  - verify:
      tolerence: 0.1
      metrics: top1
  - save: {}
`,
			want: []string{
				`4:7 stages.1.verify.tolerence: unknown field "tolerence" (did you mean "tolerance"?)`,
				`5:16 stages.1.verify.metrics: expected a list, got a string ("top1")`,
				`6:5 stages.2.save: unknown field "save" (valid fields: quantize, verify)`,
			},
		},
		{
			name: "wrong types at the value position",
			src: `name: [a, b]
runtime:
  threads: four
  deterministic: maybe
  seed: -3
stages: {quantize: {}}
tags: {a: 1}
shape: [1, 2, 3]
timeout: 10 parsecs
owner: {first: a}
`,
			want: []string{
				"1:7 name: expected a string, got a list",
				"3:12 runtime.threads: cannot unmarshal !!str `four` into int",
				"4:18 runtime.deterministic: cannot unmarshal !!str `maybe` into bool",
				"5:9 runtime.seed: cannot unmarshal !!int `-3` into uint64",
				"6:9 stages: expected a list, got a mapping",
				"7:7 tags: expected a list, got a mapping",
				"8:8 shape: expected a list of 2 items, got 3",
				"9:10 timeout: cannot unmarshal !!str `10 parsecs` into time.Duration",
				"10:8 owner: expected a string, got a mapping",
			},
		},
		{
			name: "scalar where a mapping is expected",
			src:  "runtime: 5\ndatasets: calib\nstages: [quantize]\n",
			want: []string{
				"1:10 runtime: expected a mapping, got an integer (5)",
				`2:11 datasets: expected a mapping, got a string ("calib")`,
				`3:10 stages.0: expected a mapping, got a string ("quantize")`,
			},
		},
		{
			name: "duplicate keys",
			src:  "name: a\nruntime:\n  threads: 1\n  threads: 2\nname: b\nlabels: {x: 1, x: 2}\n",
			want: []string{
				`4:3 runtime.threads: duplicate key "threads" (first defined at line 3, column 3)`,
				`5:1 name: duplicate key "name" (first defined at line 1, column 1)`,
				`6:16 labels.x: duplicate key "x" (first defined at line 6, column 10)`,
			},
		},
		{
			name: "duplicate keys through an alias",
			src:  "extra:\n  k: &k path\ndatasets:\n  a: {*k : x, path: y}\n",
			want: []string{`4:15 datasets.a.path: duplicate key "path", written through an alias (first defined at line 4, column 7)`},
		},
		{
			name: "duplicate keys inside any",
			src:  "extra:\n  a: 1\n  b: [{c: 1, c: 2}]\n  a: 3\n",
			want: []string{
				`3:14 extra.b.0.c: duplicate key "c" (first defined at line 3, column 8)`,
				`4:3 extra.a: duplicate key "a" (first defined at line 2, column 3)`,
			},
		},
		{
			name: "merge keys",
			src: `extra:
  base: &base {path: data, limit: 10, shuffle: true}
  bad: &bad {path: data, limitt: 10}
  list: &list {limit: nope}
datasets:
  a: {<<: *base, limit: 20}
  b:
    <<: *bad
    path: other
  c:
    <<: [*base, *list]
  d:
    <<: [*list, *base]
  e:
    <<: {limit: 3, pth: x}
`,
			want: []string{
				`3:26 datasets.b.limitt: unknown field "limitt" (did you mean "limit"?)`,
				"4:23 datasets.d.limit: cannot unmarshal !!str `nope` into uint",
				`15:20 datasets.e.pth: unknown field "pth" (did you mean "path"?)`,
			},
		},
		{
			name: "merge keys of the wrong shape",
			src:  "extra:\n  s: &s hello\ndatasets:\n  a: {<<: *s}\n  b: {<<: [*s, {path: x}]}\n  c: {<<: 3}\n",
			want: []string{
				`4:11 datasets.a: a "<<" merge key needs a mapping or a list of mappings, got a string ("hello")`,
				`5:12 datasets.b: a "<<" merge key needs a mapping or a list of mappings, got a list holding a string ("hello")`,
				`6:11 datasets.c: a "<<" merge key needs a mapping or a list of mappings, got an integer (3)`,
			},
		},
		{
			name: "nested merges and merge cycles are followed once",
			src: `extra:
  a: &a {path: x}
  b: &b {<<: *a, limit: 1, shufle: true}
datasets:
  d: {<<: *b}
`,
			want: []string{`3:28 datasets.d.shufle: unknown field "shufle" (did you mean "shuffle"?)`},
		},
		{
			name: "aliases",
			src: `extra:
  rt: &rt {threads: 2, gpus: 1}
  n: &n twelve
runtime: *rt
tags: *rt
version: *n
`,
			want: []string{
				`2:24 runtime.gpus: unknown field "gpus" (valid fields: threads, device, deterministic, seed)`,
				"5:7 tags: expected a list, got a mapping",
				"6:10 version: cannot unmarshal !!str `twelve` into int",
			},
		},
		{
			name: "alias to itself",
			src:  "extra: &x [1, *x]\n",
			want: []string{"1:15 extra.1: alias *x refers to a value that contains it"},
		},
		{
			name: "merge of an enclosing mapping",
			src:  "datasets:\n  a: &a\n    path: x\n    <<: *a\n",
			want: []string{"4:9 datasets.a: alias *a refers to a value that contains it"},
		},
		{
			name: "alias used twice, reported once",
			src:  "extra:\n  q: &q {mode: int8, bits: 4}\nstages:\n  - quantize: *q\n  - quantize: *q\n",
			want: []string{`2:22 stages.0.quantize.bits: unknown field "bits" (valid fields: mode, per_channel, calibration)`},
		},
		{
			name: "self-validating types accept anything",
			src:  "custom: {a: [1, 2]}\nraw: [x, {y: z}]\nextra: !!binary aGVsbG8=\n",
		},
		{
			name: "inline map takes unknown keys, with its value type",
			src:  "plugins:\n  - kind: prune\n    ratio: 3\n    steps: many\n",
			want: []string{"4:12 plugins.0.steps: cannot unmarshal !!str `many` into int"},
		},
		{
			name: "map keys decode into the key type",
			src:  "limits: {1: 0.5, two: 1, 3: x}\n",
			want: []string{
				"1:18 limits.two: invalid key: cannot unmarshal !!str `two` into int",
				"1:29 limits.3: cannot unmarshal !!str `x` into float64",
			},
		},
		{
			name: "keys must be scalars",
			src:  "datasets:\n  ? [a, b]\n  : {path: x}\n",
			want: []string{"2:5 datasets: a mapping key must be a scalar, got a list"},
		},
		{
			name: "tagged scalars",
			src:  "name: !!int 3\nversion: !!str 3\nextra: !!int three\n",
			want: []string{
				"2:10 version: cannot unmarshal !!str `3` into int",
				"3:8 extra: cannot decode !!str `three` as a !!int",
			},
		},
		{
			name: "several errors at once, in position order",
			src: `runtime:
  threads: x
  devise: cpu
stages:
  - quantize: {mode: int8, per_chanel: true}
  - verify: {tolerance: high}
colour: red
shape: [1, two]
`,
			want: []string{
				"2:12 runtime.threads: cannot unmarshal !!str `x` into int",
				`3:3 runtime.devise: unknown field "devise" (did you mean "device"?)`,
				`5:28 stages.0.quantize.per_chanel: unknown field "per_chanel" (did you mean "per_channel"?)`,
				"6:25 stages.1.verify.tolerance: cannot unmarshal !!str `high` into float64",
				`7:1 colour: unknown field "colour"`,
				"8:12 shape.1: cannot unmarshal !!str `two` into int",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := parse(t, tc.src)
			got := Check(doc, configType, "")
			diffLines(t, format(got), tc.want)
			// Check must agree with yaml.v3's strict decoding on whether
			// the document is valid.
			err := strictDecode(tc.src)
			if err != nil && err.Error() == "EOF" {
				err = nil
			}
			if (err == nil) != (len(got) == 0) {
				t.Errorf("Check found %d problems, yaml.v3 strict decoding says %v", len(got), err)
			}
		})
	}
}

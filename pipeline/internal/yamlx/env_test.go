package yamlx

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{
		"N":        "4",
		"R":        "0.5",
		"B":        "true",
		"DATA_DIR": "/mnt/data",
		"EMPTY":    "",
		"WORDS":    "two words",
		"COLON":    "a: b",
	}
	tests := []struct {
		name string
		src  string
		want any // the document decoded into an any after expansion
		diag []string
	}{
		{
			name: "plain scalars are re-resolved",
			src:  "threads: ${N}\nratio: ${R}\nflag: ${B}\nword: ${WORDS}\ncolon: ${COLON}\n",
			want: map[string]any{"threads": 4, "ratio": 0.5, "flag": true, "word": "two words", "colon": "a: b"},
		},
		{
			name: "quoted, block and tagged scalars stay strings",
			src:  "dq: \"${N}\"\nsq: '${N}'\ntagged: !!str ${N}\nblock: |\n  ${N}\n",
			want: map[string]any{"dq": "4", "sq": "4", "tagged": "4", "block": "4\n"},
		},
		{
			name: "defaults",
			src:  "a: ${DATA_DIR:-/data}/calib\nb: ${MISSING:-/data}/calib\nc: ${MISSING:-}\nd: \"${MISSING:-}\"\ne: ${EMPTY:-fallback}\nf: ${MISSING:-8}\ng: ${MISSING:-a b:c {d}\n",
			want: map[string]any{"a": "/mnt/data/calib", "b": "/data/calib", "c": nil, "d": "", "e": "fallback", "f": 8, "g": "a b:c {d"},
		},
		{
			name: "escapes and lone dollars",
			src:  "a: $$5\nb: $${N}\nc: $$${N}\nd: $HOME\ne: cost$\nf: a$b${N}\n",
			want: map[string]any{"a": "$5", "b": "${N}", "c": "$4", "d": "$HOME", "e": "cost$", "f": "a$b4"},
		},
		{
			name: "a plain ${VAR} is fine in block style; quote it inside [] and {}",
			src:  "a: [\"${N}\", '${N}x']\nb: {c: \"${R}\"}\n",
			want: map[string]any{"a": []any{"4", "4x"}, "b": map[string]any{"c": "0.5"}},
		},
		{
			name: "set but empty variable",
			src:  "a: ${EMPTY}\nb: \"x${EMPTY}y\"\n",
			want: map[string]any{"a": nil, "b": "xy"},
		},
		{
			name: "keys are not expanded, nested values are",
			src:  "${N}: key\nlist:\n  - ${N}\n  - \"${N}\"\n  - deep: ${B}\n  - [\"${N}\", '${N}']\n",
			want: map[string]any{"${N}": "key", "list": []any{4, "4", map[string]any{"deep": true}, []any{"4", "4"}}},
		},
		{
			name: "anchored values are expanded once, where written",
			src:  "a: &x ${N}\nb: *x\nc:\n  <<:\n    d: ${N}\n",
			want: map[string]any{"a": 4, "b": 4, "c": map[string]any{"d": 4}},
		},
		{
			name: "unset variables and malformed references are all reported",
			src: `a: ${DATA_DIR}/x
b: ${UNSET_ONE}/${UNSET_TWO}
c:
  - ${N
  - ${}
  - ${1X}
  - ${A:x}
  - ok ${N}
`,
			want: map[string]any{
				"a": "/mnt/data/x",
				"b": "${UNSET_ONE}/${UNSET_TWO}",
				"c": []any{"${N", "${}", "${1X}", "${A:x}", "ok 4"},
			},
			diag: []string{
				`2:4 b: environment variable "UNSET_ONE" is not set (use ${UNSET_ONE:-default} to give a default)`,
				`2:4 b: environment variable "UNSET_TWO" is not set (use ${UNSET_TWO:-default} to give a default)`,
				`4:5 c.0: malformed variable reference "${N": missing closing "}"`,
				`5:5 c.1: malformed variable reference "${}": empty variable name`,
				`6:5 c.2: malformed variable reference "${1X}": invalid variable name "1X"`,
				`7:5 c.3: malformed variable reference "${A:x}": invalid variable name "A:x" (use ${A:-x} to give a default)`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := parse(t, tc.src)
			diags := ExpandEnv(doc, lookupFrom(env))
			diffLines(t, format(diags), tc.diag)
			var got any
			if err := doc.Decode(&got); err != nil {
				t.Fatalf("decode after expansion: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestExpandEnvThenCheck(t *testing.T) {
	doc := parse(t, "runtime:\n  threads: ${N}\n  device: ${DEV:-cpu}\ndatasets:\n  calib:\n    limit: ${LIMIT}\n")
	diags := ExpandEnv(doc, lookupFrom(map[string]string{"N": "8", "LIMIT": "many"}))
	diags = append(diags, Check(doc, configType, "")...)
	want := []string{"6:12 datasets.calib.limit: cannot unmarshal !!str `many` into uint"}
	diffLines(t, format(diags), want)
	var cfg QConfig
	if err := doc.Decode(&cfg); err == nil || cfg.Runtime.Threads != 8 || cfg.Runtime.Device != "cpu" {
		t.Errorf("decode: %v, %+v", err, cfg.Runtime)
	}
}

func TestExpandEnvDefaultLookup(t *testing.T) {
	t.Setenv("YAMLX_TEST_VAR", "42")
	doc := parse(t, "v: ${YAMLX_TEST_VAR}\n")
	if diags := ExpandEnv(doc, nil); diags != nil {
		t.Fatalf("diags: %v", diags)
	}
	var got struct{ V int }
	if err := doc.Decode(&got); err != nil || got.V != 42 {
		t.Errorf("got %v, %v", got, err)
	}
	if ExpandEnv(nil, nil) != nil {
		t.Error("ExpandEnv(nil) reported something")
	}
	// A binary scalar is left alone.
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!binary", Value: "${X}"}
	if diags := ExpandEnv(n, nil); diags != nil || n.Value != "${X}" {
		t.Errorf("binary: %v %q", diags, n.Value)
	}
}

// A fallback gives a default to a variable that is not set and has none in the text; its
// error is shown once, at the first reference; a variable it has no default for gets the
// usual message.
func TestExpandEnvDefaults(t *testing.T) {
	doc := parse(t, "a: ${DATA}/x.gz\nb: ${DATA:-here}/y.gz\nc: ${DATA}/z.gz\nd: ${OTHER}\n")
	fallback := func(name string) (string, bool, error) {
		if name == "DATA" {
			return "/cache/data", true, nil
		}
		return "", false, nil
	}
	diags := ExpandEnvDefaults(doc, lookupFrom(nil), fallback)
	if len(diags) != 1 || !strings.Contains(diags[0].Msg, `"OTHER" is not set (use ${OTHER:-default}`) {
		t.Errorf("diagnostics: %v", diags)
	}
	m := doc.Content[0].Content
	if m[1].Value != "/cache/data/x.gz" || m[3].Value != "here/y.gz" || m[5].Value != "/cache/data/z.gz" {
		t.Errorf("values: %s %s %s", m[1].Value, m[3].Value, m[5].Value)
	}
	doc = parse(t, "a: ${DATA}/x.gz\nc: ${DATA}/z.gz\n")
	failing := func(string) (string, bool, error) {
		return "", true, errors.New("not in the cache; set it: export DATA=...")
	}
	diags = ExpandEnvDefaults(doc, lookupFrom(nil), failing)
	if len(diags) != 2 || diags[0].Msg != `environment variable "DATA" is not set: not in the cache; set it: export DATA=...` ||
		diags[1].Msg != `environment variable "DATA" is not set` {
		t.Errorf("diagnostics: %v", diags)
	}
}

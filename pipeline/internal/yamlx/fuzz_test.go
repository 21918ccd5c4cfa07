package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var fuzzSeeds = []string{
	setBase,
	"stages:\n  - quantize:\n      calibration: {percentle: 99.9}\n  - verify: {tolerance: x}\n",
	"extra:\n  base: &base {path: data, limitt: 10}\ndatasets:\n  a: {<<: *base, limit: 20}\n  b: {<<: [*base, {shuffle: yes}]}\n",
	"extra: &x [1, *x]\n",
	"datasets:\n  a: &a\n    path: x\n    <<: *a\n",
	"runtime: &rt {threads: ${N}, device: \"${DEV:-cpu}\"}\ntags: *rt\nname: $${HOME}\n",
	"name: a\nname: b\n? [a, b]\n: 1\nlimits: {1: 0.5, two: 1}\n",
	"shape: [1, 2, 3]\ntimeout: 10s\ncustom: {a: 1}\nraw: [1]\nplugins: [{kind: k, x: 1, y: z}]\n",
	"--- !!map\n!!str name: !!int 3\n...\n",
	"a: &a {b: &b {c: *a}}\n<<: *b\n",
	"extra: {k: &k path, m: {*k : 1, path: 2}}\ndatasets: {d: {*k : x, path: y}}\n",
	"!!merge <<: {name: x}\n'<<': 1\n",
	"env: {A: &v ${A}, B: *v}\nlabels: {<<: [{a: b}, {c: d}]}\n",
}

// parseFuzz parses data into a document; ok is false for invalid YAML and
// for inputs that make yaml.v3 itself panic (not this package's business).
func parseFuzz(data []byte) (doc *yaml.Node, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	doc = new(yaml.Node)
	if err := yaml.Unmarshal(data, doc); err != nil {
		return nil, false
	}
	return doc, true
}

// strictFuzz decodes data with yaml.v3 and KnownFields(true); ok is false
// when yaml.v3 panics.
func strictFuzz(data []byte) (err error, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var v QConfig
	err = dec.Decode(&v)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err, true
}

// onlyStricter reports whether all of ds are problems that yaml.v3 lets
// pass silently (and Check reports on purpose).
func onlyStricter(ds []Diagnostic) bool {
	for _, d := range ds {
		if !strings.Contains(d.Msg, "is ignored by the YAML decoder") &&
			!strings.Contains(d.Msg, "written through an alias") &&
			!strings.Contains(d.Msg, "integer, got a number (") && // a fraction yaml.v3 truncates
			!strings.Contains(d.Msg, "got NaN (") && // yaml.v3 decodes NaN
			!strings.Contains(d.Msg, " is out of range for ") {
			return false
		}
	}
	return true
}

// sameTree reports whether a and b are equal node by node (aliases must
// point at the very same nodes).
func sameTree(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.Tag != b.Tag || a.Value != b.Value || a.Style != b.Style ||
		a.Anchor != b.Anchor || a.Alias != b.Alias || a.Line != b.Line || a.Column != b.Column ||
		len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !sameTree(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

var fuzzEnv = lookupFrom(map[string]string{"N": "4", "DEV": "cuda", "EMPTY": "", "S": "a: b"})

var fuzzSets = [][2]string{
	{"runtime.threads", "8"},
	{"stages.0.quantize.mode", "int8"},
	{"stages.1.verify", "{tolerance: 0.1}"},
	{"datasets.calib.limit", "[1, {x: y}]"},
	{"a.0.b", "~"},
	{"0.1", "x"},
}

// FuzzCheck parses arbitrary bytes as YAML and runs Check against the config
// test type: it must not panic, and it must agree with yaml.v3's strict
// decoding on whether the document is valid. ExpandEnv, Set and Locate run
// on the same document.
func FuzzCheck(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, ok := parseFuzz(data)
		if !ok {
			return
		}
		diags := Check(doc, configType, "")
		for i := 1; i < len(diags); i++ {
			if diags[i].before(diags[i-1]) {
				t.Fatalf("diagnostics out of order: %v", Diagnostics(diags))
			}
		}
		if err, ok := strictFuzz(data); ok && (err == nil) != (len(diags) == 0) &&
			!(err != nil && strings.Contains(err.Error(), "excessive aliasing")) &&
			!(err == nil && onlyStricter(diags)) {
			t.Fatalf("Check and yaml.v3 disagree:\nCheck: %v\nyaml.v3: %v", Diagnostics(diags), err)
		}
		_ = Check(doc, nil, "")
		_ = ExpandEnv(doc, fuzzEnv)
		_ = Check(doc, configType, "")

		for _, s := range fuzzSets {
			before := cloneTree(doc, false)
			if err := Set(doc, s[0], s[1]); err != nil {
				if !sameTree(before, doc) {
					t.Fatalf("Set(%s=%s) failed (%v) but changed the document", s[0], s[1], err)
				}
				continue
			}
			if n := Locate(doc, s[0]); n == nil {
				t.Fatalf("Set(%s=%s) succeeded but Locate finds nothing", s[0], s[1])
			}
		}
		_ = Check(doc, configType, "")
		_ = Locate(doc, "stages.0.quantize")
		_ = LocateKey(doc, "runtime.threads")
	})
}

// FuzzSet runs Set with an arbitrary document, path and value: it must not
// panic, must leave the document alone when it fails, and the value must be
// found at the path when it succeeds; a document yaml.v3 can encode must
// stay encodable.
func FuzzSet(f *testing.F) {
	for i, s := range fuzzSeeds {
		set := fuzzSets[i%len(fuzzSets)]
		f.Add([]byte(s), set[0], set[1])
	}
	f.Add([]byte(setBase), "stages.1.quantize.calibration.samples", "16")
	f.Add([]byte(setBase), "stages.3.save", "{path: x}")
	f.Add([]byte("a: &x {b: 1}\nc: *x\n"), "c.b", "2")
	f.Add([]byte("a: &x {b: 1}\nc: {<<: *x}\n"), "c.b.d", "[1, 2]")
	f.Fuzz(func(t *testing.T, data []byte, path, value string) {
		doc, ok := parseFuzz(data)
		if !ok {
			return
		}
		encodable := encodes(doc)
		before := cloneTree(doc, false)
		err := Set(doc, path, value)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--set "+path+": ") {
				t.Fatalf("error %q does not name the path", err)
			}
			if !sameTree(before, doc) {
				t.Fatalf("Set failed (%v) but changed the document", err)
			}
			return
		}
		n := Locate(doc, path)
		if n == nil {
			t.Fatalf("Set(%q, %q) succeeded but Locate finds nothing", path, value)
		}
		want, err := parseValue(value)
		if err != nil {
			t.Fatalf("Set accepted a value parseValue rejects: %v", err)
		}
		if n.Kind != want.Kind || n.Value != want.Value || n.Line != 0 {
			t.Fatalf("Locate(%q) = %s %q at %d, want %s %q at 0", path, fmt.Sprint(n.Kind), n.Value, n.Line, fmt.Sprint(want.Kind), want.Value)
		}
		if encodable && !encodes(doc) {
			t.Fatalf("document no longer encodes after Set(%q, %q)", path, value)
		}
		_ = Check(doc, configType, "")
	})
}

// encodes reports whether yaml.v3 can encode n without an error or panic.
func encodes(n *yaml.Node) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := yaml.Marshal(n)
	return err == nil
}

package onnxio

import (
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestDataTypeText(t *testing.T) {
	type rec struct {
		Type DataType `json:"type" yaml:"type"`
	}
	for _, dt := range []DataType{TypeUndefined, TypeFloat, TypeFloat16, TypeBFloat16, TypeInt8, TypeUint4, TypeFloat8E4M3FN, DataType(99)} {
		b, err := json.Marshal(rec{dt})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"type":"` + dt.String() + `"}`
		if string(b) != want {
			t.Errorf("%d: JSON %s, want %s", int32(dt), b, want)
		}
		var back rec
		if err := json.Unmarshal(b, &back); err != nil || back.Type != dt {
			t.Errorf("%s: JSON round trip gave %d (%v)", dt, int32(back.Type), err)
		}
		y, err := yaml.Marshal(rec{dt})
		if err != nil {
			t.Fatal(err)
		}
		var yback rec
		if err := yaml.Unmarshal(y, &yback); err != nil || yback.Type != dt {
			t.Errorf("%s: YAML round trip of %q gave %d (%v)", dt, y, int32(yback.Type), err)
		}
	}
	// Numbers, as JSON written before MarshalText and hand-written YAML hold.
	cases := []struct {
		json, yaml string
		want       DataType
	}{
		{`{"type":10}`, "type: 10", TypeFloat16},
		{`{"type":"float32"}`, "type: float32", TypeFloat},
		{`{"type":"BFLOAT16"}`, "type: bfloat16", TypeBFloat16},
		{`{"type":"16"}`, `type: "16"`, TypeBFloat16},
	}
	for _, c := range cases {
		var r, y rec
		if err := json.Unmarshal([]byte(c.json), &r); err != nil || r.Type != c.want {
			t.Errorf("JSON %s gave %s (%v), want %s", c.json, r.Type, err, c.want)
		}
		if err := yaml.Unmarshal([]byte(c.yaml), &y); err != nil || y.Type != c.want {
			t.Errorf("YAML %s gave %s (%v), want %s", c.yaml, y.Type, err, c.want)
		}
	}
	for _, bad := range []string{`{"type":"float17"}`, `{"type":true}`, `{"type":"-3"}`} {
		var r rec
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("JSON %s accepted as %s", bad, r.Type)
		}
	}
	var y rec
	if err := yaml.Unmarshal([]byte("type: float17"), &y); err == nil {
		t.Errorf("YAML float17 accepted as %s", y.Type)
	}
}

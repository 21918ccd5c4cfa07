package onnxio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MarshalText writes the type's name as String does ("float16", "int8"), so JSON, YAML and
// text encoders show the name rather than the enum number.
func (d DataType) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText writes, any name ParseDataType accepts, "undefined",
// and a decimal enum number ("10"), as older files hold.
func (d *DataType) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if t, err := ParseDataType(s); err == nil {
		*d = t
		return nil
	}
	if strings.EqualFold(s, "undefined") {
		*d = TypeUndefined
		return nil
	}
	num := s
	if inner, ok := strings.CutPrefix(strings.ToLower(s), "datatype("); ok {
		num = strings.TrimSuffix(inner, ")")
	}
	if n, err := strconv.ParseInt(num, 10, 32); err == nil && n >= 0 {
		*d = DataType(n)
		return nil
	}
	return fmt.Errorf("unknown element type %q", s)
}

// UnmarshalJSON reads a JSON string (as UnmarshalText) or a number, which JSON written
// before DataType had MarshalText holds.
func (d *DataType) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	var n int32
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("element type: %s is neither a name nor an enum number", b)
	}
	*d = DataType(n)
	return nil
}

package yamlx

import (
	"reflect"
	"testing"
	"time"
)

type integers struct {
	Int      int             `yaml:"int"`
	Int8     int8            `yaml:"int8"`
	Int64    int64           `yaml:"int64"`
	Uint     uint            `yaml:"uint"`
	Uint8    uint8           `yaml:"uint8"`
	Uint64   *uint64         `yaml:"uint64"`
	Sizes    []int           `yaml:"sizes"`
	Keyed    map[int]string  `yaml:"keyed"`
	Duration time.Duration   `yaml:"duration"`
	Float    float64         `yaml:"float"`
	Levels   map[string]uint `yaml:"levels"`
}

// TestCheckIntegers: yaml.v3 decodes a float into an integer field without an error,
// truncating a fraction (13.5 is 13) and turning one out of range, or negative for an
// unsigned type, into an arbitrary value (-2.5 into uint64 is 18446744073709551614).
// Check reports these at the value, naming the key; a float that is an integer in range
// is that integer, and what yaml.v3 refuses itself stays reported as before.
func TestCheckIntegers(t *testing.T) {
	typ := reflect.TypeOf(integers{})
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"int: 13.5\n", []string{"1:6 int: int: expected an integer, got a number (13.5)"}},
		{"int: -0.5\n", []string{"1:6 int: int: expected an integer, got a number (-0.5)"}},
		{"int8: 2.25\n", []string{"1:7 int8: int8: expected an integer, got a number (2.25)"}},
		{"int64: 1.5e0\n", []string{"1:8 int64: int64: expected an integer, got a number (1.5e0)"}},
		{"uint: 2.5\n", []string{"1:7 uint: uint: expected a non-negative integer, got a number (2.5)"}},
		{"uint: -2.5\n", []string{"1:7 uint: uint: expected a non-negative integer, got a number (-2.5)"}},
		{"uint: -1.0\n", []string{"1:7 uint: uint: -1.0 is out of range for uint"}},
		{"uint64: -3.0\n", []string{"1:9 uint64: uint64: -3.0 is out of range for uint64"}},
		{"int64: 9223372036854775807.0\n", []string{"1:8 int64: int64: 9223372036854775807.0 is out of range for int64"}},
		{"sizes: [1, 2.5, 3.0]\n", []string{"1:12 sizes.1: sizes.1: expected an integer, got a number (2.5)"}},
		{"levels: {a: 0.5}\n", []string{"1:13 levels.a: a: expected a non-negative integer, got a number (0.5)"}},
		{"keyed: {1.5: x, 2: y}\n", []string{"1:9 keyed.1.5: invalid key: expected an integer, got a number (1.5)"}},
		// Integers written as floats, in range, are those integers.
		{"int: 13.0\nint8: 1e2\nuint: 0.0\nint64: -0.0\nuint8: 255.0\nsizes: [2e1]\nkeyed: {3.0: x}\n", nil},
		// Already refused by yaml.v3, unchanged.
		{"int: 1e30\n", []string{"1:6 int: cannot unmarshal !!float `1e30` into int"}},
		{"int8: 300\n", []string{"1:7 int8: cannot unmarshal !!int `300` into int8"}},
		{"int8: 300.0\n", []string{"1:7 int8: cannot unmarshal !!float `300.0` into int8"}},
		{"uint8: 256\n", []string{"1:8 uint8: cannot unmarshal !!int `256` into uint8"}},
		{"uint: -1\n", []string{"1:7 uint: cannot unmarshal !!int `-1` into uint"}},
		{"uint64: -1\n", []string{"1:9 uint64: cannot unmarshal !!int `-1` into uint64"}},
		{"int: .nan\n", []string{"1:6 int: cannot unmarshal !!float `.nan` into int"}},
		{"duration: 1.5\n", []string{"1:11 duration: cannot unmarshal !!float `1.5` into time.Duration"}},
		// Floats stay floats.
		{"float: 13.5\n", nil},
	} {
		t.Run(tc.src, func(t *testing.T) {
			diffLines(t, format(Check(parse(t, tc.src), typ, "")), tc.want)
		})
	}
}

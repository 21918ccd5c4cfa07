// Package yamlx holds the YAML machinery behind the onnxpipe config decoder:
// position-aware diagnostics, a strict structural check of a yaml.v3 node
// tree against a Go type, environment-variable expansion, --set overrides and
// path lookup.
//
// gopkg.in/yaml.v3 ignores KnownFields(true) in Node.Decode (go-yaml issue
// #460), so unknown keys inside nested nodes go unnoticed when a decoder works
// node by node. Check walks the node tree against the Go type itself and
// reports every problem at once, each with its line, column and dot path.
//
// The intended order of use is:
//
//	var doc yaml.Node
//	err := yaml.Unmarshal(src, &doc)                // syntax errors
//	diags := yamlx.ExpandEnv(&doc, os.LookupEnv)    // ${VAR}, ${VAR:-default}
//	err = yamlx.Set(&doc, "runtime.threads", "8")   // each --set override
//	diags = append(diags, yamlx.Check(&doc, reflect.TypeOf(Config{}), "")...)
//	yamlx.Diagnostics(diags).WithFile("pipeline.yaml").Sort()
//	// only then: doc.Decode(&cfg)
//
// Paths are dot paths of mapping keys and list indexes, for example
// "stages.1.quantize.per_channel". Keys that contain a dot cannot be named
// by a path.
package yamlx

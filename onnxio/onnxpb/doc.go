// Package onnxpb holds the Go types of the ONNX protobuf schema (IR version 13), generated
// by protoc-gen-go from onnx.proto in this folder.
//
// Most code should use package onnxio, which loads, indexes, edits and saves these
// messages; onnxpb is exported so that callers can build or inspect any field directly.
package onnxpb

// protoc comes from Debian's protobuf-compiler; protoc-gen-go is built from the version of
// google.golang.org/protobuf that go.mod pins.
//go:generate sh -c "go build -o \"${TMPDIR:-/tmp}/onnxpipe-protoc-gen-go\" google.golang.org/protobuf/cmd/protoc-gen-go && protoc --plugin=protoc-gen-go=\"${TMPDIR:-/tmp}/onnxpipe-protoc-gen-go\" --go_out=. --go_opt=paths=source_relative onnx.proto"

// Package badinput is a corpus of bad inputs for the whole tool and the test that runs it.
//
// Corpus generates the cases from the repository's fixtures (testdata/models): broken
// models (truncated, empty, random bytes, no graph or opset, odd IR and opset versions,
// cycles, shadowed inputs), broken nodes and initializers of every fixture (missing or
// renamed inputs and outputs, unknown ops, truncated or mistyped tensors, external data
// that is missing, short, outside the folder or a FIFO, NaN and denormal weights), broken
// datasets (npy, npz, labels) and broken configs (unknown keys, wrong types, bad values,
// dangerous paths). Each case writes a folder with a model, datasets and a config whose
// chain is prepare -> calibrate -> quantize -> verify.
//
// The test (`go test ./internal/badinput`) runs every case through the library in
// process, under a per-case timeout, and requires for each one either a clear error
// (one line per problem, naming the file, node, tensor or key involved; never a panic or
// an "internal error") or a correct result (the artifact exists, loads, passes the
// checker and its verify stage passed); no case may hang or leave temporary files.
// Cases that still fail because of code outside the packages this corpus may fix are in
// knownFailures, with the reason. `go test -short` runs every tenth case.
package badinput

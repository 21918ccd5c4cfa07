// Package pipeline is onnxpipe's engine: it decodes a YAML config strictly (every problem
// reported with file:line:col), turns it into a validated plan of stages, expands the
// jobs (one per model, with placeholders, overrides and sharding), and runs them with
// bounded parallelism, writing every artifact atomically with a manifest, a report, and a
// summary for batches.
//
// Stages plug in through the Stage value and its Pass, in the spirit of
// golang.org/x/tools/go/analysis: a stage is data (name, doc, options constructor,
// requirements, run function) registered once; everything a stage may touch is in its
// Pass.
package pipeline

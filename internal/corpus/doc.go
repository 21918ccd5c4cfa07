// Package corpus builds the real-model corpus check (make corpus): the list of models
// written by others (corpus/models.tsv, fetched by scripts/fetch-corpus.sh), real inputs
// for each (text rendered from a Debian-shipped English text, speech synthesized by
// espeak-ng, and inputs derived from them by the float models upstream), the configs
// that run every model through each int8 method, dynamic int8 and float16, and the table
// of what came out (docs/corpus.md).
package corpus

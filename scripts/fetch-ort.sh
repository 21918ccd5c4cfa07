#!/usr/bin/env bash
# Installs onnxruntime's shared library (pinned version) into third_party/onnxruntime/.
#
# The library comes from the onnxruntime-node package on the npm registry: `npm pack`
# downloads the package tarball without running its install scripts. Both the tarball and
# the extracted library are checked against pinned sha256 sums. Idempotent: when the
# library is present with the right checksum, it does nothing.
set -euo pipefail

ORT_VERSION=1.30.0
TARBALL_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${ORT_DIR:-$root/third_party/onnxruntime}

os=$(uname -s); arch=$(uname -m)
case "$os/$arch" in
  Linux/x86_64)  src=linux/x64/libonnxruntime.so.1;          lib=libonnxruntime.so
                 lib_sha=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23 ;;
  Linux/aarch64) src=linux/arm64/libonnxruntime.so.1;        lib=libonnxruntime.so
                 lib_sha=1f549d46250b005580b597f4164984aaf75b3bcb9f3aeb07c7f8a8fe60b23c76 ;;
  Darwin/arm64)  src=darwin/arm64/libonnxruntime.1.30.0.dylib; lib=libonnxruntime.dylib
                 lib_sha=685d2be5dba1309c89d3a5324b7fd06a5c42f1a61bfea32d14c4cc28d072121d ;;
  *) echo "fetch-ort: no onnxruntime $ORT_VERSION build for $os/$arch in onnxruntime-node; set ONNXPIPE_ORT_LIB to a library from onnxruntime's release archive" >&2; exit 1 ;;
esac

sha() { if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi; }

if [[ -f $dest/$lib && $(sha "$dest/$lib") == "$lib_sha" && -f $dest/VERSION ]]; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-ort: npm is needed to fetch onnxruntime (apt-get install npm), or set ONNXPIPE_ORT_LIB" >&2; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetch-ort: downloading onnxruntime-node@$ORT_VERSION from the npm registry" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tgz=$tmp/onnxruntime-node-$ORT_VERSION.tgz
got=$(sha "$tgz")
[[ $got == "$TARBALL_SHA256" ]] || { echo "fetch-ort: checksum mismatch for onnxruntime-node-$ORT_VERSION.tgz: got $got, want $TARBALL_SHA256" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" "package/bin/napi-v6/$src"
got=$(sha "$tmp/package/bin/napi-v6/$src")
[[ $got == "$lib_sha" ]] || { echo "fetch-ort: checksum mismatch for $src: got $got, want $lib_sha" >&2; exit 1; }

mkdir -p "$dest"
cp "$tmp/package/bin/napi-v6/$src" "$dest/.$lib.tmp" && mv "$dest/.$lib.tmp" "$dest/$lib"
# The library's SONAME (libonnxruntime.so.1) must resolve too when a provider library
# (libonnxruntime_providers_*.so) placed beside it links back to it.
[[ $lib == libonnxruntime.so ]] && ln -sf "$lib" "$dest/libonnxruntime.so.1"
echo "$ORT_VERSION" > "$dest/VERSION"
echo "fetch-ort: onnxruntime $ORT_VERSION installed in $dest" >&2

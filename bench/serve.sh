#!/usr/bin/env bash
# Push-to-applied latency of `keelson serve` and its idle cost, against 2 local clusters:
# a repository of 100 targets served by `git daemon`, signed push webhooks, and the
# object polled on both clusters' API servers until it carries the pushed value.
#   Usage: bench/serve.sh [PUSHES] [IDLE_SECONDS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
pushes=${1:-50}
idle=${2:-60}
cache=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
cargo build -q --release -p keelson --manifest-path "$repo/Cargo.toml"
export KEELSON_E2E_STATE="$cache/bench-clusters"
line=$("$repo/e2e/cluster" up 2)
trap '"$repo/e2e/cluster" down' EXIT
kubeconfig=${line#export KUBECONFIG=}
python3 "$repo/bench/serve.py" "$repo/target/release/keelson" "$kubeconfig" "$pushes" "$idle"

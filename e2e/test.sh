#!/usr/bin/env bash
# Runs every Keelson test, end-to-end ones included, on a fresh machine or a warm one.
# Installs or builds what the tests need (cached outside the repo), then `cargo test`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
step() { echo "[test.sh] $*" >&2; }
need() { command -v "$1" >/dev/null || { echo "[test.sh] '$1' is required: $2" >&2; exit 2; }; }
need cargo "install Rust with rustup"
need go "install Go 1.26 or newer"
need git "install git (the git source tests serve repositories with git daemon and git http-backend)"
need bash ""

start=$SECONDS
step "control plane (kube-apiserver, kube-controller-manager, etcd)"
KEELSON_E2E_BIN=$(e2e/controlplane/build.sh)
export KEELSON_E2E_BIN
step "control plane ready in $((SECONDS - start)) s: $KEELSON_E2E_BIN"

step "reference kustomize for the renderer's differential suite"
KEELSON_KUSTOMIZE=$(e2e/tools/kustomize.sh)
export KEELSON_KUSTOMIZE

step "cargo test --workspace"
cargo test --workspace --locked "$@"

# Nothing the harness started may outlive the tests. A test binary's shared control plane
# is stopped by its watchdogs once the binary exits; give them their grace period.
runs="${TMPDIR:-/tmp}/keelson-e2e-runs/"
for _ in $(seq 150); do pgrep -f "$runs" >/dev/null || break; sleep 0.2; done
if pgrep -f "$runs" >/dev/null; then
  step "processes of the harness are still running:"; pgrep -af "$runs" >&2
  exit 1
fi
step "all tests passed in $((SECONDS - start)) s"

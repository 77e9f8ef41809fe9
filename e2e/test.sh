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

step "helm for the chart tests (e2e/tools/helm.sh)"
KEELSON_HELM=$(e2e/tools/helm.sh)
export KEELSON_HELM

step "Tekton CRDs and examples (pipelines/tekton-version.env)"
# shellcheck source=../pipelines/tekton-version.env
. pipelines/tekton-version.env
KEELSON_TEKTON_DIR=$(cd "${TMPDIR:-/tmp}" && go mod download -json "$TEKTON_MODULE@$TEKTON_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$KEELSON_TEKTON_DIR/config/300-crds" ] || {
  echo "[test.sh] go mod download $TEKTON_MODULE@$TEKTON_VERSION gave no usable Dir" >&2; exit 2; }
export KEELSON_TEKTON_DIR
step "Tekton module: $KEELSON_TEKTON_DIR"

step "keelson pipeline check pipelines/tekton"
cargo run -q --locked -p keelson -- pipeline check pipelines/tekton

# GitHub's real webhook payloads, replayed by keelson-webhooks' tests (not committed).
examples_version=7.6.1
npm_prefix="${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}/npm"
KEELSON_WEBHOOK_EXAMPLES="$npm_prefix/node_modules/@octokit/webhooks-examples"
if ! grep -qs "\"version\": \"$examples_version\"" "$KEELSON_WEBHOOK_EXAMPLES/package.json"; then
  need npm "install Node.js and npm (GitHub's webhook payload examples come from npm)"
  step "@octokit/webhooks-examples@$examples_version into $npm_prefix"
  mkdir -p "$npm_prefix"
  npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error \
    "@octokit/webhooks-examples@$examples_version" >&2
fi
export KEELSON_WEBHOOK_EXAMPLES

step "GitHub's OpenAPI description (@octokit/openapi) for the fake GitHub that checks commit statuses"
KEELSON_GITHUB_OPENAPI=$(e2e/tools/octokit-openapi.sh)
export KEELSON_GITHUB_OPENAPI

step "GitLab, Gitea and Bitbucket webhook payloads (go-playground/webhooks testdata) for the receiver"
KEELSON_HOST_WEBHOOK_EXAMPLES=$(e2e/tools/host-webhook-examples.sh)
export KEELSON_HOST_WEBHOOK_EXAMPLES

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

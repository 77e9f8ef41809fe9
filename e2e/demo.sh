#!/usr/bin/env bash
# Push-to-deploy on your machine: two local clusters (the test harness's real etcd +
# kube-apiserver, built once and cached), overlays-example/ served by `git daemon` on
# loopback, `keelson serve` watching it, and one signed GitHub push webhook.
#
# The demo clusters run no Tekton, so the served copy of the example drops prod's pipeline
# gate (engine/tests/serve.rs runs the gate against Tekton's real CRDs).
#   Usage: e2e/demo.sh            (leaves nothing running when it ends)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { echo "demo: '$1' is required: $2" >&2; exit 2; }; }
need cargo "install Rust with rustup"
need go "install Go 1.26 or newer (the clusters are built from the Go module proxy)"
need git "install git"
need openssl "install openssl (it signs the webhook like GitHub does)"

say "building keelson"
cargo build -q --locked -p keelson
keelson="$repo/target/debug/keelson"

say "starting two local clusters (the first run builds Kubernetes from source: 10-20 min)"
export KEELSON_E2E_STATE="${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}/demo-clusters"
line=$(e2e/cluster up 2)
export KUBECONFIG=${line#export KUBECONFIG=}
work=$(mktemp -d "${TMPDIR:-/tmp}/keelson-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  e2e/cluster down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "serving overlays-example/ from a git repository on loopback"
g() { git -c user.name=demo -c user.email=demo@keelson.invalid -C "$1" "${@:2}"; }
cp -rL overlays-example "$work/checkout"
# Everything from prod's gate comment to the end of the file is the gate.
sed -i '/`keelson serve` deploys a commit to prod only after/,$d' "$work/checkout/keelson.yaml"
# The example's kubeconfig contexts are for the CLI; keelson serve refuses them (the
# ServeConfig below says how to reach each cluster), so the served copy names clusters only.
cp "$work/checkout/keelson.yaml" "$work/cli-keelson.yaml"
sed -i '/^  kubeconfig:$/d; /^    context: e2e-[12]$/d' "$work/checkout/keelson.yaml"
g "$work/checkout" init -q -b main
g "$work/checkout" add -A
g "$work/checkout" commit -q -m "the example"
git clone -q --bare "$work/checkout" "$work/shop.git"
g "$work/checkout" remote add origin "$work/shop.git"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 9418)
git daemon --export-all --reuseaddr --listen=127.0.0.1 --port="$port" --base-path="$work" "$work" \
  >/dev/null 2>&1 &
pids+=($!)
url="git://127.0.0.1:$port/shop.git"

say "starting keelson serve (webhooks on loopback, no polling: the webhook drives it)"
openssl rand -hex 32 > "$work/webhook-secret"
cat > "$work/serve.yaml" <<EOF
apiVersion: keelson.dev/v1alpha1
kind: ServeConfig
listen: 127.0.0.1:0
stateDir: $work/state
kubeconfig: $KUBECONFIG
webhook: {secretFile: $work/webhook-secret}
clusters:                     # the operator's: how to reach each, and what it is
- {name: staging, labels: {env: staging}, kubeconfig: {context: e2e-1}}
- {name: prod, labels: {env: prod}, kubeconfig: {context: e2e-2}}
repositories:
- url: $url
  ref: main
  github: keelson-example/shop
EOF
cat "$work/serve.yaml" >&2
RUST_LOG=warn "$keelson" serve --config "$work/serve.yaml" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
server=$(sed -n 's/^keelson serve: listening on //p' "$work/serve.log")
[ -n "$server" ] || { cat "$work/serve.log" >&2; exit 1; }

say "keelson serve fetched the repository and synced both targets on start"
synced() { "$keelson" status --server "$server" -o json 2>/dev/null | grep -c '"phase": "synced"' || true; }
for _ in $(seq 600); do [ "$(synced)" = 2 ] && break; sleep 0.2; done
"$keelson" status --server "$server"

say "a commit bumps staging's image tag and is pushed; GitHub would now send this webhook"
sed -i 's/newTag: 1.5.0-rc.1/newTag: 1.5.0-rc.2/' "$work/checkout/overlays/staging/kustomization.yaml"
g "$work/checkout" commit -q -am "staging: shop 1.5.0-rc.2"
before=$(g "$work/checkout" rev-parse HEAD~1)
after=$(g "$work/checkout" rev-parse HEAD)
g "$work/checkout" push -q origin main
body=$(printf '{"ref":"refs/heads/main","before":"%s","after":"%s","created":false,"deleted":false,"forced":false,"commits":[],"head_commit":null,"repository":{"full_name":"keelson-example/shop","clone_url":"%s"}}' "$before" "$after" "$url")
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$(cat "$work/webhook-secret")" | sed 's/^.* //')
host=${server#http://}
start=$(date +%s%N)
printf 'POST /hooks/github HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: demo-1\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
  "$host" "$sig" "${#body}" "$body" > "$work/request"
exec 3<>"/dev/tcp/${host%:*}/${host#*:}"
cat "$work/request" >&3
head -1 <&3 >&2
exec 3<&-
for _ in $(seq 300); do
  "$keelson" status --server "$server" | grep shop-staging | grep -q "${after:0:10}" && break
  sleep 0.05
done
echo "deployed $(( ($(date +%s%N) - start) / 1000000 )) ms after the webhook" >&2
"$keelson" status --server "$server"

say "both clusters now hold exactly what the repository says (keelson diff: no differences)"
cp -r "$work/checkout" "$work/cli" && cp "$work/cli-keelson.yaml" "$work/cli/keelson.yaml"
"$keelson" diff "$work/cli"
say "done; stopping keelson serve, the git server and the clusters"

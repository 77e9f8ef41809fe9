#!/usr/bin/env bash
# Builds the pinned control plane (kube-apiserver, kube-controller-manager, etcd) from the
# Go module proxy into a versioned cache outside the repo, once. Later runs reuse it.
# Prints the directory holding the binaries as its last line of stdout.
#
#   KEELSON_E2E_CACHE  cache root (default: ~/.cache/keelson-e2e)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

root=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
bin="$root/${KUBE_VERSION}-etcd-${ETCD_VERSION}/bin"
stamp="$bin/.complete"
# The stamp records the exact module files the binaries came from.
want=$(cat "$here/versions.env" "$here/go.sum" "$here/etcd/go.sum" | sha256sum | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$bin"
  exit 0
fi

log() { echo "[controlplane] $*" >&2; }
mkdir -p "$bin"
# One build at a time (parallel test binaries, a person running `cluster up`): the others
# wait here and then find the stamp.
exec 9>"$bin/../build.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$bin"
  exit 0
fi
tmp=$(mktemp -d "$bin/../build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export CGO_ENABLED=0 GOFLAGS=-mod=readonly
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=${KUBE_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

start=$SECONDS
log "building kube-apiserver and kube-controller-manager ${KUBE_VERSION} (cold build: 10-20 min on 2 cores)"
(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
log "kubernetes built in $((SECONDS - start)) s; building etcd ${ETCD_VERSION}"
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
log "control plane built in $((SECONDS - start)) s"

mv -f "$tmp"/kube-apiserver "$tmp"/kube-controller-manager "$tmp"/etcd "$bin/"
echo "$want" > "$stamp"
echo "$bin"

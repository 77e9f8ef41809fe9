#!/usr/bin/env bash
# Fetches real webhook payloads of GitLab, Gitea/Gogs and Bitbucket (Cloud and Server): the
# testdata of github.com/go-playground/webhooks, pinned, from the Go module proxy into the
# Go module cache, once. Prints the testdata directory; the receiver's tests read it
# (webhooks/tests/host_examples.rs). Nothing of it is committed here.
set -euo pipefail
module=github.com/go-playground/webhooks/v6
version=v6.4.0
command -v go >/dev/null || { echo "[host-webhook-examples] go is required" >&2; exit 2; }
dir=$(cd "$(mktemp -d)" && go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir/testdata/gitlab" ] || { echo "[host-webhook-examples] no testdata in $module@$version ($dir)" >&2; exit 2; }
echo "$dir/testdata"

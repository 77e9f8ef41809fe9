#!/usr/bin/env bash
# Installs GitHub's OpenAPI description (the `@octokit/openapi` npm package, pinned) into a
# versioned cache, once. Prints the path of the api.github.com description, which the fake
# GitHub (e2e/src/github.rs) validates the engine's requests against.
set -euo pipefail
version=23.0.2
root=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
prefix="$root/npm-openapi"
file="$prefix/node_modules/@octokit/openapi/generated/api.github.com.json"
installed() { grep -qs "\"version\": \"$version\"" "$prefix/node_modules/@octokit/openapi/package.json" && [ -s "$file" ]; }
if ! installed; then
  mkdir -p "$prefix"
  exec 9>"$prefix.lock"; flock 9
  if ! installed; then
    command -v npm >/dev/null || { echo "[octokit-openapi] npm is required: install Node.js and npm" >&2; exit 2; }
    echo "[octokit-openapi] npm install @octokit/openapi@$version into $prefix" >&2
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "@octokit/openapi@$version" >&2
  fi
fi
[ -s "$file" ] || { echo "[octokit-openapi] $file is missing after the install" >&2; exit 2; }
echo "$file"

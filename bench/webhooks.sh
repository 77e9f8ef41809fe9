#!/usr/bin/env bash
# Loads `keelson webhooks serve` (release build) over loopback with signed 8 KB push
# deliveries and prints throughput and latency:
#   1. saturation, wrk, a fresh X-GitHub-Delivery per request (every request is verified,
#      parsed, deduplicated and queued; the pushes all go to one ref, so they coalesce);
#   2. saturation, oha, one delivery id (verified and parsed, then answered as duplicates);
#   3. a fixed 2,000 req/s, oha with latency correction (same single delivery id).
# The load generator runs on the same machine as the receiver. Results: BENCHMARKS.md.
#
#   DURATION=10s CONNECTIONS=32 bench/webhooks.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
cache=${KEELSON_E2E_CACHE:-$HOME/.cache/keelson-e2e}
step() { echo "[bench] $*" >&2; }

# Tools: oha from crates.io (pinned), wrk from Debian.
oha=${OHA:-$cache/bench/oha-1.16.0/bin/oha}
if [ ! -x "$oha" ]; then
  step "installing oha 1.16.0 (cargo install, a few minutes)"
  cargo install oha --version 1.16.0 --locked --root "$(dirname "$(dirname "$oha")")" >&2
fi
if ! command -v wrk >/dev/null; then
  step "installing wrk (apt-get)"
  apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
fi
for tool in node npm openssl curl; do
  command -v "$tool" >/dev/null || { step "$tool is required"; exit 2; }
done

step "cargo build --release -p keelson"
cargo build --release -p keelson --locked >&2
target=${CARGO_TARGET_DIR:-$repo/target}
keelson="$target/release/keelson"

# An 8 KB push: GitHub's own push example (with a commit), the commit message padded so the
# compact JSON is exactly 8,192 bytes.
examples="$cache/npm/node_modules/@octokit/webhooks-examples"
if [ ! -f "$examples/api.github.com/index.json" ]; then
  npm install --prefix "$cache/npm" --no-audit --no-fund --loglevel=error @octokit/webhooks-examples@7.6.1 >&2
fi
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
node -e '
  const defs = require(process.argv[1]);
  const push = defs.find(d => d.name === "push").examples.find(e => e.commits.length > 0);
  const size = s => Buffer.byteLength(JSON.stringify(s));
  push.head_commit.message += " ";
  push.head_commit.message += "x".repeat(8192 - size(push));
  process.stdout.write(JSON.stringify(push));
' "$examples/api.github.com/index.json" > "$work/push.json"
[ "$(wc -c < "$work/push.json")" -eq 8192 ] || { step "payload is not 8192 bytes"; exit 1; }
secret=$(openssl rand -hex 32)
printf '%s\n' "$secret" > "$work/secret"
signature="sha256=$(openssl dgst -sha256 -hmac "$secret" < "$work/push.json" | sed 's/^.* //')"

# The receiver: warnings only on stderr, triggers (about one a second: they coalesce) to a file.
RUST_LOG=warn "$keelson" webhooks serve --listen 127.0.0.1:0 --secret-file "$work/secret" \
  >"$work/triggers.jsonl" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.log" | head -1)
[ -n "$url" ] || { cat "$work/serve.log" >&2; exit 1; }
base=${url%/hooks/github}
step "receiver at $url"

# Sanity: one signed delivery is accepted, a forged one is not.
check() { curl -s -o /dev/null -w '%{http_code}' "$url" -H 'Content-Type: application/json' \
  -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $1" -H "X-Hub-Signature-256: $2" --data-binary @"$work/push.json"; }
[ "$(check sanity-1 "$signature")" = 202 ] || { step "signed delivery not accepted"; exit 1; }
[ "$(check sanity-2 "sha256=$(printf '0%.0s' $(seq 64))")" = 401 ] || { step "forged delivery accepted"; exit 1; }

# The receiver's CPU time (user + system, all threads) per delivery answered, for a phase:
# a figure that does not depend on what else the machine is running.
ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
answered() { curl -s "$base/metrics" | awk '/^keelson_webhook_request_duration_seconds_count/ {print $2}'; }
hz=$(getconf CLK_TCK)
phase_start() { t0=$(ticks); n0=$(answered); }
phase_end() {
  local t1 n1; t1=$(ticks); n1=$(answered)
  awk -v t="$((t1 - t0))" -v n="$((n1 - n0))" -v hz="$hz" \
    'BEGIN { printf "receiver CPU: %.1f s for %d deliveries = %.1f us per delivery\n", t / hz, n, t / hz / n * 1e6 }'
}
echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

cat > "$work/unique.lua" <<'LUA'
-- A fresh X-GitHub-Delivery per request; body and signature stay the same (the signature
-- covers the body only).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("bench-%d-%d", tid, n)
  return wrk.format()
end
LUA

echo
echo "== 1. saturation: wrk -t1 -c$connections -d$duration, unique delivery ids (8,192-byte signed pushes)"
phase_start
BENCH_BODY="$work/push.json" BENCH_SIGNATURE="$signature" \
  wrk -t1 -c"$connections" -d"$duration" --latency -s "$work/unique.lua" "$url"
phase_end

oha_common=(--no-tui -m POST -D "$work/push.json" -H "Content-Type: application/json"
  -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: bench-same-id" -H "X-Hub-Signature-256: $signature")

echo
echo "== 2. saturation: oha -c$connections -z$duration, one delivery id (verified + parsed, then duplicate)"
phase_start
"$oha" "${oha_common[@]}" -c "$connections" -z "$duration" --worker-threads 1 "$url"
phase_end

echo
echo "== 3. fixed rate: oha -q 2000 -c$connections -z$duration --latency-correction"
phase_start
"$oha" "${oha_common[@]}" -c "$connections" -z "$duration" -q 2000 --latency-correction --worker-threads 1 "$url"
phase_end

echo
echo "== receiver's own counters (/metrics)"
curl -s "$base/metrics" | grep -E '^keelson_webhook_(deliveries_total|signature_failures_total|duplicates_total|coalesced_total)'
echo "triggers printed: $(wc -l < "$work/triggers.jsonl")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

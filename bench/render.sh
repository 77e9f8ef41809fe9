#!/usr/bin/env bash
# Render benchmark: keelson build vs the reference kustomize v5.5.0, side by side in one
# run, on generated trees (bench/gen_render_trees.py). Prints median wall time, peak
# memory and the ratio per tree.   Usage: bench/render.sh [RUNS] [TREE...]
# (kustomize needs minutes per run on the 5,000-object tree; 3 runs are plenty there)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-7}
cargo build -q --release -p keelson --manifest-path "$repo/Cargo.toml"
kustomize=$("$repo/e2e/tools/kustomize.sh")
keelson="$repo/target/release/keelson"
trees=$(mktemp -d); trap 'rm -rf "$trees"' EXIT
python3 "$repo/bench/gen_render_trees.py" "$trees" > "$trees/list"
if [ $# -gt 1 ]; then
  shift
  pattern=$(printf '%s|' "$@"); pattern=${pattern%|}
  grep -E "^($pattern) " "$trees/list" > "$trees/only" || true
  mv "$trees/only" "$trees/list"
fi
python3 - "$runs" "$keelson" "$kustomize" "$trees/list" <<'PY'
import os, statistics, subprocess, sys, time
runs, keelson, kustomize, listing = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def run(cmd):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out, status

print(f"{'tree':<16}{'objects':>8}  {'keelson ms':>11}{'kustomize ms':>13}{'ratio':>8}  {'keelson MiB':>12}{'kustomize MiB':>14}")
for line in open(listing):
    name, root = line.split()
    k_out = run([kustomize, "build", root])[2]
    o_out = run([keelson, "build", root])[2]
    assert k_out == o_out, f"{name}: outputs differ"
    objects = k_out.count(b"\n---\n") + 1
    ours, theirs = [], []
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        ours.append(run([keelson, "build", root]))
        theirs.append(run([kustomize, "build", root]))
    om = statistics.median(t for t, *_ in ours) * 1000
    tm = statistics.median(t for t, *_ in theirs) * 1000
    orss = max(r for _, r, *_ in ours)
    trss = max(r for _, r, *_ in theirs)
    print(f"{name:<16}{objects:>8}  {om:>11.1f}{tm:>13.1f}{tm/om:>7.1f}x  {orss:>12.1f}{trss:>14.1f}")
PY

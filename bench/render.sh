#!/usr/bin/env bash
# Render benchmark: keelson build vs the reference kustomize v5.5.0, side by side in one
# run, on generated trees (bench/gen_render_trees.py). Prints median wall time, the ratio,
# and median peak memory (via /usr/bin/time) per tree.   Usage: bench/render.sh [RUNS] [TREE...]
# (kustomize needs minutes per run on the 5,000-object tree; 3 runs are plenty there)
set -euo pipefail
[ -x /usr/bin/time ] || { echo "bench/render.sh needs GNU time at /usr/bin/time (Debian: apt-get install time)" >&2; exit 2; }
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
    """Wall seconds and the output of one run."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    p.wait()
    return time.perf_counter() - start, out

def peak_mib(cmd):
    """Peak RSS of one run, measured by /usr/bin/time: a child of this Python process
    would report Python's own high-water mark when that is larger (Linux keeps it across
    exec)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, check=True)
    return int(p.stderr.strip().splitlines()[-1]) / 1024

print(f"{'tree':<16}{'objects':>8}  {'keelson ms':>11}{'kustomize ms':>13}{'ratio':>8}  {'keelson MiB':>12}{'kustomize MiB':>14}")
for line in open(listing):
    name, root = line.split()
    k_out = run([kustomize, "build", root])[1]
    o_out = run([keelson, "build", root])[1]
    assert k_out == o_out, f"{name}: outputs differ"
    objects = k_out.count(b"\n---\n") + 1
    del k_out, o_out
    ours, theirs = [], []
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        ours.append(run([keelson, "build", root])[0])
        theirs.append(run([kustomize, "build", root])[0])
    om = statistics.median(ours) * 1000
    tm = statistics.median(theirs) * 1000
    # peak RSS: the median of 3 runs each (transparent huge pages move it by a few MiB)
    orss = statistics.median(peak_mib([keelson, "build", root]) for _ in range(3))
    trss = statistics.median(peak_mib([kustomize, "build", root]) for _ in range(3))
    print(f"{name:<16}{objects:>8}  {om:>11.1f}{tm:>13.1f}{tm/om:>7.1f}x  {orss:>12.1f}{trss:>14.1f}")
PY

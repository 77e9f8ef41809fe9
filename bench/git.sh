#!/usr/bin/env bash
# Git source benchmark: keelson vs the git CLI, side by side in one run, against one
# `git daemon` on loopback serving a repository of 10,000 files and 1,000 commits
# (bench/gen_git_repo.py). Prints median wall times over RUNS interleaved runs.
#
#   initial:      keelson build --repo (fetch + tree of HEAD + one render)
#                 vs git clone --mirror + git archive HEAD | tar -x
#   incremental:  keelson changed --from OLD --to main (fetch of one new commit + change
#                 detection over 50 targets) vs git fetch alone; then the same again with
#                 nothing new (one ref listing)
#   tree views:   rendering one target at a cached commit, objects vs checkout
#
# Usage: bench/git.sh [RUNS]      (honours CARGO_TARGET_DIR)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build -q --release -p keelson --manifest-path "$repo/Cargo.toml"
keelson="$target/release/keelson"
work=$(mktemp -d)
daemon_pid=
cleanup() { [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@keelson.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@keelson.invalid

git init -q --bare "$work/srv/bench.git"
python3 "$repo/bench/gen_git_repo.py" | git -C "$work/srv/bench.git" fast-import --quiet
git -C "$work/srv/bench.git" symbolic-ref HEAD refs/heads/main
git -C "$work/srv/bench.git" gc -q
git clone -q "$work/srv/bench.git" "$work/edit"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$(git --exec-path)/git-daemon" --export-all --reuseaddr --listen=127.0.0.1 --port="$port" \
  --base-path="$work/srv" "$work/srv" >/dev/null 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
url="git://127.0.0.1:$port/bench.git"
echo "repository: $(git -C "$work/srv/bench.git" ls-tree -r main | wc -l) files, $(git -C "$work/srv/bench.git" rev-list --count main) commits, $(du -sh "$work/srv/bench.git" | cut -f1) packed; server: git daemon on loopback"

python3 - "$runs" "$keelson" "$url" "$work" <<'PY'
import os, shutil, statistics, subprocess, sys, time
runs, keelson, url, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
edit = os.path.join(work, "edit")

def sh(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)

def timed(cmd, shell=False):
    start = time.perf_counter()
    p = subprocess.run(cmd, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{cmd} failed: {p.stderr.decode()}")
    return took, p.stdout

def fresh(name):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    return d

def row(label, ours, theirs, ours_name, theirs_name):
    om, tm = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(f"| {label} | {ours_name} | {om:,.0f} ms | {theirs_name} | {tm:,.0f} ms | {tm/om:.1f}x |")

print(f"\nmedian of {runs} interleaved runs\n")
print("| step | keelson | | git CLI | | git / keelson |")
print("|---|---|---|---|---|---|")

# Initial fetch + tree of HEAD.
ko, kc, g, gc = [], [], [], []
for _ in range(runs):
    cache = fresh("k-init")
    ko.append(timed([keelson, "build", "--repo", url, "--ref", "main", "--cache-dir", cache, "overlays/t00"])[0])
    cache = fresh("k-init-co")
    kc.append(timed([keelson, "build", "--repo", url, "--ref", "main", "--tree", "checkout", "--cache-dir", cache, "overlays/t00"])[0])
    mirror, tree = fresh("g-init.git"), fresh("g-tree")
    os.makedirs(tree)
    clone = timed(["git", "clone", "-q", "--mirror", url, mirror])[0]
    gc.append(clone)
    g.append(clone + timed(f"git -C {mirror} archive HEAD | tar -x -C {tree}", shell=True)[0])
row("initial fetch + tree of HEAD (+ 1 render)", ko, g, "build --repo (objects)", "clone --mirror + archive | tar -x")
row("initial fetch + tree of HEAD (+ 1 render)", kc, g, "build --repo --tree checkout", "clone --mirror + archive | tar -x")
row("initial fetch + tree of HEAD (+ 1 render)", ko, gc, "build --repo (objects)", "clone --mirror alone")

# Incremental: warm caches at the current head, then one new commit touching one overlay.
base_k, base_g = fresh("k-base"), fresh("g-base.git")
head = subprocess.run(["git", "-C", edit, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
sh([keelson, "changed", "--repo", url, "--from", head, "--to", head, "--cache-dir", base_k])
sh(["git", "clone", "-q", "--mirror", url, base_g])
ki, gi, kidle, gidle, touched = [], [], [], [], None
for i in range(runs):
    path = os.path.join(edit, "overlays/t07/patch.yaml")
    with open(path, "a") as f:
        f.write(f"# edit {i}\n")
    sh(["git", "-C", edit, "commit", "-q", "-am", f"edit {i}"])
    sh(["git", "-C", edit, "push", "-q", "origin", "main"])
    kd, gd = fresh("k-inc"), fresh("g-inc.git")
    shutil.copytree(base_k, kd, symlinks=True)
    shutil.copytree(base_g, gd, symlinks=True)
    t, out = timed([keelson, "changed", "--repo", url, "--from", head, "--to", "main", "--cache-dir", kd])
    ki.append(t)
    touched = out.decode().split()
    gi.append(timed(["git", "-C", gd, "fetch", "-q", "origin"])[0])
    # Nothing new since: a poll costs one ref listing.
    kidle.append(timed([keelson, "changed", "--repo", url, "--from", head, "--to", "main", "--cache-dir", kd])[0])
    gidle.append(timed(["git", "-C", gd, "fetch", "-q", "origin"])[0])
    sh(["git", "-C", edit, "reset", "-q", "--hard", head])
    sh(["git", "-C", edit, "push", "-q", "--force", "origin", "main"])
row("incremental: 1 new commit", ki, gi, "changed (fetch + detection)", "git fetch")
row("idle poll: nothing new", kidle, gidle, "changed (ref listing + detection)", "git fetch")
print(f"\n`keelson changed` found: {' '.join(touched)} (of 50 targets)")

# Tree views at a cached commit: render one target.
cache = fresh("k-views")
sh([keelson, "build", "--repo", url, "--ref", head, "--cache-dir", cache, "overlays/t00"])
obj, cold, warm = [], [], []
for _ in range(runs):
    obj.append(timed([keelson, "build", "--repo", url, "--ref", head, "--cache-dir", cache, "overlays/t00"])[0])
    shutil.rmtree(os.path.join(cache, "trees"), ignore_errors=True)
    cold.append(timed([keelson, "build", "--repo", url, "--ref", head, "--tree", "checkout", "--cache-dir", cache, "overlays/t00"])[0])
    warm.append(timed([keelson, "build", "--repo", url, "--ref", head, "--tree", "checkout", "--cache-dir", cache, "overlays/t00"])[0])
m = lambda xs: statistics.median(xs) * 1000
print(f"\ntree view, one render at a cached commit: objects {m(obj):,.0f} ms, "
      f"checkout (new) {m(cold):,.0f} ms, checkout (reused) {m(warm):,.0f} ms")
PY

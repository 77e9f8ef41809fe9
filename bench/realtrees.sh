#!/usr/bin/env bash
# keelson build against the real kustomize v5.5.0 on real trees: every kustomization root
# of the modules in bench/realtrees.txt (fetched from the Go module proxy), byte for byte.
# Prints per repository: roots, identical, differing, keelson failing where kustomize
# renders, both refusing; then the geometric mean of keelson's per-root wall time over
# kustomize's, the two alternated root by root. Usage: bench/realtrees.sh [LIST] [-v]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
list=${1:-$repo/bench/realtrees.txt}
verbose=${2:-}
kustomize=${KEELSON_KUSTOMIZE:-$("$repo/e2e/tools/kustomize.sh")}
(cd "$repo" && cargo build -q --release --locked -p keelson)
keelson=$repo/target/release/keelson
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ratios=$work/ratios
: > "$ratios"
now() { date +%s%N; }
printf '%-58s %5s %5s %5s %5s %5s\n' REPOSITORY ROOTS SAME DIFF FAIL BOTH
totals=(0 0 0 0 0)
while read -r module; do
  case $module in ''|\#*) continue ;; esac
  dir=$(cd "${TMPDIR:-/tmp}" && go mod download -json "$module" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -d "$dir" ] || { echo "$module: not downloaded" >&2; continue; }
  roots=0 same=0 diff=0 fail=0 both=0
  while read -r root; do
    roots=$((roots + 1))
    t0=$(now); kustomize_ok=1
    "$kustomize" build "$root" > "$work/k.out" 2> "$work/k.err" || kustomize_ok=0
    t1=$(now); keelson_ok=1
    "$keelson" build "$root" > "$work/o.out" 2> "$work/o.err" || keelson_ok=0
    t2=$(now)
    rel=${root#"$dir"/}
    if [ $kustomize_ok = 1 ] && [ $keelson_ok = 1 ]; then
      echo "$(( t2 - t1 )) $(( t1 - t0 ))" >> "$ratios"
      if cmp -s "$work/k.out" "$work/o.out"; then same=$((same + 1));
      else diff=$((diff + 1)); [ -n "$verbose" ] && echo "  differs: $module $rel"; fi
    elif [ $kustomize_ok = 1 ]; then
      fail=$((fail + 1))
      [ -n "$verbose" ] && echo "  keelson fails: $module $rel: $(head -c 300 "$work/o.err")"
    elif [ $keelson_ok = 0 ]; then
      both=$((both + 1))
    else
      diff=$((diff + 1)); [ -n "$verbose" ] && echo "  keelson renders what kustomize refuses: $module $rel"
    fi
  done < <(find "$dir" \( -name kustomization.yaml -o -name kustomization.yml -o -name Kustomization \) \
             -not -path '*/testdata/*' -printf '%h\n' | sort -u)
  printf '%-58s %5d %5d %5d %5d %5d\n' "$module" $roots $same $diff $fail $both
  totals=($((totals[0] + roots)) $((totals[1] + same)) $((totals[2] + diff)) $((totals[3] + fail)) $((totals[4] + both)))
done < "$list"
printf '%-58s %5d %5d %5d %5d %5d\n' TOTAL "${totals[@]}"
rendered=$((totals[1] + totals[2] + totals[3]))
awk -v same="${totals[1]}" -v rendered="$rendered" '
  { s += log($1 / $2); n++ }
  END {
    if (rendered > 0) printf "identical: %.1f %% of the %d roots kustomize renders\n", 100 * same / rendered, rendered
    if (n > 0) printf "per-root wall time, keelson / kustomize v5.5.0 (geometric mean of %d roots): %.3f\n", n, exp(s / n)
  }' "$ratios"

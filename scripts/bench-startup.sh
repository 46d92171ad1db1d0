#!/usr/bin/env bash
# The sandbox's start-up cost against an earlier one, measured in the same
# run: BenchmarkStartup (one sandboxed busybox `true`, from the overlay root
# to the runtime's delete) of builder at BASE (default e639105, the last
# commit before every build ran in a user namespace) and at the working
# tree, alternating, ROUNDS rounds (default 5) of 30 runs each, per
# runtime. Prints each round's ns/op and the median ratio HEAD/BASE.
# Run as root on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${BASE:-e639105}"
rounds="${ROUNDS:-5}"
tmp="$(mktemp -d)"
trap 'git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add -q --detach "$tmp/base" "$base"
(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./builder)
go test -c -o "$tmp/head.test" ./builder
bench() { # tree binary -> lines "runtime ns/op"
  (cd "$1/builder" && "$2" -test.run '^$' -test.bench 'BenchmarkStartup/(crun|runc)$' -test.benchtime 30x) |
    awk '/^BenchmarkStartup\// {split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); print a[2], $3}'
}
for i in $(seq "$rounds"); do
  bench "$tmp/base" "$tmp/base.test" | sed "s/^/base $i /"
  bench "$PWD" "$tmp/head.test" | sed "s/^/head $i /"
done | tee "$tmp/all"
echo
for rt in $(awk '{print $3}' "$tmp/all" | sort -u); do
  awk -v rt="$rt" '$3 == rt {v[$1" "$2] = $4; n[$2] = 1}
    END {for (i in n) print v["head " i] / v["base " i]}' "$tmp/all" | sort -n |
    awk -v rt="$rt" '{r[NR] = $1}
      END {m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
           printf "%s: head/base start-up ratio, median of %d rounds: %.2f (range %.2f-%.2f)\n", rt, NR, m, r[1], r[NR]}'
done

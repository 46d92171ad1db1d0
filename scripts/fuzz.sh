#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each (default 10s).
# Targets are discovered with `go test -list`, so a new Fuzz function is
# picked up without editing this file.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
n=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($fuzztime)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log; exit 1; }
    tail -n 1 /tmp/fuzz-$$.log
    n=$((n + 1))
  done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: $n target(s) ran for $fuzztime each"
[ "$n" -gt 0 ]

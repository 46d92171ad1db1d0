#!/usr/bin/env bash
# Dependency prefetch benchmark: deps.Prefetch on examples/godeps and
# examples/npm, cold (empty cache) and warm, against `go mod download` and
# `npm ci --ignore-scripts` with empty caches on the same lockfiles and the
# same server, alternating in the same run (BenchmarkPrefetchVsPeers).
# Prints the ratios ours/peer (below 1: buildguard is faster);
# docs/performance.md records them.
#   ROUNDS=5 scripts/bench-deps.sh                  # loopback servers only
#   BENCH_UPSTREAM=1 ROUNDS=5 scripts/bench-deps.sh # and proxy.golang.org, registry.npmjs.org
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-5}"

# The fixtures the loopback servers serve (a no-op when present).
scripts/e2e-fixtures.sh >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores; go $(go env GOVERSION), npm $(npm --version), node $(node --version)"

# ratios reads `go test -bench` output and prints each benchmark's figures.
ratios() {
	awk '/^Benchmark/ {
		delete m
		for (i = 5; i < NF; i += 2) m[$(i + 1)] = $i
		printf "%-44s ours cold %8.1f ms  warm %7.1f ms | peer cold %8.1f ms  warm %8.1f ms | cold-ratio %.3f  warm-ratio %.4f  warm/peer-warm %.4f\n",
			$1, m["ours-cold-ms"], m["ours-warm-ms"], m["peer-ms"], m["peer-warm-ms"], m["cold-ratio"], m["warm-ratio"], m["warm-warm-ratio"]
	}'
}

run() {
	local out
	out="$(go test -count=1 -run '^$' -bench 'PrefetchVsPeers' -benchtime="${rounds}x" ./deps)" || {
		echo "$out"
		return 1
	}
	echo "$out" | grep -E '^(Benchmark|--- |    bench_test)' || true
	echo "$out" | ratios
}

echo "== deps: Prefetch vs go mod download / npm ci, loopback servers, ${rounds} rounds"
BENCH_UPSTREAM= run
if [ "${BENCH_UPSTREAM:-}" = 1 ]; then
	echo
	echo "== deps: Prefetch vs go mod download / npm ci, proxy.golang.org and registry.npmjs.org, ${rounds} rounds"
	BENCH_UPSTREAM=1 run
fi

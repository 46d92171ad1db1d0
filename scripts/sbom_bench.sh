#!/usr/bin/env bash
# SBOM benchmark: buildguard sbom against the syft CLI (the same syft
# version) on the same ~114 MB tree of Go binaries, in the same run.
# Prints the Go benchmark (in-process Generate vs the syft CLI, per
# iteration) and, when bin/buildguard builds, binary against binary.
#   ROUNDS=5 scripts/sbom_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-5}"
syft_version=v1.57.1
export PATH="$(go env GOPATH)/bin:$PATH" SYFT_CHECK_FOR_APP_UPDATE=false

# go.mod's syft tool: the CLI built from the modules buildguard links.
start=$(date +%s)
syft="$(go tool -n syft)"
echo "go tool -n syft (syft ${syft_version}): $(($(date +%s) - start)) s"
go version -m "$syft" | grep -E '^\s+mod\s'
export SYFT="$syft"

tree="$(mktemp -d)/out"
trap 'rm -rf "$(dirname "$tree")"' EXIT
mkdir -p "$tree/bin"
go build -o "$tree/bin/app" ./sbom/testdata/fatbin   # links syft: 263 modules
go build -o "$tree/bin/crane" github.com/google/go-containerregistry/cmd/crane
echo "requests==2.31.0" >"$tree/requirements.txt"
echo "tree: $(du -sm "$tree" | cut -f1) MB, $(find "$tree" -type f | wc -l) files"

echo "== Go benchmark: sbom.Generate in-process vs the syft CLI, alternating, ${rounds} rounds"
SBOM_BENCH_TREE="$tree" go test -count=1 -run '^$' -bench 'VsSyftCLI100MB' -benchtime="${rounds}x" ./sbom

# wall-clock milliseconds of running "$@"
ms() {
	local s e
	s=$(date +%s%N)
	"$@" >/dev/null
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

echo "== binary vs binary: one SBOM per process, as a user runs it (alternating, median of ${rounds})"
if go build -o bin/buildguard ./cmd/buildguard 2>/dev/null; then
	ours=() theirs=()
	for _ in $(seq "$rounds"); do
		ours+=("$(ms bin/buildguard sbom "$tree" --format spdx-json)")
		theirs+=("$(ms "$syft" scan "dir:$tree" -o spdx-json -q)")
	done
	o=$(median "${ours[@]}") t=$(median "${theirs[@]}")
	echo "buildguard sbom: ${o} ms (${ours[*]})   syft scan: ${t} ms (${theirs[*]})   ratio: $(awk "BEGIN{printf \"%.2f\", $o/$t}")"
else
	echo "skipped: ./cmd/buildguard does not build right now"
fi

#!/usr/bin/env bash
# The benchmark script: buildguard against the peers on the same inputs in
# the same run. Prints ratios; docs/performance.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
command -v crane >/dev/null || go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
make -s build
echo "== pin: buildguard pin vs crane digest (real registry on loopback)"
go run ./internal/cmd/benchpin --buildguard bin/buildguard --rounds "${ROUNDS:-5}"
echo
echo "== Go benchmarks"
go test -run='^$' -bench='Pin200|Unpack|TarX' -benchtime=3x ./pin ./builder

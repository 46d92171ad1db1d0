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
echo "== verify: buildguard verify vs cosign verify (20 images signed by cosign v3 through a real Rekor v2)"
command -v cosign >/dev/null || go install github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
command -v posix >/dev/null || go install github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix@v2.3.0
go run ./internal/cmd/benchverify --buildguard bin/buildguard --rounds "${ROUNDS:-5}"
echo
echo "== diff: buildguard diff vs sha256sum and diffoscope (two ~1 GiB trees)"
go run ./internal/cmd/benchdiff --buildguard bin/buildguard --size "${DIFF_SIZE:-1073741824}" --rounds "${ROUNDS:-3}"
echo
echo "== Go benchmarks"
go test -run='^$' -bench='Pin200|Unpack|TarX' -benchtime=3x ./pin ./builder
echo
echo "== deps: deps.Prefetch vs go mod download and npm ci (examples/godeps, examples/npm; BENCH_UPSTREAM=1 adds the real registries)"
ROUNDS="${DEPS_ROUNDS:-5}" scripts/bench-deps.sh
echo
echo "== build: buildguard build's own cost, and against reprotest (examples/hello; needs root)"
ROUNDS="${OVERHEAD_ROUNDS:-3}" scripts/bench-overhead.sh

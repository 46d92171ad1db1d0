#!/usr/bin/env bash
# The guarded build's own cost: `buildguard build` on examples/hello, its
# wall time minus the time inside its builds as a fraction of one build,
# and its wall time against reprotest's two-build check of the same
# program, in the same run (internal/cmd/benchoverhead says how).
# Needs root (crun or runc), docker-registry, busybox-static, reprotest,
# diffoscope, cosign and posix (rekor-tiles); docs/performance.md records
# the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$(go env GOPATH)/bin:$PATH"
export PATH
command -v cosign >/dev/null || go install github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
command -v posix >/dev/null || go install github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix@v2.3.0
command -v reprotest >/dev/null || { echo "bench-overhead: reprotest not found: apt-get install -y reprotest diffoscope" >&2; exit 1; }
make -s build
go run ./internal/cmd/benchoverhead --buildguard bin/buildguard --rounds "${ROUNDS:-3}"

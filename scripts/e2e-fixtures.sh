#!/usr/bin/env bash
# The dependency fixtures the end-to-end suite serves on loopback
# (e2e/deps_test.go), fetched once at install time from the registries
# this machine reaches (.ci/run runs it):
#   - examples/godeps' modules into the Go module download cache, which the
#     suite serves as a module proxy (GOPROXY directory layout);
#   - examples/npm's packages as tarballs (npm pack) into
#     $BUILDGUARD_E2E_NPM, default ${XDG_CACHE_HOME:-$HOME/.cache}/buildguard-e2e/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd examples/godeps && go mod download)
npm_dir="${BUILDGUARD_E2E_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/buildguard-e2e/npm}"
mkdir -p "$npm_dir"
for p in is-number@7.0.0 left-pad@1.3.0; do
	f="${p/@/-}.tgz"
	[ -s "$npm_dir/$f" ] || npm pack --silent --pack-destination "$npm_dir" "$p" >/dev/null
done
ls "$npm_dir"

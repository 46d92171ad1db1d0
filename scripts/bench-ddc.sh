#!/usr/bin/env bash
# What a guarded build costs a real, long build: the ddc chain's last stage
# (make.bash of go1.26.8 with the go1.24.6 that stage 3 bootstrapped), once
# as the chain runs it (`buildguard build` in the stage's builder image:
# the source zip checked, the sandbox, one run, SBOMs, provenance) and
# once by hand on this machine with the same sources, the same bootstrap
# toolchain and the same steps as stage.sh, in the same run, ROUNDS times
# (default 1), alternating. Prints each time and the ratio guarded / by
# hand; docs/performance.md records the figures.
#
# Needs root and `make demo-ddc` run before (its cache, DDC_CACHE, default
# ~/.cache/buildguard-ddc, holds stages 1 to 3 and the official zip).
# The stage-4 build is made in a scratch cache seeded with hard links to
# stages 1 to 3, so the real cache is left as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DDC_CACHE:-$HOME/.cache/buildguard-ddc}
rounds=${ROUNDS:-1}
[ "$(id -u)" = 0 ] || { echo "bench-ddc: run as root (the chain runs mmdebstrap and the OCI runtime)" >&2; exit 2; }
make -s build
tmp=$(mktemp -d /var/tmp/bench-ddc.XXXXXX)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT

# The chain's keys and stage 3's toolchain, from a warm run of the chain.
if ! go run ./internal/cmd/ddc --buildguard bin/buildguard --cache "$cache" --out "$tmp/warm" >"$tmp/warm.log" 2>&1; then
	echo "bench-ddc: the chain is not built in $cache (run make demo-ddc first):" >&2
	tail -5 "$tmp/warm.log" >&2
	exit 1
fi
mapfile -t keys < <(jq -r '.stages[].key' "$tmp/warm/chain.json")
[ ${#keys[@]} = 4 ] || { echo "bench-ddc: want 4 stages in chain.json" >&2; exit 1; }
boot=$cache/stages/${keys[2]}/evidence/runs/run-1/out/go
version=$(jq -r '.stages[3].version' "$tmp/warm/chain.json")
zip=$cache/zips/$version.zip
[ -x "$boot/bin/go" ] && [ -f "$zip" ] || { echo "bench-ddc: $boot/bin/go or $zip missing" >&2; exit 1; }
official=$(unzip -p "$zip" "golang.org/toolchain@v0.0.1-$version.linux-amd64/bin/go" | sha256sum | cut -d' ' -f1)

guarded() {
	local c=$tmp/cache-$1
	mkdir -p "$c/stages"
	cp -al "$cache/debian" "$cache/zips" "$c/"
	for k in "${keys[@]:0:3}"; do cp -al "$cache/stages/$k" "$c/stages/"; done
	go run ./internal/cmd/ddc --buildguard bin/buildguard --cache "$c" --out "$tmp/ev-$1" >"$tmp/guarded-$1.log" 2>&1
	jq -r '.[] | select(.step | startswith("stage 4")) | .seconds' "$tmp/ev-$1/timings.json"
}

# stage.sh's steps on the host: the sources only, the nested go.mod files
# named back, make.bash with the bootstrap toolchain, CGO_ENABLED and CC
# unset (make.bash bakes CC into cmd/go), and a PATH without a C
# compiler, as the builder image has none.
nocc=$tmp/nocc-bin
mkdir -p "$nocc"
for f in /usr/local/sbin/* /usr/local/bin/* /usr/sbin/* /usr/bin/* /sbin/* /bin/*; do
	n=$(basename "$f")
	case $n in gcc* | cc | c++ | g++* | cpp* | clang* | x86_64-linux-gnu-* | tcc | c89* | c99*) continue ;; esac
	[ -e "$nocc/$n" ] || ln -s "$f" "$nocc/$n"
done
byhand() {
	local w=$tmp/hand-$1 prefix=golang.org/toolchain@v0.0.1-$version.linux-amd64 start end
	mkdir -p "$w"
	start=$(date +%s.%N)
	unzip -q "$zip" -x "$prefix/bin/*" "$prefix/pkg/*" -d "$w"
	find "$w/$prefix" -type f \( -name _go.mod -o -name _go.sum \) | while read -r f; do
		mv "$f" "$(dirname "$f")/$(basename "$f" | cut -c2-)"
	done
	(cd "$w/$prefix/src" && env -u CGO_ENABLED -u CC PATH="$nocc" GOROOT_BOOTSTRAP="$boot" GOCACHE="$w/gocache" GOPATH="$w/gopath" \
		GOTOOLCHAIN=local GOPROXY=off bash make.bash >"$tmp/hand-$1.log" 2>&1)
	end=$(date +%s.%N)
	local got
	got=$(sha256sum "$w/$prefix/bin/go" | cut -d' ' -f1)
	[ "$got" = "$official" ] || echo "bench-ddc: the by-hand bin/go differs from the official one" >&2
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", b - a }'
}

printf '%-6s %-12s %-12s %s\n' round guarded_s byhand_s ratio
for r in $(seq 1 "$rounds"); do
	g=$(guarded "$r")
	h=$(byhand "$r")
	awk -v r="$r" -v g="$g" -v h="$h" 'BEGIN { printf "%-6s %-12.1f %-12.1f %.2f\n", r, g, h, g / h }'
done
echo "uptime: $(uptime)"

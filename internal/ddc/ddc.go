// Package ddc plans buildguard's diverse double-compiling chain: a Go
// toolchain bootstrapped from GCC's Go front end (gccgo), release by
// release, up to the release buildguard's builder images hold. Each stage
// is one release's make.bash run as a guarded build (`buildguard build`) in
// a builder image pinned by digest: the first holds Debian's gccgo-12, each
// later one the toolchain the stage before built. A stage's result is
// cached by its key, the digest of everything it is built from (its
// buildguard.yaml, which pins the builder image and the source zip, and
// its script), so the chain is built once per machine.
//
// internal/cmd/ddc runs the chain (`make demo-ddc`); docs/demo.md says
// what it proves.
package ddc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Release is a Go release the chain builds, from the sources of its
// toolchain module on the Go module proxy.
type Release struct {
	// Version is the release, e.g. "go1.22.12".
	Version string
	// SHA256 is the digest of its toolchain module zip (ZipURL).
	SHA256 string
	// MinBootstrap is the oldest Go its make.bash accepts as
	// GOROOT_BOOTSTRAP (its bootgo), e.g. "go1.20.6".
	MinBootstrap string
}

// Gccgo is the root of the chain: Debian bookworm's gccgo-12, GCC 12's Go
// front end, which implements GccgoImplements.
const (
	Gccgo           = "gccgo-12"
	GccgoImplements = "go1.18"
)

// Chain is the chain from gccgo-12 to go1.26.8, the release of
// buildguard's builder images. Each release's minimum bootstrap is the
// bootgo of its src/make.bash; each is built by the one before it (the
// first by gccgo-12). The digests are of the zips the module proxy serves,
// checked by buildguard as `file` dependencies.
var Chain = []Release{
	{Version: "go1.20.14", SHA256: "725ca02721c6f4705865550dd7f3051c81cbe29347b84fb1bc8fc76554e7d26d", MinBootstrap: "go1.17.13"},
	{Version: "go1.22.12", SHA256: "d426bcf50497ae8665e741482aba04fc12782e8860857229d4005dcc480fd89b", MinBootstrap: "go1.20.6"},
	{Version: "go1.24.6", SHA256: "e7f0fd16d1b06c716162a0938744bb7ebf7edbc3248d42432271a1b5c1fde1ce", MinBootstrap: "go1.22.6"},
	{Version: "go1.26.8", SHA256: "30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7", MinBootstrap: "go1.24.6"},
}

// ModulePrefix is the directory every entry of a release's toolchain
// module zip lies under.
func ModulePrefix(version string) string {
	return "golang.org/toolchain@v0.0.1-" + version + ".linux-amd64"
}

// ZipURL is where the module proxy serves a release's toolchain module.
func ZipURL(version string) string {
	return "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-" + version + ".linux-amd64.zip"
}

// parseGo reads "go1.20.14" (or "go1.18") as [1 20 14].
func parseGo(v string) ([3]int, error) {
	var n [3]int
	rest, ok := strings.CutPrefix(v, "go")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) < 2 || len(parts) > 3 {
		return n, fmt.Errorf("%q is not a Go release such as go1.22.12", v)
	}
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return n, fmt.Errorf("%q is not a Go release such as go1.22.12", v)
		}
		n[i] = x
	}
	return n, nil
}

// atLeast says whether Go release a is b or later.
func atLeast(a, b string) (bool, error) {
	x, err := parseGo(a)
	if err != nil {
		return false, err
	}
	y, err := parseGo(b)
	if err != nil {
		return false, err
	}
	for i := range x {
		if x[i] != y[i] {
			return x[i] > y[i], nil
		}
	}
	return true, nil
}

// CheckChain checks that each release of chain is built by a Go at least
// its MinBootstrap: the first by root (the Go that gccgo implements), each
// later one by the release before it.
func CheckChain(chain []Release, root string) error {
	if len(chain) == 0 {
		return errors.New("the chain has no release")
	}
	boot := root
	for _, r := range chain {
		ok, err := atLeast(boot, r.MinBootstrap)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s needs a bootstrap Go of at least %s, and the chain gives it %s: add a release in between", r.Version, r.MinBootstrap, boot)
		}
		if len(r.SHA256) != 64 {
			return fmt.Errorf("%s: the zip's sha256 must be 64 hex digits", r.Version)
		}
		if _, err := hex.DecodeString(r.SHA256); err != nil {
			return fmt.Errorf("%s: the zip's sha256 must be 64 hex digits", r.Version)
		}
		boot = r.Version
	}
	return nil
}

// Stage is one guarded build of the chain.
type Stage struct {
	// Index counts from 1.
	Index int
	// Release is what it builds.
	Release Release
	// Bootstrap names what builds it: Gccgo or a release.
	Bootstrap string
	// BuilderDigest is the digest of its builder image ("sha256:...").
	BuilderDigest string
}

// Plan returns the stages of chain, without their builder digests (which
// need the stage before built).
func Plan(chain []Release) []Stage {
	stages := make([]Stage, len(chain))
	boot := Gccgo
	for i, r := range chain {
		stages[i] = Stage{Index: i + 1, Release: r, Bootstrap: boot}
		boot = r.Version
	}
	return stages
}

// Repository is the repository of the stage's builder image, below a
// registry.
func (s Stage) Repository() string {
	return fmt.Sprintf("ddc/stage-%d-builder", s.Index)
}

// GoRootBootstrap is GOROOT_BOOTSTRAP as the stage script takes it:
// "gccgo" for the first stage, else where the builder image holds the
// bootstrap toolchain.
func (s Stage) GoRootBootstrap() string {
	if s.Bootstrap == Gccgo {
		return "gccgo"
	}
	return "/usr/local/go"
}

// keyRegistry stands for the registry in the configuration a key is
// taken of: the registry's address changes from run to run, the image's
// digest does not.
const keyRegistry = "registry.invalid"

// Config is the stage's buildguard.yaml, naming its builder image in
// registry (a host:port).
func (s Stage) Config(registry string) []byte {
	r := s.Release
	return fmt.Appendf(nil, `# Stage %[1]d of buildguard's diverse double-compiling chain (docs/demo.md):
# %[2]s built from its sources by %[3]s. Written by internal/cmd/ddc.
apiVersion: buildguard/v1
source: .
builder:
  image: %[4]s/%[5]s@%[6]s
  command: ["bash", "stage.sh", "%[2]s", "%[7]s"]
  workdir: /src
  # make.bash reads no network; GOTOOLCHAIN=local keeps every go command
  # the one given.
  env: {GOTOOLCHAIN: local, GOPROXY: "off"}
  timeout: 3h
  # make.bash runs a compiler per package, several at once.
  limits: {memory: 8Gi, pids: 4096}
sourceDateEpoch: "0"
dependencies:
  # The sources: the toolchain module the proxy serves, checked by its
  # sha256 before the build sees it. Only its sources are used (stage.sh).
  - {type: file, url: "%[8]s", sha256: "%[9]s", dest: go.zip}
reproduce:
  # One build: the chain's evidence is the final toolchain compared, file
  # by file, with the official release (comparison.json).
  runs: 1
  variations: []
policy:
  # The builder images are made on this machine by internal/cmd/ddc from
  # Debian's packages and the stage before; nobody signs them. Their
  # digests are pinned above and recorded in the provenance.
  waive: [verified]
`, s.Index, r.Version, s.Bootstrap, registry, s.Repository(), s.BuilderDigest, s.GoRootBootstrap(), ZipURL(r.Version), r.SHA256)
}

// Key is the digest of everything the stage is built from: its
// configuration (the builder image's digest, the source zip's digest, the
// command) and its script. The same key gives the same build inputs, so a
// result kept under it is reused.
func (s Stage) Key() string {
	h := sha256.New()
	h.Write(s.Config(keyRegistry))
	h.Write([]byte{0})
	h.Write([]byte(Script))
	return hex.EncodeToString(h.Sum(nil))
}

// Script is stage.sh, the recipe every stage runs in its builder: unpack
// the release's sources (never its shipped binaries), name back the
// nested go.mod and go.sum files the module zip had to rename, run
// make.bash with the bootstrap toolchain, and write the GOROOT it made to
// /out/go.
const Script = `#!/bin/bash
# stage.sh VERSION GOROOT_BOOTSTRAP: one stage of buildguard's diverse
# double-compiling chain (docs/demo.md). GOROOT_BOOTSTRAP "gccgo" means
# Debian's gccgo-12 (its go command, /usr/bin/go-12).
set -euo pipefail
version=$1 boot=$2
work=$PWD/work
prefix=golang.org/toolchain@v0.0.1-$version.linux-amd64
mkdir -p "$work"
# The sources only: the module's bin/ and pkg/ hold the shipped binaries,
# which are never unpacked.
unzip -q go.zip -x "$prefix/bin/*" "$prefix/pkg/*" -d "$work"
goroot=$work/$prefix
# A module zip cannot hold nested modules, so the toolchain module carries
# every go.mod and go.sum of the tree renamed to _go.mod and _go.sum.
find "$goroot" -type f \( -name _go.mod -o -name _go.sum \) | while read -r f; do
	mv "$f" "$(dirname "$f")/$(basename "$f" | cut -c2-)"
done
if [ "$boot" = gccgo ]; then
	# make.bash runs $GOROOT_BOOTSTRAP/bin/go: gccgo's go command.
	mkdir -p "$PWD/gccgo/bin"
	ln -s /usr/bin/go-12 "$PWD/gccgo/bin/go"
	boot=$PWD/gccgo
	export GCCGO=gccgo-12
	# gccgo's stage only; a later stage leaves CGO_ENABLED unset, as the
	# official build does: make.bash bakes its value into go/build
	# (defaultCGO_ENABLED), so "0" gives a go command and tools that
	# differ from the release's.
	export CGO_ENABLED=0
fi
echo "stage.sh: building $version with $("$boot/bin/go" version)"
export GOROOT_BOOTSTRAP=$boot GOCACHE=$PWD/gocache GOPATH=$PWD/gopath
# Module zips keep no file modes: make.bash is run by bash, not executed.
(cd "$goroot/src" && bash make.bash)
rm -rf "$goroot/pkg/obj"
cp -a "$goroot" /out/go
"/out/go/bin/go" version
`

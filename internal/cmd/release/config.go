package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The variables that record, in the provenance's externalParameters.env,
// what the release is made of beyond the source tree: the commit and the
// vendored dependencies (vendor/ is in the source tree, and so in its
// manifest digest too). Go does not read them, so they cannot change the
// binary.
const (
	envCommit     = "BUILDGUARD_RELEASE_COMMIT"
	envModulesTxt = "BUILDGUARD_RELEASE_VENDOR_MODULES_TXT"
)

// config is the buildguard.yaml of a guarded build of t: the pinned clean
// builder twice, the independent builder once, the commit time as
// SOURCE_DATE_EPOCH, a build without network from the vendored
// dependencies, with its caches on the sandbox's /tmp.
func (r *release) config(t *tree) string {
	name := r.o.name()
	command := []string{"go", "build", "-mod=vendor", "-trimpath", "-ldflags=-buildid=", "-o", "/out/" + name, r.o.Target}
	env := [][2]string{
		{envCommit, r.src.commit},
		{envModulesTxt, t.modulesTxt},
		{"CGO_ENABLED", "0"},
		{"GOCACHE", "/tmp/go-build"},
		{"GOFLAGS", "-mod=vendor"},
		{"GOPATH", "/tmp/go"},
		{"GOPROXY", "off"},
		{"GOTOOLCHAIN", "local"},
		{"GOWORK", "off"},
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Written by `make release` (internal/cmd/release) for commit %s.\n", r.src.commit)
	p("apiVersion: buildguard/v1\n")
	p("# git archive %s, with `go mod vendor` (verified with `go mod verify`).\n", short(r.src.commit))
	p("source: source\n")
	p("# The commit time (git log -1 --format=%%ct).\n")
	p("sourceDateEpoch: %s\n", q(strconv.FormatInt(r.src.epoch, 10)))
	p("builder:\n")
	p("  image: %s\n", q(r.builders.clean))
	p("  command: [%s]\n", qs(command))
	p("  workdir: /src\n")
	p("  env:\n")
	for _, kv := range env {
		p("    %s: %s\n", kv[0], q(kv[1]))
	}
	p("  timeout: %s\n", q(r.o.timeout().String()))
	p("  # The Go build cache is on /tmp, a tmpfs charged to the build.\n")
	p("  limits: {memory: %s}\n", memoryLimit)
	p("reproduce:\n")
	p("  runs: 2\n")
	p("  diverse:\n")
	p("    - image: %s\n", q(r.builders.independent))
	return b.String()
}

// q quotes s as a YAML double-quoted scalar (a JSON string is one).
func q(s string) string {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(data)
}

func qs(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = q(s)
	}
	return strings.Join(out, ", ")
}

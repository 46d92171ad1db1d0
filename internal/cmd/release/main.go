// Command release builds buildguard's own release under buildguard: it is
// what `make release` runs, and docs/release.md describes it.
//
// It takes the committed source (git archive HEAD, so that uncommitted
// edits never reach a release), vendors the Go dependencies into that copy
// and verifies them against go.sum on this machine (the build sandbox has
// no network), starts Debian's docker-registry and a Rekor v2 log on
// loopback, pushes a clean and an independent Go builder image made from
// this machine's toolchain, pins them by digest, signs them with the real
// cosign CLI, and runs the real `buildguard build`: two runs in the clean
// builder and one in the independent builder, with -trimpath, an empty
// build id, CGO_ENABLED=0 and SOURCE_DATE_EPOCH from the last commit. On a
// pass decision it copies the binary to DIST and writes its SHA-256 beside
// it; any other decision exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o Options
	flag.StringVar(&o.Repo, "repo", ".", "the git work tree to release from (its HEAD commit)")
	flag.StringVar(&o.Target, "target", DefaultTarget, "the main package to build, relative to the module root")
	flag.StringVar(&o.Dist, "dist", "dist", "where the binary, its sha256 sum and the evidence go (replaced)")
	flag.StringVar(&o.Buildguard, "buildguard", "bin/buildguard", "the buildguard binary to run")
	flag.BoolVar(&o.AllowDirty, "allow-dirty", false, "release HEAD even when the work tree has uncommitted changes (they are not in the release)")
	flag.BoolVar(&o.Twice, "twice", false, "run the whole guarded build a second time and require a byte-identical binary")
	flag.DurationVar(&o.Timeout, "build-timeout", 0, "builder.timeout of each build (default 90m, 20m with --target other than ./cmd/buildguard)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "release: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	_, err := Release(ctx, os.Stdout, o)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		fmt.Fprintf(os.Stderr, "\nrelease: interrupted; everything it started is stopped (%v)\n", err)
		os.Exit(1)
	case errors.Is(err, ErrDirty):
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "\nrelease: FAILED: %v\n", err)
		os.Exit(1)
	}
}

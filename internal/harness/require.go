// Package harness starts real services on loopback for end-to-end tests and
// demos: an OCI registry (the CNCF distribution registry that Debian ships as
// docker-registry) and a Rekor v2 transparency log (rekor-tiles with POSIX
// storage) whose C2SP tlog-tiles are served by a static file server.
//
// Every service runs as a child process in its own process group, writes its
// output to a log file in the directory it is given, listens on 127.0.0.1
// only, and is stopped by Stop or by cancelling the context it was started
// with. Nothing here talks to the internet.
//
// Tests find the binaries with [Require], which skips a test when a tool is
// missing on a developer's machine and fails it in CI (CI=true), because an
// end-to-end test that silently skips proves nothing.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// installHints tells how to get each tool the end-to-end tests use.
var installHints = map[string]string{
	"docker-registry": "apt-get install -y docker-registry",
	"crun":            "apt-get install -y crun",
	"runc":            "apt-get install -y runc",
	"runsc":           "apt-get install -y runsc",
	"busybox":         "apt-get install -y busybox-static",
	"posix":           "go install github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix@v2.3.0",
	"cosign":          "go install github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3",
	// cosign v2 installs as "cosign" too: build it into its own directory
	// and put it on PATH as cosign2, next to cosign v3.
	"cosign2":  "GOBIN=/tmp/cosign2 go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 && install /tmp/cosign2/cosign /usr/local/bin/cosign2",
	"chromium": "apt-get install -y chromium",
	// libfaketime, which the time variation preloads; faketime(1) comes with it.
	"faketime": "apt-get install -y faketime libfaketime",
	"ldd":      "apt-get install -y libc-bin",
	"umoci":    "apt-get install -y umoci",
	"git":      "apt-get install -y git",
	// mmdebstrap makes the Debian root file systems of the ddc chain.
	"mmdebstrap": "apt-get install -y mmdebstrap",
}

// InstallHint returns how to install tool, e.g. "install it with apt-get
// install -y docker-registry".
func InstallHint(tool string) string {
	if h, ok := installHints[tool]; ok {
		return "install it with " + h
	}
	return "install it and put it on PATH"
}

// ErrToolNotFound is returned by [Lookup] when a tool is on neither PATH nor
// a Go bin directory.
var ErrToolNotFound = errors.New("tool not found")

// Lookup returns the absolute path of tool, searching PATH first and then the
// directories `go install` writes to: $GOBIN, each $GOPATH/bin, the default
// GOPATH's bin and /root/go/bin.
func Lookup(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%s: %w: %s", tool, ErrToolNotFound, InstallHint(tool))
}

func goBinDirs() []string {
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	// build.Default.GOPATH falls back to $HOME/go when GOPATH is unset.
	return append(dirs, filepath.Join(build.Default.GOPATH, "bin"), "/root/go/bin")
}

// Require returns the absolute path of tool. When the tool is missing, the
// test fails if the environment variable CI is "true" (a skipped end-to-end
// test must not pass CI) and is skipped otherwise, with the install command
// in the message either way.
func Require(t testing.TB, tool string) string {
	t.Helper()
	p, err := Lookup(tool)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: %s", tool, InstallHint(tool))
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s", msg)
		return ""
	}
	t.Skipf("%s", msg)
	return ""
}

// GoTool returns the path of a tool that go.mod declares with a `tool`
// line (syft), built from the very module versions this module links, so a
// comparison with the CLI compares the same code. `go tool -n` builds it
// into the Go build cache on first use (minutes for syft; .ci/run warms
// it) and prints the path. A tool that cannot be built fails the test: it
// needs only the module proxy, which every machine that builds buildguard
// reaches.
func GoTool(t testing.TB, tool string) string {
	t.Helper()
	cmd := exec.Command("go", "tool", "-n", tool)
	cmd.Dir = moduleRoot()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		t.Fatalf("go tool -n %s (declared by a tool line in go.mod): %v", tool, err)
		return ""
	}
	p := string(bytes.TrimSpace(out))
	if !filepath.IsAbs(p) {
		t.Fatalf("go tool -n %s printed %q, not a path", tool, p)
	}
	return p
}

// moduleRoot is the directory of buildguard's go.mod: `go env GOMOD` from
// the working directory of a test, which is inside the module.
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return ""
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

// RequireRoot fails the test in CI (CI=true) and skips it elsewhere unless
// it runs as root, saying why (for example "buildguard build needs root for
// crun and runc"), as Require does for a missing tool.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

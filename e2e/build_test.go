//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// TestBuildScripts runs the testscript files in build_scripts: the real
// buildguard binary runs build steps through the real crun and runc, in a
// busybox builder image pushed to a real distribution registry on loopback
// (and through gVisor's runsc, named).
// Scripts sign and attest builder images with the real cosign v3 CLI
// through a real Rekor v2 log on loopback: $SIGSTORE holds its
// trusted_root.json and signing_config.json and a cosign key pair
// (cosign.key, cosign.pub, no password).
func TestBuildScripts(t *testing.T) {
	harness.Require(t, "docker-registry")
	for _, tool := range []string{"crun", "runc", "runsc", "busybox", "posix"} {
		harness.Require(t, tool)
	}
	cosignPath := cosignBin(t)
	harness.RequireRoot(t, "buildguard build needs root for crun and runc")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	sigstore := sigstoreSetUp(t, cosignPath)
	testscript.Run(t, testscript.Params{
		Dir: "build_scripts",
		Setup: func(env *testscript.Env) error {
			buildguardEnv(env, reg.Addr, filepath.Dir(cosignPath))
			env.Setenv("REGISTRY_PORT", reg.Addr[strings.LastIndexByte(reg.Addr, ':')+1:])
			env.Setenv("SIGSTORE", sigstore)
			// cosign: no password on the key, no TUF or cache outside $WORK.
			env.Setenv("COSIGN_PASSWORD", "")
			env.Setenv("TUF_ROOT", filepath.Join(env.WorkDir, ".sigstore"))
			env.Setenv("SIGSTORE_NO_CACHE", "true")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"push-busybox": pushBusybox,
			"push-glibc":   pushGlibc,
			"image-exists": imageExists,
			"exit-code":    exitCode,
			"envsubst":     envsubst,
			"small-disk":   smallDisk,
		},
	})
}

// small-disk DIR SIZE: mount a tmpfs of SIZE (as mount's size=) at
// $WORK/DIR, unmounted when the script ends.
func smallDisk(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: small-disk DIR SIZE")
	}
	unmount, err := harness.MountTmpfs(ts.MkAbs(args[0]), args[1])
	ts.Check(err)
	ts.Defer(func() { _ = unmount() })
}

// pushMu serialises pushes: scripts run in parallel, and the distribution
// registry can fail two concurrent uploads of the same blob
// (DIGEST_INVALID), which is the registry's race, not buildguard's.
var pushMu sync.Mutex

// push-busybox REF VAR: push a builder image holding Debian's static
// busybox (with sh, cat, echo, mkdir, sleep, touch, nc, env, date, id,
// hostname), every program statically linked, and PATH=/bin to
// REF, and set $VAR to its digest.
func pushBusybox(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: push-busybox REF VAR")
	}
	bin, err := harness.Lookup("busybox")
	ts.Check(err)
	bb, err := testimage.StaticBusybox(bin)
	ts.Check(err)
	img, err := testimage.BusyboxImage(bb, []string{"sh", "cat", "echo", "mkdir", "sleep", "touch", "nc", "env", "date", "id", "hostname"})
	ts.Check(err)
	pushScriptImage(ts, args[0], args[1], img)
}

// pushScriptImage pushes img to $REGISTRY/repo (one push at a time, see
// pushMu) and sets $v to its digest.
func pushScriptImage(ts *testscript.TestScript, repo, v string, img v1.Image) {
	ref, err := name.ParseReference(ts.Getenv("REGISTRY") + "/" + repo)
	ts.Check(err)
	pushMu.Lock()
	err = remote.Write(ref, img)
	pushMu.Unlock()
	ts.Check(err)
	d, err := img.Digest()
	ts.Check(err)
	ts.Setenv(v, d.String())
}

// push-glibc REF VAR: push a builder image holding the static busybox
// (sh, cat, echo, mkdir, touch, env, id, hostname) and the host's coreutils
// date, dynamically linked, with the host's glibc (testimage.GlibcImage),
// PATH=/usr/bin:/bin, to REF, and set $VAR to its digest. It is the image a
// user's glibc-based builder stands for: libfaketime reaches its date
// (named /usr/bin/date in scripts: busybox sh prefers its own applets).
func pushGlibc(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: push-glibc REF VAR")
	}
	bin, err := harness.Lookup("busybox")
	ts.Check(err)
	bb, err := testimage.StaticBusybox(bin)
	ts.Check(err)
	date, err := exec.LookPath("date")
	ts.Check(err)
	date, err = filepath.EvalSymlinks(date)
	ts.Check(err)
	img, err := testimage.GlibcImage(bb, []string{"sh", "cat", "echo", "mkdir", "touch", "env", "id", "hostname"}, date)
	ts.Check(err)
	pushScriptImage(ts, args[0], args[1], img)
}

// sigstoreSetUp starts a Rekor v2 log for the test and makes, with the real
// cosign CLI, a trusted root and a signing config naming it and a key pair,
// in a directory it returns.
func sigstoreSetUp(t *testing.T, cosignPath string) string {
	t.Helper()
	dir := t.TempDir()
	sigstore := filepath.Join(dir, "sigstore")
	if err := os.Mkdir(sigstore, 0o700); err != nil {
		t.Fatal(err)
	}
	cosignSigstore(t, cosignPath, filepath.Join(dir, "rekor"), sigstore)
	return sigstore
}

// image-exists REF: succeed when the registry serves REF (a tag or
// digest in $REGISTRY); with !, when it answers that REF is unknown.
func imageExists(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] image-exists REF")
	}
	ref, err := name.ParseReference(ts.Getenv("REGISTRY") + "/" + args[0])
	ts.Check(err)
	_, err = remote.Head(ref)
	var te *transport.Error
	switch {
	case err == nil && neg:
		ts.Fatalf("%s exists", ref)
	case err == nil:
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		if !neg {
			ts.Fatalf("%s does not exist", ref)
		}
	default:
		ts.Fatalf("asking for %s: %v", ref, err)
	}
}

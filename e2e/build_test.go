//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// TestBuildScripts runs the testscript files in build_scripts: the real
// buildguard binary runs build steps through the real crun and runc, in a
// busybox builder image pushed to a real distribution registry on loopback.
func TestBuildScripts(t *testing.T) {
	harness.Require(t, "docker-registry")
	for _, tool := range []string{"crun", "runc", "busybox"} {
		harness.Require(t, tool)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("buildguard build needs root for crun and runc")
		}
		t.Skip("buildguard build needs root for crun and runc")
	}
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	testscript.Run(t, testscript.Params{
		Dir: "build_scripts",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bgBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("REGISTRY", reg.Addr)
			env.Setenv("REGISTRY_PORT", reg.Addr[strings.LastIndexByte(reg.Addr, ':')+1:])
			env.Setenv("DOCKER_CONFIG", filepath.Join(env.WorkDir, ".docker"))
			env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".cache"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"push-busybox": pushBusybox,
			"exit-code":    exitCode,
			"envsubst":     envsubst,
		},
	})
}

// pushMu serialises pushes: scripts run in parallel, and the distribution
// registry can fail two concurrent uploads of the same blob
// (DIGEST_INVALID), which is the registry's race, not buildguard's.
var pushMu sync.Mutex

// push-busybox REF VAR: push a builder image holding Debian's static
// busybox (with sh, cat, echo, mkdir, sleep, touch, nc) and PATH=/bin to
// REF, and set $VAR to its digest.
func pushBusybox(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: push-busybox REF VAR")
	}
	bin, err := harness.Lookup("busybox")
	ts.Check(err)
	bb, err := testimage.StaticBusybox(bin)
	ts.Check(err)
	img, err := testimage.BusyboxImage(bb, []string{"sh", "cat", "echo", "mkdir", "sleep", "touch", "nc", "env"})
	ts.Check(err)
	ref, err := name.ParseReference(ts.Getenv("REGISTRY") + "/" + args[0])
	ts.Check(err)
	pushMu.Lock()
	err = remote.Write(ref, img)
	pushMu.Unlock()
	ts.Check(err)
	d, err := img.Digest()
	ts.Check(err)
	ts.Setenv(args[1], d.String())
}

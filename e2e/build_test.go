//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
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
	bb, err := os.ReadFile(bin)
	ts.Check(err)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		ts.Check(tw.WriteHeader(h))
		_, err := tw.Write(body)
		ts.Check(err)
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bb)
	for _, a := range []string{"sh", "cat", "echo", "mkdir", "sleep", "touch", "nc", "env"} {
		add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	ts.Check(tw.Close())
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	ts.Check(err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	ts.Check(err)
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/bin"}})
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

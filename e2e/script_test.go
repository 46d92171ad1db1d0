//go:build e2e

package e2e

import (
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
)

// TestScripts runs the testscript files in testdata/script: each reads like
// a user's terminal session with the real buildguard binary against a real
// distribution registry on loopback ($REGISTRY).
func TestScripts(t *testing.T) {
	harness.Require(t, "docker-registry")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bgBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("REGISTRY", reg.Addr)
			env.Setenv("DOCKER_CONFIG", filepath.Join(env.WorkDir, ".docker")) // no host credentials
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"push-image": pushImage,
			"exit-code":  exitCode,
			"envsubst":   envsubst,
		},
	})
}

// buildguardEnv gives a script the buildguard under test first on PATH
// (then extraPath, then the PATH it had), the registry at $REGISTRY, and no
// credentials or caches of the host's: DOCKER_CONFIG and XDG_CACHE_HOME
// are in $WORK.
func buildguardEnv(env *testscript.Env, registry string, extraPath ...string) {
	env.Setenv("PATH", strings.Join(append(append([]string{filepath.Dir(bgBin)}, extraPath...), env.Getenv("PATH")), string(os.PathListSeparator)))
	env.Setenv("REGISTRY", registry)
	env.Setenv("DOCKER_CONFIG", filepath.Join(env.WorkDir, ".docker"))
	env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".cache"))
}

// scriptRegistry starts a registry of the script's own, its storage in
// $WORK/.registry, stopped when the script ends.
func scriptRegistry(t *testing.T, env *testscript.Env) (*harness.Registry, error) {
	reg, err := harness.StartRegistry(t.Context(), filepath.Join(env.WorkDir, ".registry"))
	if err != nil {
		return nil, err
	}
	env.Defer(reg.Stop)
	return reg, nil
}

// push-image REF VAR [OS/ARCH...]: push a seeded random image (an index
// when platforms are given) to REF and set $VAR to its digest, and
// $VAR_<os>_<arch> to each platform's digest.
func pushImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: push-image REF VAR [OS/ARCH...]")
	}
	ref, err := name.ParseReference(ts.Getenv("REGISTRY") + "/" + args[0])
	ts.Check(err)
	seed := rand.Int63()
	if len(args) == 2 {
		img, err := random.Image(256, 1, random.WithSource(rand.NewSource(seed)))
		ts.Check(err)
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: rootFS(ts, img)})
		ts.Check(err)
		ts.Check(remote.Write(ref, img))
		d, err := img.Digest()
		ts.Check(err)
		ts.Setenv(args[1], d.String())
		return
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, p := range args[2:] {
		plat, err := v1.ParsePlatform(p)
		ts.Check(err)
		img, err := random.Image(256, 1, random.WithSource(rand.NewSource(seed+int64(i))))
		ts.Check(err)
		d, err := img.Digest()
		ts.Check(err)
		ts.Setenv(args[1]+"_"+strings.ReplaceAll(p, "/", "_"), d.String())
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	ts.Check(remote.WriteIndex(ref, idx))
	d, err := idx.Digest()
	ts.Check(err)
	ts.Setenv(args[1], d.String())
}

func rootFS(ts *testscript.TestScript, img v1.Image) v1.RootFS {
	cf, err := img.ConfigFile()
	ts.Check(err)
	return cf.RootFS
}

// exit-code N PROG ARGS...: run PROG and require exit code N; its output
// is kept for stdout/stderr checks like exec's.
func exitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exit-code N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("running %s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// envsubst SRC DST: write SRC to DST with $VAR and ${VAR} expanded from the
// script's environment (to make files that name $REGISTRY).
func envsubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envsubst SRC DST")
	}
	data := ts.ReadFile(args[0])
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(data, ts.Getenv)), 0o644))
}

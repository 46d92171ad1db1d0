//go:build e2e

package e2e

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// TestPublishedImageRuns runs the testscript files in image_scripts: the
// real buildguard binary builds a git checkout through crun and publishes
// the output onto a base that has an entrypoint of its own, to a real
// distribution registry; the image is then pulled by digest into an OCI
// layout, unpacked into a runtime bundle from its own config by Debian's
// umoci (as a container engine does: entrypoint, cmd, env, working
// directory, user), and run with crun. buildguard's builder ignores an
// image's entrypoint, so it could not prove this.
func TestPublishedImageRuns(t *testing.T) {
	for _, tool := range []string{"docker-registry", "crun", "busybox", "umoci", "git"} {
		harness.Require(t, tool)
	}
	harness.RequireRoot(t, "buildguard build and crun run need root")
	testscript.Run(t, testscript.Params{
		Dir: "image_scripts",
		Setup: func(env *testscript.Env) error {
			reg, err := scriptRegistry(t, env)
			if err != nil {
				return err
			}
			buildguardEnv(env, reg.Addr)
			// git in the script: no host config, a fixed identity and time
			for _, kv := range []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=e2e",
				"GIT_AUTHOR_EMAIL=e2e@example.org", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.org",
				"GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000"} {
				k, v, _ := strings.Cut(kv, "=")
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"push-entrypoint-base": pushEntrypointBase,
			"envsubst":             envsubst,
			"pull-layout":          pullLayout,
		},
	})
}

// push-entrypoint-base REF VAR: push an OCI image (OCI media types, as
// umoci takes) holding the static busybox with the applets a build and a
// program need, whose own entrypoint and cmd print "the base's entrypoint
// ran", to $REGISTRY/REF, and set $VAR to its digest.
func pushEntrypointBase(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: push-entrypoint-base REF VAR")
	}
	bin, err := harness.Lookup("busybox")
	ts.Check(err)
	bb, err := testimage.StaticBusybox(bin)
	ts.Check(err)
	l, err := testimage.BusyboxLayer(bb, []string{"sh", "cat", "echo", "mkdir", "cp", "chmod", "id", "pwd", "env"})
	ts.Check(err)
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: l}) // an OCI uncompressed layer
	ts.Check(err)
	cf, err := img.ConfigFile()
	ts.Check(err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/bin"}
	cf.Config.Entrypoint = []string{"/bin/echo", "the base's entrypoint ran"}
	cf.Config.Cmd = []string{"with the base's cmd"}
	img, err = mutate.ConfigFile(img, cf)
	ts.Check(err)
	pushScriptImage(ts, args[0], args[1], img)
}

// pull-layout FILE DIR TAG: pull the image FILE names (the
// NAME:TAG@DIGEST line buildguard build prints) by its digest into the OCI
// layout DIR under TAG, as a container engine pulls; write its manifest
// and config to manifest.json and config.json for the script to read.
func pullLayout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: pull-layout FILE DIR TAG")
	}
	ref, dig, ok := strings.Cut(strings.TrimSpace(ts.ReadFile(args[0])), "@")
	if !ok {
		ts.Fatalf("%s: want NAME:TAG@DIGEST", args[0])
	}
	tag, err := name.NewTag(ref)
	ts.Check(err)
	img, err := remote.Image(tag.Context().Digest(dig))
	ts.Check(err)
	got, err := img.Digest()
	ts.Check(err)
	if got.String() != dig {
		ts.Fatalf("pulled %s, asked for %s", got, dig)
	}
	p, err := layout.Write(ts.MkAbs(args[1]), empty.Index)
	ts.Check(err)
	ts.Check(p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": args[2]})))
	raw, err := img.RawManifest()
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs("manifest.json"), raw, 0o644))
	raw, err = img.RawConfigFile()
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs("config.json"), raw, 0o644))
}

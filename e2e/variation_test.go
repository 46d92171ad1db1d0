//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
)

// TestVariationScripts runs the testscript files in variation_scripts: the
// real buildguard binary builds, through crun, in builder images pushed to
// a real distribution registry on loopback, with the reproducibility
// variations as a user gets them: the time variation through the host's
// libfaketime, failures under a variation bisected, every variation
// observed by the build. No trust material is involved (the scripts waive
// verification), so they need no Sigstore parts.
func TestVariationScripts(t *testing.T) {
	for _, tool := range []string{"docker-registry", "crun", "runc", "busybox", "faketime", "ldd"} {
		harness.Require(t, tool)
	}
	harness.RequireRoot(t, "buildguard build needs root for crun and runc")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	testscript.Run(t, testscript.Params{
		Dir: "variation_scripts",
		Setup: func(env *testscript.Env) error {
			buildguardEnv(env, reg.Addr)
			env.Setenv("REGISTRY_PORT", reg.Addr[strings.LastIndexByte(reg.Addr, ':')+1:])
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"push-busybox": pushBusybox,
			"push-glibc":   pushGlibc,
			"exit-code":    exitCode,
			"envsubst":     envsubst,
		},
	})
}

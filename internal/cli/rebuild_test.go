package cli

import (
	"strings"
	"testing"

	"github.com/buildguard/buildguard/internal/exitcode"
)

// Bad input to rebuild is a usage error (exit 2) that says what to give,
// before anything is read.
func TestRebuildUsage(t *testing.T) {
	img := "reg.example/app@sha256:" + strings.Repeat("a", 64)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog"}, "name one published image"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", img, img}, "name one published image"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "reg.example/app:v1"}, "no digest"},
		{[]string{"rebuild", img}, "nothing to trust"},
		{[]string{"rebuild", "--key", "k.pub", img}, "--trusted-root FILE is needed"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--source", ".", "--repository", "file:///x", img}, "contradict"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--runtime", "docker", img}, "--runtime"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--out", "", img}, "--out needs a value"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--timeout", "-1s", img}, "--timeout -1s: want a positive duration"},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--timeout", "soon", img}, "--timeout"},
		// runsc is a runtime rebuild takes, as build does; the bad
		// --memory after it is what is refused.
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--runtime", "runsc", "--memory", "lots", img}, `--memory "lots": want a quantity`},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--memory", "0", img}, `--memory "0": want a quantity`},
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--pids", "-5", img}, "--pids -5: want a positive number"},
		// The build result's signature is logged only when signed.
		{[]string{"rebuild", "--key", "k.pub", "--insecure-ignore-tlog", "--signing-config", "signing_config.json", img}, "needs a signing key (--signing-key FILE):"},
	} {
		_, stderr, code := run(t, c.args...)
		if code != exitcode.Usage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 with %q", c.args, code, stderr, c.want)
		}
	}
}

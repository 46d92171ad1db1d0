package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/internal/exitcode"
)

func TestClean(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	for _, p := range []string{"sha256-aa/etc", "deps/gomod/x"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A read-only directory, as images have, is removed too.
	if err := os.Chmod(filepath.Join(dir, "sha256-aa/etc"), 0o555); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"clean", "--cache", dir}, IO{Out: &out, Err: &out}); err != nil {
		t.Fatalf("clean: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", dir, err)
	}
	if !strings.Contains(out.String(), "removed "+dir) {
		t.Errorf("output %q does not say what was removed", out.String())
	}
	err := Run(context.Background(), []string{"clean", "extra"}, IO{Out: &out, Err: &out})
	if exitcode.Of(err) != exitcode.Usage {
		t.Errorf("clean with an argument: %v, want a usage error", err)
	}
}

package builder

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/buildguard/buildguard/internal/harness"
)

// A run directory (TMPDIR) too small for the run's copy of the source is
// this machine's condition, not the step's: exit 3, an error that names
// TMPDIR and how much is free, no other runtime tried after it, nothing
// left behind there, and the source untouched.
func TestRunOnAFullDisk(t *testing.T) {
	requireRoot(t)
	s := busyboxStep(t, RuntimeAuto, "true")
	big := randomBytes(7, 2<<20)
	if err := os.WriteFile(filepath.Join(s.Source, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	small := harness.SmallDisk(t, "1m")
	t.Setenv("TMPDIR", small)

	res, err := Run(context.Background(), s)
	var ns *NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Run: %v, want a NoSpaceError wrapping ENOSPC", err)
	}
	if code := exitCodeOf(err); code != exitIncomplete {
		t.Errorf("exit code %d, want %d", code, exitIncomplete)
	}
	// Free is read once the partial copy is gone: most of the 1 MiB.
	if ns.Dir != small || ns.Setting != "TMPDIR" || ns.Free < 512<<10 || ns.Free > 1<<20 || ns.Need < int64(len(big)) {
		t.Errorf("NoSpaceError{Dir %q, Setting %q, Free %d, Need %d}, want %s, TMPDIR, 512 KiB to 1 MiB free and at least %d needed",
			ns.Dir, ns.Setting, ns.Free, ns.Need, small, len(big))
	}
	for _, want := range []string{"copying the source", "no space left on device", "the run directories (" + small + ") ran out of space", "MiB free, and the copies need 2.0 MiB;", "set TMPDIR to a directory on a larger one"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if res != nil && len(res.Notes) > 0 {
		for _, n := range res.Notes {
			if strings.Contains(n, "could not start the build") {
				t.Errorf("a runtime was tried after the disk ran full: %q", n)
			}
		}
	}
	if left, _ := os.ReadDir(small); len(left) > 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
	got, err := os.ReadFile(filepath.Join(s.Source, "big.bin"))
	if err != nil || sha256.Sum256(got) != sha256.Sum256(big) {
		t.Errorf("the source was changed: %v", err)
	}
}

package builder

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSourceDateEpoch(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(git, append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=@1600000000 +0000", "GIT_COMMITTER_DATE=@1650000000 +0000",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "f")
	run("commit", "-q", "-m", "one")
	// GIT_DIR in the host's environment must not redirect the look-up.
	t.Setenv("GIT_DIR", filepath.Join(t.TempDir(), "nowhere"))

	ctx := context.Background()
	cases := []struct {
		dir, configured, env string
		want                 int64
		from                 string
	}{
		{repo, "", "", 1650000000, EpochFromGit},
		{repo, "123", "", 123, EpochFromConfig},           // a configured value wins over the checkout
		{repo, "", "777", 1650000000, EpochFromGit},       // the checkout wins over the host's variable
		{t.TempDir(), "123", "777", 123, EpochFromConfig}, // and the configured value over the variable
		{t.TempDir(), "", "777", 777, EpochFromEnv},
		{t.TempDir(), "", "", 0, EpochFromDefault},
	}
	for _, c := range cases {
		t.Setenv("SOURCE_DATE_EPOCH", c.env)
		got, from, err := SourceDateEpoch(ctx, c.dir, c.configured)
		if err != nil || got != c.want || from != c.from {
			t.Errorf("SourceDateEpoch(%s, %q, env %q) = %d, %s, %v; want %d, %s", c.dir, c.configured, c.env, got, from, err, c.want, c.from)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, _, err := SourceDateEpoch(ctx, t.TempDir(), ""); err == nil {
		t.Errorf("a malformed $SOURCE_DATE_EPOCH was accepted")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	var se *StepError
	if _, _, err := SourceDateEpoch(ctx, t.TempDir(), "-5"); !errors.As(err, &se) {
		t.Errorf("negative configured value: %v, want a StepError", err)
	}
}

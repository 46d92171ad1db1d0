package releasekit

import (
	"os/exec"
	"strings"
	"testing"
)

func TestRunnerShowsAndChecksTheExitCode(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	var shown strings.Builder
	r := &Runner{Out: &shown}
	out, err := r.Run(t.Context(), t.TempDir(), 3, sh, "-c", "echo one; printf two >&2; exit 3")
	if err != nil {
		t.Fatalf("Run with the expected exit code: %v", err)
	}
	if out != "one\ntwo" {
		t.Errorf("output %q, want %q", out, "one\ntwo")
	}
	want := "$ sh -c echo one; printf two >&2; exit 3\n  one\n  two\n  (exit 3)\n"
	if shown.String() != want {
		t.Errorf("shown:\n%s\nwant:\n%s", shown.String(), want)
	}
	if _, err := r.Run(t.Context(), t.TempDir(), 0, sh, "-c", "exit 1"); err == nil || !strings.Contains(err.Error(), "exited 1, want 0") {
		t.Errorf("Run with another exit code: %v, want an error naming both", err)
	}
}

func TestQuietRunnerShowsNothingAndCarriesTheOutputInTheError(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	var shown strings.Builder
	r := &Runner{Out: &shown, Quiet: true}
	if _, err := r.Run(t.Context(), t.TempDir(), 0, sh, "-c", "echo fine"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	_, err = r.Run(t.Context(), t.TempDir(), 0, sh, "-c", "echo what went wrong; exit 2")
	if err == nil || !strings.Contains(err.Error(), "exited 2, want 0") || !strings.Contains(err.Error(), "what went wrong") {
		t.Errorf("Run with another exit code: %v, want an error with the exit codes and the output", err)
	}
	if shown.Len() != 0 {
		t.Errorf("a quiet runner showed %q", shown.String())
	}
}

package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Where a SOURCE_DATE_EPOCH came from (SourceDateEpoch's second result).
const (
	EpochFromConfig  = "config"      // the configured value
	EpochFromGit     = "git"         // the source's last commit
	EpochFromEnv     = "environment" // the host's $SOURCE_DATE_EPOCH
	EpochFromDefault = "default"     // none of these: 0
)

// SourceDateEpoch returns the SOURCE_DATE_EPOCH for a build of the source
// in dir, and where it came from, in the order buildguard.yaml documents: the
// configured value (seconds since 1970-01-01 UTC) when one is set; else the
// committer time of the last commit (`git log -1 --format=%ct`) when dir is a
// git checkout; else the host's $SOURCE_DATE_EPOCH; else 0. A dir that is
// not a checkout, or where git is missing, falls through quietly; a
// configured or inherited value that is not a non-negative integer is a
// *StepError.
//
// git runs with the host's environment minus every GIT_* variable, so that
// nothing redirects it to another repository.
func SourceDateEpoch(ctx context.Context, dir, configured string) (int64, string, error) {
	if configured != "" {
		v, err := parseEpoch(configured)
		if err != nil {
			return 0, "", stepErrorf("SourceDateEpoch", "%v", err)
		}
		return v, EpochFromConfig, nil
	}
	if t, ok := gitCommitTime(ctx, dir); ok {
		return t, EpochFromGit, nil
	}
	if env := os.Getenv("SOURCE_DATE_EPOCH"); env != "" {
		v, err := parseEpoch(env)
		if err != nil {
			return 0, "", stepErrorf("SourceDateEpoch", "$SOURCE_DATE_EPOCH: %v", err)
		}
		return v, EpochFromEnv, nil
	}
	return 0, EpochFromDefault, nil
}

func parseEpoch(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a non-negative number of seconds since 1970-01-01 UTC, got %q", s)
	}
	return v, nil
}

// gitCommitTime returns the committer time of dir's last commit, when dir is
// in a git checkout with at least one commit.
func gitCommitTime(ctx context.Context, dir string) (int64, bool) {
	git, err := exec.LookPath("git")
	if err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, "-C", dir, "--no-pager", "log", "-1", "--format=%ct")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GIT_TERMINAL_PROMPT=0")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

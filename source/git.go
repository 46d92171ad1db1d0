package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// gitTimeout bounds each git command.
const gitTimeout = 60 * time.Second

// maxGitOutput bounds what one git command may print (the index of a very
// large checkout lists a few hundred bytes per file).
const maxGitOutput = 1 << 30

// errNotCheckout says dir is not in a git work tree with a commit.
var errNotCheckout = errors.New("not a git checkout")

// git runs the host's git on one checkout without letting the checkout run
// code. Only commands that read the index, the object store and the config
// are used (rev-parse, ls-files, ls-tree, cat-file, config): they run no
// hooks, no filters (clean/smudge, textconv), no pager and no external diff.
// The one configured command they could start, core.fsmonitor, is switched
// off on the command line, which wins over the checkout's own config.
//
// git runs with a clean environment: no GIT_* variable of the host (which
// could point it at another repository), no system or global config (so
// the result does not depend on the machine), no prompt, the C locale.
// safe.directory is "*" on the command line: a checkout owned by another
// user (a CI runner's workspace seen by root, a container's bind mount) is
// read rather than refused, which is safe because nothing above runs what
// its config names.
type git struct {
	path string // the git binary
	dir  string // the source directory
}

func newGit(dir string) (*git, error) {
	p, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("%w: git is not installed", errNotCheckout)
	}
	return &git{path: p, dir: dir}, nil
}

// gitEnv is the environment git runs with.
func gitEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/nonexistent",
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_OPTIONAL_LOCKS=0",
		"GIT_NO_REPLACE_OBJECTS=1",
	}
}

// run runs git with args in the source directory and returns its standard
// output.
func (g *git) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	full := append([]string{
		"-C", g.dir, "--no-pager",
		"-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false",
		"-c", "safe.directory=*", "-c", "core.quotePath=false",
	}, args...)
	cmd := exec.CommandContext(ctx, g.path, full...) // #nosec G204 -- fixed git subcommands, no shell
	cmd.Env = gitEnv()
	var out limitedBuffer
	var stderr bytes.Buffer
	out.max = maxGitOutput
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500]
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	if out.over {
		return nil, fmt.Errorf("git %s: more than %d bytes of output", args[0], maxGitOutput)
	}
	return out.Bytes(), nil
}

// limitedBuffer keeps at most max bytes and remembers that more came.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// head is what rev-parse says about the checkout.
type head struct {
	commit string
	format string // the object format: sha1 or sha256
}

// revParse finds the checkout's HEAD commit, or errNotCheckout.
func (g *git) revParse(ctx context.Context) (*head, error) {
	out, err := g.run(ctx, "rev-parse", "--is-inside-work-tree")
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		return nil, errNotCheckout
	}
	out, err = g.run(ctx, "rev-parse", "--show-object-format", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil {
		return nil, fmt.Errorf("%w: no commit", errNotCheckout)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 || !isHex(lines[1]) {
		return nil, fmt.Errorf("git rev-parse: unexpected output %q", out)
	}
	h := &head{format: lines[0], commit: lines[1]}
	if h.format != "sha1" && h.format != "sha256" {
		return nil, fmt.Errorf("git object format %q is not supported", h.format)
	}
	return h, nil
}

// commitTime is the committer time of commit, read from the commit object.
func (g *git) commitTime(ctx context.Context, commit string) (int64, error) {
	out, err := g.run(ctx, "cat-file", "commit", commit)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if line == "" {
			break // the end of the headers
		}
		if rest, ok := strings.CutPrefix(line, "committer "); ok {
			f := strings.Fields(rest)
			if len(f) < 2 {
				break
			}
			t, err := strconv.ParseInt(f[len(f)-2], 10, 64)
			if err != nil || t < 0 {
				break
			}
			return t, nil
		}
	}
	return 0, fmt.Errorf("commit %s: no committer time", commit)
}

// origin is the raw URL of the remote "origin" as the checkout's config
// says, or "" when there is none. url.<base>.insteadOf rewriting is not
// applied: it lives in a user's global config, which is not read.
func (g *git) origin(ctx context.Context) string {
	out, err := g.run(ctx, "config", "--null", "--get", "remote.origin.url")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(out), "\x00")
}

// indexEntry is one entry of the index or of a tree.
type indexEntry struct {
	mode string // 100644, 100755, 120000 or 160000
	oid  string
}

// lsFiles lists the index entries below the source directory, by path
// relative to it; conflicted lists the paths with unmerged stages.
func (g *git) lsFiles(ctx context.Context) (entries map[string]indexEntry, order []string, conflicted []string, err error) {
	out, err := g.run(ctx, "ls-files", "-z", "--stage")
	if err != nil {
		return nil, nil, nil, err
	}
	entries = map[string]indexEntry{}
	seenConflict := map[string]bool{}
	for rec := range bytes.SplitSeq(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, p, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || p == "" {
			return nil, nil, nil, fmt.Errorf("git ls-files: unexpected record %q", rec)
		}
		if p == "./" || p == "." {
			continue // the directory itself: a submodule not checked out, seen from inside
		}
		if f[2] != "0" {
			if !seenConflict[p] {
				seenConflict[p] = true
				conflicted = append(conflicted, p)
			}
			if _, ok := entries[p]; ok {
				continue
			}
		}
		if _, ok := entries[p]; !ok {
			order = append(order, p)
		}
		entries[p] = indexEntry{mode: f[0], oid: f[1]}
	}
	return entries, order, conflicted, nil
}

// lsTree lists the blobs, links and gitlinks of commit below the source
// directory, by path relative to it.
func (g *git) lsTree(ctx context.Context, commit string) (map[string]indexEntry, error) {
	out, err := g.run(ctx, "ls-tree", "-r", "-z", commit)
	if err != nil {
		return nil, err
	}
	entries := map[string]indexEntry{}
	for rec := range bytes.SplitSeq(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, p, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("git ls-tree: unexpected record %q", rec)
		}
		entries[p] = indexEntry{mode: f[0], oid: f[2]}
	}
	return entries, nil
}

// untracked lists the files and directories below the source directory
// that git neither tracks nor ignores, relative to it.
func (g *git) untracked(ctx context.Context) ([]string, error) {
	out, err := g.run(ctx, "ls-files", "-z", "--others", "--exclude-standard", "--directory", "--no-empty-directory")
	if err != nil {
		return nil, err
	}
	var paths []string
	for rec := range bytes.SplitSeq(out, []byte{0}) {
		if len(rec) > 0 {
			paths = append(paths, strings.TrimSuffix(string(rec), "/"))
		}
	}
	return paths, nil
}

func isHex(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// inGitDir reports whether dir (absolute) holds a .git entry or lies below
// one that does: a cheap look before any git runs, so that a plain
// directory costs nothing.
func inGitDir(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

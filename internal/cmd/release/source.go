package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// source is the commit a release is made of.
type source struct {
	top    string // the work tree's top directory
	commit string
	epoch  int64 // the commit time: SOURCE_DATE_EPOCH
}

// tree is a prepared copy of the source: the commit's files and the
// vendored dependencies.
type tree struct {
	dir string
	// modulesTxt is vendor/modules.txt's digest, sha256:<hex>.
	modulesTxt string
	// modules are the vendored modules, path@version, as modules.txt
	// lists them.
	modules []string
	// digest is the source tree manifest's digest, from the provenance.
	digest string
}

// commit finds the HEAD commit and its time, and refuses a dirty work
// tree unless AllowDirty.
func (r *release) commit(ctx context.Context) (*source, error) {
	top, err := gitOut(ctx, r.o.Repo, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, err
	}
	commit, err := gitOut(ctx, top, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return nil, err
	}
	ct, err := gitOut(ctx, top, "log", "-1", "--format=%ct", commit)
	if err != nil {
		return nil, err
	}
	epoch, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("the commit time of %s: %w", commit, err)
	}
	status, err := gitOut(ctx, top, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return nil, err
	}
	if status != "" {
		if !r.o.AllowDirty {
			return nil, fmt.Errorf("%w: a release is built from the committed source (HEAD %s) only; commit them, or pass --allow-dirty to release HEAD without them:\n%s", ErrDirty, short(commit), status)
		}
		fmt.Fprintf(r.w, "release: --allow-dirty: the work tree has uncommitted changes; they are NOT in this release, which is built from HEAD %s:\n%s\n", short(commit), status)
	}
	return &source{top: top, commit: commit, epoch: epoch}, nil
}

// prepare writes the commit's files into dir (git archive), fetches the
// modules its go.mod names into this machine's module cache and verifies
// the cache against go.sum, vendors them, and checks that the target is a
// main package.
func (r *release) prepare(ctx context.Context, dir string) (*tree, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	archive := filepath.Join(filepath.Dir(dir), "source.tar")
	if _, err := r.goRun.Run(ctx, r.src.top, 0, "git", "archive", "--format=tar", "-o", archive, r.src.commit); err != nil {
		return nil, err
	}
	if _, err := r.goRun.Run(ctx, dir, 0, "tar", "-xf", archive); err != nil {
		return nil, err
	}
	if err := os.Remove(archive); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "vendor")); err == nil {
		return nil, fmt.Errorf("commit %s has a vendor directory: the release vendors the dependencies itself", short(r.src.commit))
	}
	// The sandbox has no network: the dependencies come in vendored, from
	// the module cache. The commit's go.mod names them and its go.sum pins
	// them: go mod download fetches what the cache lacks through the
	// module proxy (checking each against go.sum), go mod verify checks the
	// whole cache against go.sum again, and only then does go mod vendor
	// copy them, offline. The cache is the same for every pass: fetched and
	// verified once.
	if !r.verified {
		if _, err := r.fetchRun.Run(ctx, dir, 0, "go", "mod", "download"); err != nil {
			return nil, fmt.Errorf("fetching the modules of commit %s's go.mod through the module proxy (GOPROXY=%s): %w", short(r.src.commit), goProxy(), err)
		}
		if _, err := r.goRun.Run(ctx, dir, 0, "go", "mod", "verify"); err != nil {
			return nil, err
		}
		r.verified = true
	}
	if _, err := r.goRun.Run(ctx, dir, 0, "go", "mod", "vendor"); err != nil {
		return nil, err
	}
	out, err := r.goRun.Run(ctx, dir, 0, "go", "list", "-mod=vendor", "-f", "{{.Name}}", r.o.Target)
	if err != nil {
		return nil, err
	}
	if name := strings.TrimSpace(out); name != "main" {
		return nil, fmt.Errorf("--target %s is package %s, want a main package", r.o.Target, name)
	}
	t := &tree{dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "vendor", "modules.txt"))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	t.modulesTxt = "sha256:" + hex.EncodeToString(sum[:])
	t.modules = vendoredModules(data)
	fmt.Fprintf(r.w, "  vendor/modules.txt %s: %d modules, verified against go.sum\n", t.modulesTxt, len(t.modules))
	return t, nil
}

// vendoredModules lists the modules of a vendor/modules.txt that have
// packages in vendor/, path@version, in its order: each "# path version"
// line (a replacement follows "=>") followed by a package line.
func vendoredModules(data []byte) []string {
	var mods []string
	cur := ""
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		line := s.Text()
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "#":
			cur = f[1] + "@" + f[2]
		case len(f) == 1 && !strings.HasPrefix(line, "#") && cur != "":
			mods = append(mods, cur)
			cur = ""
		}
	}
	return mods
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, "git", args...)
	c.Dir = dir
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// goEnv returns the go command's value of the variable name.
func goEnv(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// goProxy is the module proxy go mod download uses, for its error message.
func goProxy() string {
	if p := os.Getenv("GOPROXY"); p != "" {
		return p
	}
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		return "go env GOPROXY: " + err.Error()
	}
	return strings.TrimSpace(string(out))
}

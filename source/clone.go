package source

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// Clone checks out commit of the repository at url into dir, which must
// not exist or be empty: a plain clone of every branch (a commit need not
// be the tip of one) and a detached checkout of the commit, without
// submodules. url is a git URL (https, ssh, git), a file:// URL or a local
// path; git's "ext::" transport, which runs a command, is refused, as is a
// url or commit that git could read as an option.
//
// It runs git as the rest of this package does (a clean environment, no
// system or global config), and the checkout runs no hook: core.hooksPath
// is /dev/null, and the clone brings no config of the remote's. After
// the checkout, HEAD must be commit.
func Clone(ctx context.Context, url, commit, dir string) error {
	if !isHex(commit) {
		return fmt.Errorf("commit %q: want 40 or 64 lower-case hex digits", commit)
	}
	if url == "" || strings.HasPrefix(url, "-") || strings.ContainsAny(url, "\x00\n\r") {
		return fmt.Errorf("repository %q: want a git URL or a path", url)
	}
	if strings.HasPrefix(strings.ToLower(url), "ext::") {
		return fmt.Errorf("repository %q: the ext:: transport runs a command and is refused", url)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g, err := newGit(dir)
	if err != nil {
		return err
	}
	safe := []string{"-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false"}
	if _, err := g.run(ctx, append(safe, "clone", "--quiet", "--no-checkout", "--no-recurse-submodules", "--", url, ".")...); err != nil {
		return fmt.Errorf("cloning %s: %w", url, err)
	}
	if _, err := g.run(ctx, append(safe, "checkout", "--quiet", "--detach", commit, "--")...); err != nil {
		return fmt.Errorf("checking out commit %s of %s: %w", commit, url, err)
	}
	h, err := g.revParse(ctx)
	if err != nil {
		return fmt.Errorf("reading the checkout of %s: %w", url, err)
	}
	if h.commit != commit {
		return fmt.Errorf("the checkout of %s is at %s, not %s", url, h.commit, commit)
	}
	return nil
}

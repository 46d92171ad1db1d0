// Package source describes the source tree of a guarded build: its tree
// manifest and digest, and, when it is a git checkout, the repository and
// commit it was checked out from.
//
// The digest of a git checkout covers the files git tracks, and only
// those: never .git/, never untracked or ignored files, never the evidence
// directory. Its entries are those builder.HashTree makes (path, type,
// normalised mode, size, SHA-256 of the content, link target), with the
// executable bit taken from git's index rather than from the file system,
// so that umask, core.fileMode, ownership and times of one checkout or
// another do not change it: every clean checkout of a commit has one
// digest, the same as builder.HashTree gives for the commit's `git archive`
// unpacked (but for empty directories, which git does not keep, and the
// files of checked-out submodules, which are covered below their paths). A source
// that is not a git checkout is hashed by builder.HashTree, whole.
package source

import (
	"context"
	"crypto/sha1" // #nosec G505 -- git's object ids, not a security choice of ours
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/buildguard/buildguard/builder"
)

// Options say how to read a source.
type Options struct {
	// MaxEntries bounds the entries of the tree; 0 is
	// builder.DefaultMaxOutputEntries.
	MaxEntries int64
	// Exclude is a directory below the source (slash-separated, relative to
	// it) left out of a git checkout's digest and of its untracked files:
	// the evidence directory.
	Exclude string
}

// Git is what a git checkout says about the source.
type Git struct {
	// URI is the repository as the provenance records it
	// ("git+https://host/path", see RepositoryURI), or "" when the
	// checkout has no network remote "origin".
	URI string
	// URL is URI without "git+", for org.opencontainers.image.source.
	URL string
	// Commit is HEAD's commit id (hex).
	Commit string
	// CommitTime is HEAD's committer time, seconds since 1970.
	CommitTime int64
	// Subdir is the source's path below the checkout's top (slash
	// separated, empty at the top).
	Subdir string
	// Changed are the tracked paths whose working-tree content, type or
	// mode differ from HEAD (modified, deleted, staged, conflicted), and
	// Untracked the files and directories neither tracked nor ignored; each
	// sorted, relative to the source.
	Changed   []string
	Untracked []string
}

// Dirty reports whether the checkout differs from its commit.
func (g *Git) Dirty() bool { return len(g.Changed)+len(g.Untracked) > 0 }

// Tree is a source read.
type Tree struct {
	Manifest *builder.Manifest
	// Git is nil when the source is not a git checkout with a commit.
	Git *Git
	// Notes are statements for the report.
	Notes []string
}

// Read reads the source in dir. A directory that is not in a git checkout
// with a commit (or a machine without git) is hashed whole, as
// builder.HashTreeMax does; a checkout whose files under dir git does not
// track at all (a directory git ignores) is too.
func Read(ctx context.Context, dir string, o Options) (*Tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if o.MaxEntries < 0 {
		return nil, fmt.Errorf("the entry limit must not be negative, got %d", o.MaxEntries)
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = builder.DefaultMaxOutputEntries
	}
	t, err := readGit(ctx, abs, o, 0)
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, errNotCheckout) {
		return nil, err
	}
	m, err := builder.HashTreeMax(ctx, dir, o.MaxEntries)
	if err != nil {
		return nil, err
	}
	return &Tree{Manifest: m}, nil
}

// readGit reads a git checkout, or returns errNotCheckout; depth counts
// the submodules it lies in.
func readGit(ctx context.Context, dir string, o Options, depth int) (*Tree, error) {
	if !inGitDir(dir) {
		return nil, errNotCheckout
	}
	g, err := newGit(dir)
	if err != nil {
		return nil, err
	}
	h, err := g.revParse(ctx)
	if err != nil {
		return nil, err
	}
	index, order, conflicted, err := g.lsFiles(ctx)
	if err != nil {
		return nil, err
	}
	excluded := func(p string) bool {
		return o.Exclude != "" && (p == o.Exclude || strings.HasPrefix(p, o.Exclude+"/"))
	}
	paths := order[:0:0]
	for _, p := range order {
		if !excluded(p) {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: git tracks no file here", errNotCheckout)
	}
	prefix, err := g.run(ctx, "rev-parse", "--show-prefix")
	if err != nil {
		return nil, err
	}
	info := &Git{Commit: h.commit, Subdir: strings.TrimSuffix(strings.TrimSpace(string(prefix)), "/")}
	if info.CommitTime, err = g.commitTime(ctx, h.commit); err != nil {
		return nil, err
	}
	remote := g.origin(ctx)
	info.URI, info.URL = RepositoryURI(remote), SourceURL(remote)
	tree, err := g.lsTree(ctx, h.commit)
	if err != nil {
		return nil, err
	}
	untracked, err := g.untracked(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range untracked {
		// an untracked parent of the evidence directory is listed as itself
		holdsExcluded := o.Exclude != "" && strings.HasPrefix(o.Exclude+"/", p+"/")
		if !excluded(p) && !holdsExcluded {
			info.Untracked = append(info.Untracked, p)
		}
	}

	m, changed, err := hashTracked(ctx, dir, paths, index, h.format, o.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", dir, err)
	}
	subChanged, subUntracked, err := addSubmodules(ctx, dir, m, paths, index, o, depth)
	if err != nil {
		return nil, err
	}
	changed = append(changed, subChanged...)
	info.Untracked = append(info.Untracked, subUntracked...)
	changedSet := map[string]bool{}
	for _, p := range append(changed, conflicted...) {
		changedSet[p] = true
	}
	for p, e := range index { // staged: the index differs from HEAD
		if excluded(p) {
			continue
		}
		if te, ok := tree[p]; !ok || te != e {
			changedSet[p] = true
		}
	}
	for p := range tree { // staged deletions
		if _, ok := index[p]; !ok && !excluded(p) {
			changedSet[p] = true
		}
	}
	for p := range changedSet {
		info.Changed = append(info.Changed, p)
	}
	sort.Strings(info.Changed)
	sort.Strings(info.Untracked)
	t := &Tree{Manifest: m, Git: info}
	if info.URI == "" {
		if remote == "" {
			t.Notes = append(t.Notes, fmt.Sprintf("the source is git commit %s, but the checkout has no remote \"origin\": the provenance names no repository", h.commit))
		} else {
			t.Notes = append(t.Notes, fmt.Sprintf("the source is git commit %s, but its remote \"origin\" is not a network URL: the provenance names no repository", h.commit))
		}
	}
	if info.Dirty() {
		t.Notes = append(t.Notes, dirtyNote(info))
	}
	return t, nil
}

// maxSubmoduleDepth bounds submodules within submodules.
const maxSubmoduleDepth = 8

// addSubmodules adds the files of each checked-out submodule (a gitlink
// whose directory is a checkout) below its directory to m, as its own
// checkout's digest covers them, and returns the submodule paths that
// differ from what the superproject records (another commit checked out,
// changed files) and its untracked files, relative to dir. A submodule that
// is not checked out is an empty directory, as the build sees it.
func addSubmodules(ctx context.Context, dir string, m *builder.Manifest, paths []string, index map[string]indexEntry, o Options, depth int) (changed, untracked []string, err error) {
	added := false
	for _, p := range paths {
		if index[p].mode != "160000" {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !fi.IsDir() {
			continue // recorded as changed by hashTracked
		}
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p), ".git")); err != nil {
			continue // not checked out: an empty directory
		}
		if depth >= maxSubmoduleDepth {
			return nil, nil, fmt.Errorf("submodule %s: more than %d submodules deep", p, maxSubmoduleDepth)
		}
		sub, err := readGit(ctx, filepath.Join(dir, filepath.FromSlash(p)), Options{MaxEntries: o.MaxEntries}, depth+1)
		if errors.Is(err, errNotCheckout) {
			continue // not checked out (or empty): an empty directory
		}
		if err != nil {
			return nil, nil, fmt.Errorf("submodule %s: %w", p, err)
		}
		if sub.Git.Subdir != "" {
			continue // not a checkout of its own: files of the superproject's
		}
		for _, e := range sub.Manifest.Entries {
			e.Path = p + "/" + e.Path
			m.Entries = append(m.Entries, e)
		}
		added = true
		if int64(len(m.Entries)) > o.MaxEntries {
			return nil, nil, fmt.Errorf("more than %d entries (raise with limits.outputEntries)", o.MaxEntries)
		}
		if sub.Git.Commit != index[p].oid {
			changed = append(changed, p)
		}
		for _, c := range sub.Git.Changed {
			changed = append(changed, p+"/"+c)
		}
		for _, u := range sub.Git.Untracked {
			untracked = append(untracked, p+"/"+u)
		}
	}
	if added {
		sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	}
	return changed, untracked, nil
}

// maxNamed is how many paths a note names.
const maxNamed = 5

func dirtyNote(g *Git) string {
	var parts []string
	if n := len(g.Changed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d changed tracked path(s): %s", n, named(g.Changed)))
	}
	if n := len(g.Untracked); n > 0 {
		parts = append(parts, fmt.Sprintf("%d untracked path(s), visible to the build but not in the source digest: %s", n, named(g.Untracked)))
	}
	return fmt.Sprintf("the source checkout has uncommitted changes (%s): the build is not of commit %s alone, and a checkout of that commit will not have the same source digest", strings.Join(parts, "; "), g.Commit)
}

func named(paths []string) string {
	q := make([]string, 0, maxNamed)
	for i, p := range paths {
		if i == maxNamed {
			q = append(q, "...")
			break
		}
		q = append(q, strconv.Quote(p))
	}
	return strings.Join(q, ", ")
}

// hashTracked hashes the tracked paths of dir into a manifest and returns
// the paths whose working tree differs from the index (content, type,
// deletion). Files are read through an os.Root, so nothing outside dir is
// read, and hashed in parallel into entries by index.
func hashTracked(ctx context.Context, dir string, paths []string, index map[string]indexEntry, format string, maxEntries int64) (*builder.Manifest, []string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	m := &builder.Manifest{Entries: []builder.ManifestEntry{}}
	dirs := map[string]bool{}
	addDirs := func(p string) {
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	type job struct {
		entry int // index into m.Entries
		want  string
		info  fs.FileInfo
	}
	var jobs []job
	var changed []string
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		ie := index[p]
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			changed = append(changed, p) // deleted from the working tree
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		e := builder.ManifestEntry{Path: p}
		switch {
		case ie.mode == "160000": // a submodule: its own checkout
			if !fi.IsDir() {
				changed = append(changed, p)
				continue
			}
			e.Type, e.Mode = builder.TypeDir, "0755"
		case fi.Mode().IsRegular():
			e.Type, e.Size, e.Mode = builder.TypeFile, fi.Size(), "0644"
			if ie.mode == "100755" {
				e.Mode = "0755"
			}
			if ie.mode != "100644" && ie.mode != "100755" {
				changed = append(changed, p) // a link in git, a file here
			}
			jobs = append(jobs, job{entry: len(m.Entries), want: ie.oid, info: fi})
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Mode = builder.TypeSymlink, "0777"
			if e.Target, err = root.Readlink(p); err != nil {
				return nil, nil, err
			}
			if ie.mode != "120000" || gitBlobID(format, []byte(e.Target)) != ie.oid {
				changed = append(changed, p)
			}
		default:
			changed = append(changed, p) // a directory or special file where git has a file
			continue
		}
		m.Entries = append(m.Entries, e)
		addDirs(p)
		if int64(len(m.Entries)+len(dirs)) > maxEntries {
			return nil, nil, fmt.Errorf("more than %d entries (raise with limits.outputEntries)", maxEntries)
		}
	}
	sums := make([]string, len(jobs))
	oids := make([]string, len(jobs))
	if err := parallel(ctx, len(jobs), func(i int, buf []byte) error {
		j := jobs[i]
		s, o, err := hashFile(root, m.Entries[j.entry].Path, j.info, format, buf)
		sums[i], oids[i] = s, o
		return err
	}); err != nil {
		return nil, nil, err
	}
	for i, j := range jobs {
		m.Entries[j.entry].SHA256 = sums[i]
		if oids[i] != j.want {
			changed = append(changed, m.Entries[j.entry].Path)
		}
	}
	for d := range dirs {
		m.Entries = append(m.Entries, builder.ManifestEntry{Path: d, Type: builder.TypeDir, Mode: "0755"})
	}
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	return m, changed, nil
}

// parallel runs f for 0..n-1 on one goroutine per usable core, each with
// its own buffer, and returns the first error.
func parallel(ctx context.Context, n int, f func(i int, buf []byte) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), n)) {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for i := range work {
				if err := f(i, buf); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// hashFile returns the SHA-256 (hex) of a regular file's content and its
// git blob id, in one read. The file must still be the one the walk saw.
func hashFile(root *os.Root, name string, want fs.FileInfo, format string, buf []byte) (string, string, error) {
	f, err := root.Open(name)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", name, err)
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, want) || fi.Size() != want.Size() {
		return "", "", fmt.Errorf("%s: changed while the source was read", name)
	}
	sum, blob := sha256.New(), newGitHash(format)
	fmt.Fprintf(blob, "blob %d\x00", fi.Size())
	n, err := io.CopyBuffer(io.MultiWriter(sum, blob), struct{ io.Reader }{f}, buf)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", name, err)
	}
	if n != want.Size() {
		return "", "", fmt.Errorf("%s: changed while the source was read", name)
	}
	return hex.EncodeToString(sum.Sum(nil)), hex.EncodeToString(blob.Sum(nil)), nil
}

func newGitHash(format string) hash.Hash {
	if format == "sha256" {
		return sha256.New()
	}
	return sha1.New() // #nosec G401 -- git's object ids
}

// gitBlobID is the id git gives a blob of data.
func gitBlobID(format string, data []byte) string {
	h := newGitHash(format)
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

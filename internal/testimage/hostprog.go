package testimage

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostPrograms returns layer entries holding each dynamically linked host
// program at its own path together with every shared library it loads
// (as ldd lists them, the dynamic loader included), each library at the
// path ldd resolves it to, as regular files (links are read through):
// enough to run the programs in an image with no libc of its own.
func HostPrograms(programs ...string) ([]Entry, error) {
	files := map[string]bool{}
	for _, p := range programs {
		files[p] = true
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", p, err)
		}
		s := bufio.NewScanner(bytes.NewReader(out))
		for s.Scan() {
			f := strings.Fields(s.Text())
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				files[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				files[f[0]] = true // the dynamic loader
			}
		}
	}
	var ents []Entry
	dirs := map[string]bool{}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range files {
			if !yield(p) {
				return
			}
		}
	}) {
		ents = appendDirs(ents, dirs, filepath.Dir(p))
		// The file itself, not a link: the image has none of the
		// host's merged-/usr links for a link to resolve through.
		e, err := hostEntry(p, true)
		if err != nil {
			return nil, err
		}
		ents = append(ents, e)
	}
	return ents, nil
}

// HostTree returns layer entries holding the host directory dir (files,
// directories and symbolic links, modes kept) at the same path.
func HostTree(dir string) ([]Entry, error) {
	var ents []Entry
	dirs := map[string]bool{}
	ents = appendDirs(ents, dirs, filepath.Dir(dir))
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			ents = appendDirs(ents, dirs, p)
			return nil
		}
		e, err := hostEntry(p, false)
		if err != nil {
			return err
		}
		ents = append(ents, e)
		return nil
	})
	return ents, err
}

// hostEntry is the host file p as an entry at the same path; follow reads
// through a link instead of keeping it.
func hostEntry(p string, follow bool) (Entry, error) {
	name := strings.TrimPrefix(p, "/")
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(p)
	if err != nil {
		return Entry{}, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		if err != nil {
			return Entry{}, err
		}
		return Entry{Name: name, Link: target}, nil
	}
	if !fi.Mode().IsRegular() {
		return Entry{}, fmt.Errorf("%s is not a regular file, directory or link", p)
	}
	body, err := os.ReadFile(p)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: name, Mode: int64(fi.Mode().Perm()), Body: body}, nil
}

// appendDirs appends a directory entry for dir and each of its parents not
// yet in dirs.
func appendDirs(ents []Entry, dirs map[string]bool, dir string) []Entry {
	if dir == "/" || dir == "." || dirs[dir] {
		return ents
	}
	ents = appendDirs(ents, dirs, filepath.Dir(dir))
	dirs[dir] = true
	return append(ents, Entry{Name: strings.TrimPrefix(dir, "/"), Dir: true})
}

// NodePath is the PATH of NodeImage.
const NodePath = "/usr/bin:/bin"

// NodeImage is a builder image with this machine's node (and the libraries
// it loads) at /usr/bin/node, npm's package at /usr/lib/node_modules/npm
// with /usr/bin/npm linking to its CLI, and the static busybox bb with
// applets in /bin: enough for `npm ci` and `node build.js`.
func NodeImage(bb []byte, applets []string) (v1.Image, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if node, err = filepath.EvalSymlinks(node); err != nil {
		return nil, err
	}
	npmCLI, err := exec.LookPath("npm")
	if err != nil {
		return nil, fmt.Errorf("npm: %w", err)
	}
	if npmCLI, err = filepath.EvalSymlinks(npmCLI); err != nil {
		return nil, err
	}
	npmRoot := filepath.Dir(filepath.Dir(npmCLI)) // .../node_modules/npm
	progs, err := HostPrograms(node)
	if err != nil {
		return nil, err
	}
	tree, err := HostTree(npmRoot)
	if err != nil {
		return nil, err
	}
	ents := append(progs, tree...)
	if node != "/usr/bin/node" {
		ents = append(ents, Entry{Name: "usr/bin/node", Link: node})
	}
	// npm's CLI starts with #!/usr/bin/env node.
	ents = append(ents, Entry{Name: "usr/bin/npm", Link: npmCLI}, Entry{Name: "usr/bin/env", Link: "/bin/busybox"})
	bbl, err := BusyboxLayer(bb, applets)
	if err != nil {
		return nil, err
	}
	nl, err := Layer(dedupe(ents))
	if err != nil {
		return nil, err
	}
	return linuxImage(func(c *v1.Config) { c.Env = []string{"PATH=" + NodePath} }, bbl, nl)
}

// dedupe drops repeated directory entries, keeping the first.
func dedupe(ents []Entry) []Entry {
	seen := map[string]bool{}
	out := ents[:0]
	for _, e := range ents {
		if seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		out = append(out, e)
	}
	return out
}

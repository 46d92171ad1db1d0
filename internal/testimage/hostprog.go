package testimage

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostPrograms returns layer entries holding the host's dynamically linked
// programs (absolute host paths, such as /usr/bin/date) at their own paths,
// with every library ldd(1) lists for them and their dynamic loader, each
// at the path the program asks for it by: enough of the host's glibc to run
// them in an image, with libm.so.6 beside libc.so.6. Entries come in a fixed order, with their directories.
func HostPrograms(programs ...string) ([]Entry, error) {
	files := map[string]string{} // image path -> host path
	for _, p := range programs {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("host program %q: want an absolute path", p)
		}
		files[p] = p
		f, err := elf.Open(p)
		if err != nil {
			return nil, err
		}
		var interp string
		for _, pr := range f.Progs {
			if pr.Type == elf.PT_INTERP {
				b := make([]byte, pr.Filesz)
				if _, err := pr.ReadAt(b, 0); err != nil {
					_ = f.Close()
					return nil, fmt.Errorf("%s: reading PT_INTERP: %w", p, err)
				}
				interp = string(bytes.TrimRight(b, "\x00"))
			}
		}
		_ = f.Close()
		if interp == "" {
			return nil, fmt.Errorf("%s is statically linked: HostPrograms is for dynamically linked programs", p)
		}
		files[interp] = interp
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", p, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
			if _, rest, ok := strings.Cut(sc.Text(), "=> "); ok {
				if lib, _, _ := strings.Cut(rest, " "); filepath.IsAbs(lib) {
					files[lib] = lib
					if path.Base(lib) == "libc.so.6" {
						// Every glibc image holds libm beside libc (both
						// are the libc6 package), and preloaded libraries
						// such as libfaketime need it.
						m := path.Join(path.Dir(lib), "libm.so.6")
						files[m] = m
					}
				}
			}
		}
	}
	var ents []Entry
	dirs := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		var parents []string
		for d := path.Dir(name); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		slices.Reverse(parents)
		for _, d := range parents {
			ents = append(ents, Entry{Name: strings.TrimPrefix(d, "/"), Dir: true})
		}
		body, err := os.ReadFile(files[name]) // follows the host's symlinks
		if err != nil {
			return nil, err
		}
		ents = append(ents, Entry{Name: strings.TrimPrefix(name, "/"), Mode: 0o755, Body: body})
	}
	if len(ents) == 0 {
		return nil, errors.New("HostPrograms: no programs named")
	}
	return ents, nil
}

// GlibcImage is a linux image for this machine's architecture with the
// static busybox bb and its applets in /bin (BusyboxLayer), and in a second
// layer the host programs with the host's glibc (HostPrograms), with
// PATH=/usr/bin:/bin so that a host program (coreutils' date at
// /usr/bin/date) wins over a busybox applet of the same name. It is the
// builder image of a test that needs a dynamically linked program, such as
// one that libfaketime reaches. Debian's static busybox is a standalone
// shell that runs its own applets before searching PATH, so a script run by
// its sh names a host program by path (/usr/bin/date), not by name.
func GlibcImage(bb []byte, applets []string, programs ...string) (v1.Image, error) {
	bl, err := BusyboxLayer(bb, applets)
	if err != nil {
		return nil, err
	}
	ents, err := HostPrograms(programs...)
	if err != nil {
		return nil, err
	}
	gl, err := Layer(ents)
	if err != nil {
		return nil, err
	}
	return linuxImage(func(c *v1.Config) { c.Env = []string{"PATH=/usr/bin:/bin"} }, bl, gl)
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
		e, err := hostEntry(p)
		if err != nil {
			return err
		}
		ents = append(ents, e)
		return nil
	})
	return ents, err
}

// hostEntry is the host file or link p as an entry at the same path.
func hostEntry(p string) (Entry, error) {
	name := strings.TrimPrefix(p, "/")
	fi, err := os.Lstat(p)
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

package builder

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
)

// lookCommand checks, before any runtime starts, that name (argv[0]) is an
// executable file of the image, searched in pathEnv as execvp(3) would, so
// that a wrong command is reported as a configuration error rather than as
// a runtime that could not start. Symlinks are followed as the container
// sees them (absolute targets stay inside the root). Commands under the
// workdir, or given relative to it, come from the source and are not
// checked here.
func lookCommand(rootfs, name, pathEnv, workdir string) error {
	var cands []string
	switch {
	case strings.HasPrefix(name, "/"):
		if name == workdir || strings.HasPrefix(name, workdir+"/") {
			return nil
		}
		cands = []string{name}
	case strings.Contains(name, "/"):
		return nil // relative to the workdir: part of the source
	default:
		for _, d := range strings.Split(pathEnv, ":") {
			if d == "" || !strings.HasPrefix(d, "/") {
				continue
			}
			if d == workdir || strings.HasPrefix(d, workdir+"/") {
				return nil // may be found in the source
			}
			cands = append(cands, path.Join(d, name))
		}
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return &StepError{Field: "Rootfs", Err: err}
	}
	defer root.Close()
	a := newApplier(root, Limits{}.withDefaults(), nil)
	for _, c := range cands {
		if isExecutable(a, c) {
			return nil
		}
	}
	if strings.HasPrefix(name, "/") {
		return stepErrorf("Command", "%s is not an executable file of the builder image", name)
	}
	return stepErrorf("Command", "%q is not an executable file in the builder image's PATH (%s)", name, pathEnv)
}

// isExecutable reports whether p (absolute, in the container) resolves to a
// regular file with an execute bit.
func isExecutable(a *applier, p string) bool {
	_, fi, ok := resolveFile(a, p)
	return ok && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// resolveFile follows p (absolute, in the container) through symlinks as
// the container would (absolute targets stay inside the root) and returns
// the path of what it names, relative to the root, and its FileInfo; ok is
// false when nothing is there.
func resolveFile(a *applier, p string) (string, fs.FileInfo, bool) {
	for range maxSymlinkFollows {
		dir, err := a.resolve(strings.TrimPrefix(path.Dir(p), "/"), false)
		if err != nil {
			return "", nil, false
		}
		full := path.Join(dir, path.Base(p))
		fi, err := a.root.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) || err != nil {
			return "", nil, false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return full, fi, true
		}
		target, err := a.root.Readlink(full)
		if err != nil {
			return "", nil, false
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join("/", dir, target)
		}
		p = path.Clean(target)
	}
	return "", nil, false
}

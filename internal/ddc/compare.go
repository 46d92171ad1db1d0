package ddc

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CompareDirs are the parts of a Go tree the comparison covers: the
// commands and the tools. Since Go 1.20 a distribution ships no compiled
// standard library (pkg/linux_amd64), so there is none to compare.
var CompareDirs = []string{"bin", "pkg/tool"}

// File is one file of the comparison.
type File struct {
	// Path is relative to the Go tree, with slashes.
	Path string `json:"path"`
	// Bootstrapped and Official are the file's sha256 in each tree;
	// Bootstrapped is empty when the bootstrapped tree lacks it.
	Bootstrapped string `json:"bootstrapped,omitempty"`
	Official     string `json:"official,omitempty"`
	// Identical is true when both trees hold it with the same bytes.
	Identical bool `json:"identical"`
}

// Comparison is comparison.json: the bootstrapped toolchain against the
// official release, file by file.
type Comparison struct {
	APIVersion string `json:"apiVersion"`
	// Release is the Go release compared.
	Release string `json:"release"`
	// Official names the official tree: the toolchain module zip and its
	// sha256.
	Official string `json:"official"`
	// Bootstrapped names the chain's final stage: its cache key.
	Bootstrapped string `json:"bootstrapped"`
	// Dirs are the parts compared.
	Dirs []string `json:"dirs"`
	// Identical is true when every file of the official tree is in the
	// bootstrapped one with the same bytes.
	Identical bool `json:"identical"`
	// Files lists every file of the official tree, in path order.
	Files []File `json:"files"`
	// NotShipped are the files make.bash made that the distribution does
	// not ship (cmd/distpack keeps only the tools a build runs), so they
	// have nothing to be compared with.
	NotShipped []string `json:"notShipped,omitempty"`
	// Explanation is what `buildguard diff` says of the two trees when
	// they differ.
	Explanation string `json:"explanation,omitempty"`
}

// Compare compares the files below dirs (CompareDirs) of the official Go
// tree with the same files of the bootstrapped one: identical is true when
// every official file is in the bootstrapped tree with the same bytes. A
// make.bash installs more tools than a distribution ships (cmd/distpack
// keeps only those a build runs), so the files only the bootstrapped tree
// holds are returned apart, as extra, and do not count. A dir missing from
// a tree is an error: the tree is not a Go toolchain.
func Compare(bootstrapped, official string, dirs []string) (files []File, extra []string, identical bool, err error) {
	a, err := hashTree(bootstrapped, dirs)
	if err != nil {
		return nil, nil, false, err
	}
	b, err := hashTree(official, dirs)
	if err != nil {
		return nil, nil, false, err
	}
	paths := slices.Sorted(maps.Keys(b))
	for p := range a {
		if _, ok := b[p]; !ok {
			extra = append(extra, p)
		}
	}
	slices.Sort(extra)
	files = make([]File, 0, len(paths))
	identical = len(paths) > 0
	for _, p := range paths {
		f := File{Path: p, Bootstrapped: a[p], Official: b[p]}
		f.Identical = f.Bootstrapped == f.Official
		identical = identical && f.Identical
		files = append(files, f)
	}
	return files, extra, identical, nil
}

// hashTree returns the sha256 of every regular file below dirs of root.
func hashTree(root string, dirs []string) (map[string]string, error) {
	sums := map[string]string{}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	for _, d := range dirs {
		err := fs.WalkDir(r.FS(), d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.Type().IsRegular() {
				if !e.IsDir() {
					return fmt.Errorf("%s: not a regular file or a directory", p)
				}
				return nil
			}
			f, err := r.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			d, _, err := v1.SHA256(f)
			if err != nil {
				return err
			}
			sums[p] = d.Hex
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s has no %s: not a Go toolchain tree", root, filepath.FromSlash(d))
		}
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", root, err)
		}
	}
	return sums, nil
}

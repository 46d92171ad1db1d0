package ddc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// CompareDirs are the parts of a Go tree the comparison covers: the
// commands and the tools. Since Go 1.20 a distribution ships no compiled
// standard library (pkg/linux_amd64), so there is none to compare.
var CompareDirs = []string{"bin", "pkg/tool"}

// File is one file of the comparison.
type File struct {
	// Path is relative to the Go tree, with slashes.
	Path string `json:"path"`
	// Bootstrapped and Official are the file's sha256 in each tree; empty
	// when the tree lacks it.
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
	// Identical is true when every file is identical and neither tree has
	// a file the other lacks.
	Identical bool `json:"identical"`
	// Files lists every file of either tree, in path order.
	Files []File `json:"files"`
	// Explanation is what `buildguard diff` says of the two trees when
	// they differ.
	Explanation string `json:"explanation,omitempty"`
}

// Compare compares the files of dirs (CompareDirs) in the Go trees
// bootstrapped and official. A dir missing from a tree is an error: the
// tree is not a Go toolchain.
func Compare(bootstrapped, official string, dirs []string) ([]File, bool, error) {
	a, err := hashTree(bootstrapped, dirs)
	if err != nil {
		return nil, false, err
	}
	b, err := hashTree(official, dirs)
	if err != nil {
		return nil, false, err
	}
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	files := make([]File, 0, len(paths))
	same := len(paths) > 0
	for _, p := range paths {
		f := File{Path: p, Bootstrapped: a[p], Official: b[p]}
		f.Identical = f.Bootstrapped != "" && f.Bootstrapped == f.Official
		same = same && f.Identical
		files = append(files, f)
	}
	return files, same, nil
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
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
			sums[p] = hex.EncodeToString(h.Sum(nil))
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

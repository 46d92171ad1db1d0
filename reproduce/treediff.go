package reproduce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/buildguard/buildguard/builder"
)

// Diff compares two trees and explains how they differ. It lists both trees
// in parallel (paths, types, normalised permissions, sizes, link targets:
// no file is read), and then compares the contents of the files whose
// metadata agree, byte by byte, in parallel, stopping at each file's first
// difference. Only the files found to differ are opened again, to explain
// them. Comparing bytes instead of hashing both sides keeps an identical
// pair of trees at the speed of reading them.
func Diff(ctx context.Context, dirA, dirB string, lim Limits) (*Difference, error) {
	var ma, mb *builder.Manifest
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		ma, err = builder.ListTree(gctx, dirA)
		if err != nil {
			err = fmt.Errorf("reading %s: %w", dirA, err)
		}
		return err
	})
	g.Go(func() (err error) {
		mb, err = builder.ListTree(gctx, dirB)
		if err != nil {
			err = fmt.Errorf("reading %s: %w", dirB, err)
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	d := Compare(ma, mb)
	same, err := sameContents(ctx, dirA, dirB, candidates(ma, mb))
	if err != nil {
		return nil, err
	}
	for p, ok := range same {
		if !ok {
			d.Changed = append(d.Changed, p)
		}
	}
	sort.Strings(d.Changed)
	if err := d.explain(ctx, ma, mb, dirA, dirB, lim); err != nil {
		return nil, err
	}
	return d, nil
}

// candidates are the regular files present in both manifests with the same
// metadata, whose contents must still be compared.
func candidates(a, b *builder.Manifest) []string {
	eb := make(map[string]builder.ManifestEntry, len(b.Entries))
	for _, e := range b.Entries {
		eb[e.Path] = e
	}
	var out []string
	for _, e := range a.Entries {
		if e.Type == builder.TypeFile {
			if f, ok := eb[e.Path]; ok && f == e {
				out = append(out, e.Path)
			}
		}
	}
	return out
}

// compareBuf is the chunk each side of a file is read in.
const compareBuf = 1 << 20

// sameContents compares each path's bytes under dirA and dirB, one worker
// per core, through os.Root so that nothing outside either tree is read.
func sameContents(ctx context.Context, dirA, dirB string, paths []string) (map[string]bool, error) {
	ra, err := os.OpenRoot(dirA)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	rb, err := os.OpenRoot(dirB)
	if err != nil {
		return nil, err
	}
	defer rb.Close()
	out := make(map[string]bool, len(paths))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	pool := sync.Pool{New: func() any { b := make([]byte, 2*compareBuf); return &b }}
	for _, p := range paths {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			buf := pool.Get().(*[]byte)
			defer pool.Put(buf)
			same, err := sameFile(ra, rb, filepath.FromSlash(p), *buf)
			if err != nil {
				return fmt.Errorf("comparing %s: %w", p, err)
			}
			mu.Lock()
			out[p] = same
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

func sameFile(ra, rb *os.Root, name string, buf []byte) (bool, error) {
	fa, err := ra.Open(name)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := rb.Open(name)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := buf[:compareBuf], buf[compareBuf:]
	for {
		na, errA := io.ReadFull(fa, ba)
		nb, errB := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		endA, endB := isEnd(errA), isEnd(errB)
		switch {
		case errA != nil && !endA:
			return false, errA
		case errB != nil && !endB:
			return false, errB
		case endA || endB:
			return endA && endB, nil
		}
	}
}

func isEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

package deps

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // sha1 is checked only where a lockfile pins nothing stronger, and then reported as Weak
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// pinKind is how a lockfile pins one artifact.
type pinKind int

const (
	pinNone  pinKind = iota // no hash: fetched, nothing checked
	pinH1Zip                // go.sum's h1 of a module zip (dirhash.HashZip)
	pinH1Mod                // go.sum's h1 of a go.mod (dirhash.Hash1 over one "go.mod")
	pinHash                 // a plain digest of the bytes (SRI, a file's sha256)
)

// pin is one expected hash.
type pin struct {
	kind pinKind
	algo string // "h1", or sha1/sha256/sha384/sha512
	sum  []byte // the decoded digest
	text string // as the lockfile writes it, for messages
}

// key is the cache index key of the pin ("" for none).
func (p pin) key() string {
	switch p.kind {
	case pinH1Zip:
		return "h1-zip/" + hex.EncodeToString(p.sum)
	case pinH1Mod:
		return "h1-mod/" + hex.EncodeToString(p.sum)
	case pinHash:
		return p.algo + "/" + hex.EncodeToString(p.sum)
	}
	return ""
}

// parseH1 decodes go.sum's "h1:<base64 of a sha256>".
func parseH1(s string) ([]byte, bool) {
	b64, ok := strings.CutPrefix(s, "h1:")
	if !ok {
		return nil, false
	}
	sum, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(sum) != sha256.Size || base64.StdEncoding.EncodeToString(sum) != b64 {
		return nil, false
	}
	return sum, true
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "sha1":
		return sha1.New() //nolint:gosec // see the import
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// artifact is one thing to fetch: a module zip, a go.mod, a tarball, a
// file. Artifacts are shared by the dependencies that name the same bytes.
type artifact struct {
	dep  Dependency // the first dependency naming it, for messages
	what string     // "module zip", "go.mod", "tarball", "file"
	urls []proxy    // tried in order (a GOPROXY list), else one
	pin  pin
	mod  module.Version // for a module zip: what CheckZip checks against

	// Set by ensure.
	blob     string            // the verified blob
	sums     map[string][]byte // sha256, sha512 (and the pin's algorithm) of the bytes
	size     int64
	cached   bool
	mismatch *MismatchError
}

// invalidError is fetched bytes that are not a dependency at all (a module
// zip CheckZip refuses): the server answered something else.
type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

// ensure makes a.blob a verified copy of the artifact: the cached blob if
// the pin's index names one that still verifies, else a fresh download
// (through a's URLs in order) verified before it is stored. A mismatch is
// recorded in a.mismatch, not returned: every one is collected. Unpinned
// artifacts are always fetched, since nothing says a cached copy is the
// one meant.
func (a *artifact) ensure(ctx context.Context, c *cache, f *fetcher) error {
	if key := a.pin.key(); key != "" {
		if blob, ok := c.lookup(key); ok {
			if err := a.verify(blob); err == nil && a.mismatch == nil && hex.EncodeToString(a.sums["sha256"]) == filepath.Base(blob) {
				a.blob, a.cached = blob, true
				return nil
			}
			a.mismatch = nil // a corrupt cache entry: fetch it again
		}
	}
	var tmp, url string
	var err error
	for i, p := range a.urls {
		url = p.url
		tmp, err = f.download(ctx, url, c.tmpDir())
		if err == nil {
			break
		}
		var fe *FetchError
		last := i == len(a.urls)-1
		if last || !errors.As(err, &fe) || (!p.anyError && !notFound(err)) {
			return err
		}
	}
	defer os.Remove(tmp) // a no-op once stored
	if err := a.verify(tmp); err != nil {
		var ie *invalidError
		if errors.As(err, &ie) {
			return &FetchError{URL: url, Err: ie.err}
		}
		return err
	}
	if a.mismatch != nil {
		return nil
	}
	sum := hex.EncodeToString(a.sums["sha256"])
	keys := []string{"sha256/" + sum}
	if k := a.pin.key(); k != "" && k != keys[0] {
		keys = append(keys, k)
	}
	a.blob, err = c.put(tmp, sum, keys...)
	return err
}

// verify hashes the file at p and checks it against the pin: a.sums and
// a.size are set, and a.mismatch when the bytes are not the pinned ones.
// A module zip is checked with CheckZip (sizes, names, no path escapes)
// before anything hashes its contents.
func (a *artifact) verify(p string) error {
	algos := []string{"sha256", "sha512"}
	if a.pin.kind == pinHash && a.pin.algo != "sha256" && a.pin.algo != "sha512" {
		algos = append(algos, a.pin.algo)
	}
	sums, size, err := hashFile(p, algos)
	if err != nil {
		return err
	}
	a.sums, a.size, a.mismatch = sums, size, nil
	got := ""
	switch a.pin.kind {
	case pinNone:
		return nil
	case pinHash:
		if bytes.Equal(sums[a.pin.algo], a.pin.sum) {
			return nil
		}
		got = a.pin.algo + "-" + base64.StdEncoding.EncodeToString(sums[a.pin.algo])
		if a.pin.algo == "sha256" && a.dep.Type == TypeFile {
			got = hex.EncodeToString(sums["sha256"])
		}
	case pinH1Zip:
		cf, err := modzip.CheckZip(a.mod, p)
		if err == nil {
			err = cf.Err()
		}
		if err != nil {
			return &invalidError{fmt.Errorf("invalid module zip: %w", err)}
		}
		got, err = dirhash.HashZip(p, dirhash.Hash1)
		if err != nil {
			return &invalidError{fmt.Errorf("invalid module zip: %w", err)}
		}
	case pinH1Mod:
		got, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return os.Open(p) })
		if err != nil {
			return fmt.Errorf("hashing %s: %w", p, err)
		}
	}
	if got == a.pin.text {
		return nil
	}
	a.mismatch = &MismatchError{Dep: a.dep, Algorithm: a.pin.algo, Want: a.pin.text, Got: got, What: a.what}
	return nil
}

// hashFile returns the digests of the file at p and its size.
func hashFile(p string, algos []string) (map[string][]byte, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	hs := make([]hash.Hash, len(algos))
	ws := make([]io.Writer, len(algos))
	for i, a := range algos {
		hs[i] = newHash(a)
		ws[i] = hs[i]
	}
	n, err := io.Copy(io.MultiWriter(ws...), f)
	if err != nil {
		return nil, 0, fmt.Errorf("hashing %s: %w", p, err)
	}
	sums := make(map[string][]byte, len(algos))
	for i, a := range algos {
		sums[a] = hs[i].Sum(nil)
	}
	return sums, n, nil
}

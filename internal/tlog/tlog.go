// Package tlog reads C2SP tlog-tiles transparency logs (Rekor v2 among
// them) and checks what it reads: a checkpoint's signature against the log's
// origin and key, and inclusion and consistency proofs computed from the
// log's tiles with tessera's client and checked with transparency-dev/merkle.
//
// Nothing read is trusted before it is checked, and every response is
// size-bounded. The package keeps no state between calls except the tiles a
// proof builder has already fetched for a tree size.
package tlog

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/buildguard/buildguard/internal/httplimit"
)

// MaxResponse bounds one response read from a log: a checkpoint, a tile
// (at most 8 KiB) or an entry bundle (256 entries).
const MaxResponse = 16 << 20

// TileLog reads one tlog-tiles log over HTTP and verifies what it reads
// against the log's origin and key. It is safe for concurrent use.
type TileLog struct {
	url      string
	fetcher  *client.HTTPFetcher
	verifier note.Verifier

	mu sync.Mutex // guards builders: a ProofBuilder is not safe for concurrent use
	// builders holds one proof builder per tree size, so that proofs in the
	// same tree share the tiles already fetched.
	builders map[uint64]*client.ProofBuilder
}

// New returns a reader for the log whose checkpoint and tiles are under
// tilesURL (as "checkpoint", "tile/..."), whose checkpoints v verifies; the
// log's origin is v.Name(). hc may be nil for http.DefaultClient; every
// response read through it is bounded by MaxResponse.
func New(tilesURL string, v note.Verifier, hc *http.Client) (*TileLog, error) {
	u, err := url.Parse(tilesURL)
	if err != nil {
		return nil, fmt.Errorf("tiles URL %q: %w", tilesURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("tiles URL %q: want an http or https URL", tilesURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	bounded := *hc
	bounded.Transport = &httplimit.Transport{RT: hc.Transport, Max: MaxResponse}
	f, err := client.NewHTTPFetcher(u, &bounded)
	if err != nil {
		return nil, fmt.Errorf("tiles fetcher for %q: %w", tilesURL, err)
	}
	return &TileLog{url: u.String(), fetcher: f, verifier: v, builders: map[uint64]*client.ProofBuilder{}}, nil
}

// NewTileLog returns a reader for the log with origin and key pub (see
// NoteVerifier) whose tiles are under tilesURL.
func NewTileLog(tilesURL, origin string, pub crypto.PublicKey, hc *http.Client) (*TileLog, error) {
	v, err := NoteVerifier(origin, pub)
	if err != nil {
		return nil, err
	}
	return New(tilesURL, v, hc)
}

// URL is where the log's tiles are read.
func (l *TileLog) URL() string { return l.url }

// Verifier verifies the log's checkpoints.
func (l *TileLog) Verifier() note.Verifier { return l.verifier }

// Origin is the first line of every checkpoint of the log.
func (l *TileLog) Origin() string { return l.verifier.Name() }

// Checkpoint fetches the latest checkpoint and returns it parsed and
// verified, with its raw bytes.
func (l *TileLog) Checkpoint(ctx context.Context) (*log.Checkpoint, []byte, error) {
	cp, raw, _, err := client.FetchCheckpoint(ctx, l.fetcher.ReadCheckpoint, l.verifier, l.Origin())
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint of %q at %s: %w", l.Origin(), l.url, err)
	}
	return cp, raw, nil
}

// Identify reads the checkpoint at tilesURL and returns a reader for the
// log, among those vs verify, whose checkpoint it is, with the checkpoint.
// A checkpoint that none of vs verifies is an error naming its origin.
func Identify(ctx context.Context, tilesURL string, vs []note.Verifier, hc *http.Client) (*TileLog, *log.Checkpoint, []byte, error) {
	if len(vs) == 0 {
		return nil, nil, nil, errors.New("no log to identify")
	}
	l, err := New(tilesURL, vs[0], hc)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err := l.fetcher.ReadCheckpoint(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the checkpoint at %s: %w", l.url, err)
	}
	for _, v := range vs {
		if cp, err := VerifyCheckpoint(raw, v); err == nil {
			l.verifier = v
			return l, cp, raw, nil
		}
	}
	origin, _, _ := strings.Cut(string(raw), "\n")
	if len(origin) > 100 {
		origin = origin[:100]
	}
	return nil, nil, nil, fmt.Errorf("the checkpoint at %s (origin %q) is signed by none of the %d log(s) trusted", l.url, origin, len(vs))
}

// VerifyCheckpoint parses raw as a checkpoint of this log and verifies its
// signature, e.g. the checkpoint inside a TransparencyLogEntry.
func (l *TileLog) VerifyCheckpoint(raw []byte) (*log.Checkpoint, error) {
	return VerifyCheckpoint(raw, l.verifier)
}

// VerifyCheckpoint parses raw as a checkpoint whose origin is v.Name() and
// verifies its signature with v.
func VerifyCheckpoint(raw []byte, v note.Verifier) (*log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(raw, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %q: %w", v.Name(), err)
	}
	return cp, nil
}

// VerifyInclusion builds an inclusion proof for the entry at index from the
// tiles of the tree that cp commits to and checks it against cp's root.
// entry is the leaf data (for Rekor, the canonicalized body).
func (l *TileLog) VerifyInclusion(ctx context.Context, cp *log.Checkpoint, index uint64, entry []byte) error {
	return l.VerifyLeafInclusion(ctx, cp, index, rfc6962.DefaultHasher.HashLeaf(entry))
}

// VerifyLeafInclusion is VerifyInclusion for the RFC 6962 leaf hash of an
// entry.
func (l *TileLog) VerifyLeafInclusion(ctx context.Context, cp *log.Checkpoint, index uint64, leafHash []byte) error {
	if index >= cp.Size {
		return fmt.Errorf("entry %d is outside a tree of size %d", index, cp.Size)
	}
	var hashes [][]byte
	err := l.withBuilder(ctx, cp.Size, func(pb *client.ProofBuilder) error {
		var err error
		hashes, err = pb.InclusionProof(ctx, index)
		return err
	})
	if err != nil {
		return fmt.Errorf("inclusion proof for entry %d from %s: %w", index, l.url, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leafHash, hashes, cp.Hash); err != nil {
		return fmt.Errorf("inclusion of entry %d in tree of size %d: %w: %w", index, cp.Size, ErrProof, err)
	}
	return nil
}

// ErrShrank is a newer tree smaller than an older one.
var ErrShrank = errors.New("tree is smaller than an earlier one")

// ErrProof is a proof, computed from what the log served, that does not
// verify. Other errors of the Verify methods are failures to read the log.
var ErrProof = errors.New("proof does not verify")

// VerifyConsistency builds a consistency proof from the tiles of the larger
// tree and checks that newer extends older. A newer tree smaller than the
// older is ErrShrank. Errors that the proof did not verify wrap
// proof.RootMismatchError; the others are failures to read the log.
func (l *TileLog) VerifyConsistency(ctx context.Context, older, newer *log.Checkpoint) error {
	if older.Size > newer.Size {
		return fmt.Errorf("%w: size %d after %d", ErrShrank, newer.Size, older.Size)
	}
	var hashes [][]byte
	err := l.withBuilder(ctx, newer.Size, func(pb *client.ProofBuilder) error {
		var err error
		hashes, err = pb.ConsistencyProof(ctx, older.Size, newer.Size)
		return err
	})
	if err != nil {
		return fmt.Errorf("consistency proof %d to %d from %s: %w", older.Size, newer.Size, l.url, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, hashes, older.Hash, newer.Hash); err != nil {
		return &InconsistentError{Older: older, Newer: newer, Err: err}
	}
	return nil
}

// InconsistentError is a consistency proof that does not verify: the log
// signed two trees of which the newer does not extend the older.
type InconsistentError struct {
	Older, Newer *log.Checkpoint
	Err          error
}

func (e *InconsistentError) Error() string {
	return fmt.Sprintf("tree of size %d (root %x) does not extend tree of size %d (root %x): %v", e.Newer.Size, e.Newer.Hash, e.Older.Size, e.Older.Hash, e.Err)
}

// Unwrap returns ErrProof and the cause.
func (e *InconsistentError) Unwrap() []error { return []error{ErrProof, e.Err} }

// maxBuilders bounds the tree sizes whose tiles are kept.
const maxBuilders = 4

// withBuilder runs f with the proof builder of the tree of size size.
func (l *TileLog) withBuilder(ctx context.Context, size uint64, f func(*client.ProofBuilder) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	pb, ok := l.builders[size]
	if !ok {
		if len(l.builders) >= maxBuilders {
			clear(l.builders) // older sizes are rarely asked for again
		}
		var err error
		if pb, err = client.NewProofBuilder(ctx, size, l.fetcher.ReadTile); err != nil {
			return err
		}
		l.builders[size] = pb
	}
	return f(pb)
}

// Entry reads the leaf data of the entry at index from the entry bundles of
// a tree of size treeSize. The caller proves it with VerifyInclusion.
func (l *TileLog) Entry(ctx context.Context, index, treeSize uint64) ([]byte, error) {
	if index >= treeSize {
		return nil, fmt.Errorf("entry %d is outside a tree of size %d", index, treeSize)
	}
	b, err := client.GetEntryBundle(ctx, l.fetcher.ReadEntryBundle, index/layout.EntryBundleWidth, treeSize)
	if err != nil {
		return nil, fmt.Errorf("entry bundle for entry %d: %w", index, err)
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("entry bundle for entry %d has only %d entries", index, len(b.Entries))
	}
	return b.Entries[i], nil
}

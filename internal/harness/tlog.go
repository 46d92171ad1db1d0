package harness

// The helpers in this file are what online verification does against any
// C2SP tlog-tiles log (Rekor v2 included): verify a signed checkpoint, build
// inclusion and consistency proofs from tiles, and read entries. They live
// here until the verifier has a package of its own (e.g. internal/tlog); they
// use only tessera's client, transparency-dev/merkle and formats, and
// x/mod's note, and import nothing from the harness.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"hash"
	"net/http"
	"net/url"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// TileLog reads a tlog-tiles log over HTTP and verifies what it reads
// against the log's origin and public key.
type TileLog struct {
	origin   string
	fetcher  *client.HTTPFetcher
	verifier note.Verifier
}

// NewTileLog returns a reader for the log whose tiles are under tilesURL.
// hc may be nil for http.DefaultClient.
func NewTileLog(tilesURL, origin string, pub crypto.PublicKey, hc *http.Client) (*TileLog, error) {
	u, err := url.Parse(tilesURL)
	if err != nil {
		return nil, fmt.Errorf("parsing tiles URL %q: %w", tilesURL, err)
	}
	v, err := NoteVerifier(origin, pub)
	if err != nil {
		return nil, err
	}
	f, err := client.NewHTTPFetcher(u, hc)
	if err != nil {
		return nil, fmt.Errorf("tiles fetcher for %q: %w", tilesURL, err)
	}
	return &TileLog{origin: origin, fetcher: f, verifier: v}, nil
}

// Checkpoint fetches the latest checkpoint and returns it parsed and
// verified, with its raw bytes.
func (l *TileLog) Checkpoint(ctx context.Context) (*log.Checkpoint, []byte, error) {
	cp, raw, _, err := client.FetchCheckpoint(ctx, l.fetcher.ReadCheckpoint, l.verifier, l.origin)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint of %q: %w", l.origin, err)
	}
	return cp, raw, nil
}

// VerifyCheckpoint parses raw as a checkpoint of this log and verifies its
// signature, e.g. the checkpoint inside a TransparencyLogEntry.
func (l *TileLog) VerifyCheckpoint(raw []byte) (*log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(raw, l.origin, l.verifier)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %q: %w", l.origin, err)
	}
	return cp, nil
}

// VerifyInclusion builds an inclusion proof for the entry at index from the
// tiles of the tree that cp commits to and checks it against cp's root.
// entry is the leaf data (for Rekor, the canonicalized body).
func (l *TileLog) VerifyInclusion(ctx context.Context, cp *log.Checkpoint, index uint64, entry []byte) error {
	if index >= cp.Size {
		return fmt.Errorf("entry %d is outside a tree of size %d", index, cp.Size)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, l.fetcher.ReadTile)
	if err != nil {
		return fmt.Errorf("proof builder: %w", err)
	}
	hashes, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return fmt.Errorf("inclusion proof for entry %d: %w", index, err)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf, hashes, cp.Hash); err != nil {
		return fmt.Errorf("inclusion of entry %d in tree of size %d: %w", index, cp.Size, err)
	}
	return nil
}

// VerifyConsistency builds a consistency proof from the tiles of the larger
// tree and checks that newer extends older.
func (l *TileLog) VerifyConsistency(ctx context.Context, older, newer *log.Checkpoint) error {
	if older.Size > newer.Size {
		return fmt.Errorf("tree shrank from %d to %d", older.Size, newer.Size)
	}
	pb, err := client.NewProofBuilder(ctx, newer.Size, l.fetcher.ReadTile)
	if err != nil {
		return fmt.Errorf("proof builder: %w", err)
	}
	hashes, err := pb.ConsistencyProof(ctx, older.Size, newer.Size)
	if err != nil {
		return fmt.Errorf("consistency proof %d to %d: %w", older.Size, newer.Size, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, hashes, older.Hash, newer.Hash); err != nil {
		return fmt.Errorf("consistency %d to %d: %w", older.Size, newer.Size, err)
	}
	return nil
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

// NoteVerifier returns a signed-note verifier for a log's checkpoints, as
// rekor-tiles signs them: Ed25519 per the C2SP signed-note spec, and ECDSA
// with the key ID SHA-256(PKIX DER)[:4] and an ASN.1 signature over the
// curve's default hash of the note text (sigstore's default for the key).
func NoteVerifier(origin string, pub crypto.PublicKey) (note.Verifier, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		vkey, err := note.NewEd25519VerifierKey(origin, k)
		if err != nil {
			return nil, fmt.Errorf("note verifier key for %q: %w", origin, err)
		}
		return note.NewVerifier(vkey)
	case *ecdsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("marshaling log key: %w", err)
		}
		var newHash func() hash.Hash
		switch k.Curve {
		case elliptic.P256():
			newHash = sha256.New
		case elliptic.P384():
			newHash = sha512.New384
		case elliptic.P521():
			newHash = sha512.New
		default:
			return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		id := sha256.Sum256(der)
		return &ecdsaNoteVerifier{name: origin, hash: binary.BigEndian.Uint32(id[:4]), key: k, newHash: newHash}, nil
	default:
		return nil, fmt.Errorf("unsupported log key type %T", pub)
	}
}

type ecdsaNoteVerifier struct {
	name    string
	hash    uint32
	key     *ecdsa.PublicKey
	newHash func() hash.Hash
}

func (v *ecdsaNoteVerifier) Name() string    { return v.name }
func (v *ecdsaNoteVerifier) KeyHash() uint32 { return v.hash }
func (v *ecdsaNoteVerifier) Verify(msg, sig []byte) bool {
	h := v.newHash()
	h.Write(msg)
	return ecdsa.VerifyASN1(v.key, h.Sum(nil), sig)
}

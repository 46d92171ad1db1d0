package trusttest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	rekortilespb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	rekornote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/buildguard/buildguard/internal/tlog"
	"github.com/buildguard/buildguard/trust"
)

// TileLog is a Rekor v2 style log in process: C2SP tlog-tiles written by
// hand from transparency-dev/merkle hashes, checkpoints signed as
// rekor-tiles signs them, and its checkpoint and tiles served over HTTP on
// loopback by a static file server, as public tiled logs serve them. Its
// origin is "127.0.0.1", the host of its URL, as sigstore-go expects of a
// Rekor v2 log.
type TileLog struct {
	// URL is where the checkpoint and tiles are read (a trailing slash).
	URL string
	// ID is the hex SHA-256 of the log's PKIX public key.
	ID  string
	Dir string
	// Requests counts the requests the tile server answered.
	Requests atomic.Int64

	key    ed25519.PrivateKey
	signer note.Signer
	mu     sync.Mutex
	tree   *testonly.Tree
	// levels[h] are the hashes of the complete subtrees of height h.
	levels [][][]byte
	served atomic.Pointer[string] // the storage directory served
}

// NewTileLog starts a log with a new key; it stops when the test ends.
func NewTileLog(t testing.TB) *TileLog {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := newTileLog(t, key)
	srv := httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(srv.Close)
	l.URL = srv.URL + "/"
	return l
}

// Fork starts another log with l's key and origin but storage of its own
// and no server: what it presents through ServeFrom is a fork of l, signed
// with l's key.
func (l *TileLog) Fork(t testing.TB) *TileLog {
	t.Helper()
	f := newTileLog(t, l.key)
	f.URL = l.URL
	return f
}

// ServeFrom makes l's server present the storage of other (a fork) from
// now on: a split-view attack as a client sees it.
func (l *TileLog) ServeFrom(other *TileLog) { l.served.Store(&other.Dir) }

func newTileLog(t testing.TB, key ed25519.PrivateKey) *TileLog {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	l := &TileLog{ID: hex.EncodeToString(sum[:]), Dir: t.TempDir(), key: key, tree: testonly.New(rfc6962.DefaultHasher)}
	l.served.Store(&l.Dir)
	sv, err := signature.LoadED25519SignerVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	if l.signer, err = rekornote.NewNoteSigner(context.Background(), "127.0.0.1", sv); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *TileLog) serve(w http.ResponseWriter, r *http.Request) {
	l.Requests.Add(1)
	p := r.URL.Path
	if p != "/checkpoint" && (!strings.HasPrefix(p, "/tile/") || strings.Contains(p, "/.")) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.FileServer(http.Dir(*l.served.Load())).ServeHTTP(w, r)
}

// Info is the log as a trusted root names it.
func (l *TileLog) Info() *root.TransparencyLog {
	raw, _ := hex.DecodeString(l.ID)
	return &root.TransparencyLog{
		BaseURL:             strings.TrimSuffix(l.URL, "/"),
		ID:                  raw,
		ValidityPeriodStart: time.Now().Add(-24 * time.Hour),
		HashFunc:            crypto.SHA256,
		PublicKey:           l.key.Public(),
		SignatureHashFunc:   crypto.SHA256,
	}
}

// Append adds data as an entry, writes the tiles and a checkpoint of the
// new tree, and returns the entry's index and the checkpoint.
func (l *TileLog) Append(t testing.TB, data []byte) (uint64, []byte) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	index := l.tree.Size()
	l.tree.AppendData(data)
	l.addNode(0, rfc6962.DefaultHasher.HashLeaf(data))
	for level, nodes := range l.levels {
		if level%8 != 0 || len(nodes) == 0 {
			continue
		}
		for i := 0; i*256 < len(nodes); i++ {
			tile := nodes[i*256 : min((i+1)*256, len(nodes))]
			p := filepath.Join(l.Dir, layout.TilePath(uint64(level/8), uint64(i), uint8(len(tile)%256))) //nolint:gosec // small non-negative numbers
			writeFile(t, p, bytes.Join(tile, nil))
		}
	}
	cp := log.Checkpoint{Origin: "127.0.0.1", Size: l.tree.Size(), Hash: l.tree.Hash()}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(l.Dir, "checkpoint"), signed)
	return index, signed
}

// addNode adds a node at height h and the parents it completes.
func (l *TileLog) addNode(h int, hash []byte) {
	if h == len(l.levels) {
		l.levels = append(l.levels, nil)
	}
	l.levels[h] = append(l.levels[h], hash)
	if n := len(l.levels[h]); n%2 == 0 {
		l.addNode(h+1, rfc6962.DefaultHasher.HashChildren(l.levels[h][n-2], l.levels[h][n-1]))
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// AppendOthers adds n entries of other signers.
func (l *TileLog) AppendOthers(t testing.TB, n int) {
	t.Helper()
	for range n {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		l.Append(t, []byte("entry of someone else "+hex.EncodeToString(b)))
	}
}

// Keyed signs statement with key as a DSSE envelope, logs it as a
// hashedrekord v0.0.2 entry as rekor-tiles does, and returns the bundle,
// whose inclusion proof is against the checkpoint that first committed to
// the entry.
func (l *TileLog) Keyed(t testing.TB, key *ecdsa.PrivateKey, statement []byte) *protobundle.Bundle {
	t.Helper()
	sum := sha256.Sum256(dsse.PAE(inTotoPayloadType, statement))
	sig := mustSign(t, key, sum[:])
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	entry := &rekortilespb.Entry{ApiVersion: "0.0.2", Kind: "hashedrekord", Spec: &rekortilespb.Spec{Spec: &rekortilespb.Spec_HashedRekordV002{
		HashedRekordV002: &rekortilespb.HashedRekordLogEntryV002{
			Data: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature: &rekortilespb.Signature{Content: sig, Verifier: &rekortilespb.Verifier{
				KeyDetails: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
				Verifier:   &rekortilespb.Verifier_PublicKey{PublicKey: &rekortilespb.PublicKey{RawBytes: der}},
			}},
		},
	}}}
	js, err := protojson.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	body, err := jsoncanonicalizer.Transform(js)
	if err != nil {
		t.Fatal(err)
	}
	index, cpRaw := l.Append(t, body)
	tl, err := tlog.New(l.URL, l.noteVerifier(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := tl.VerifyCheckpoint(cpRaw)
	if err != nil {
		t.Fatal(err)
	}
	hashes := l.inclusionProof(t, index, cp.Size)
	logID, _ := hex.DecodeString(l.ID)
	keyHint := sha256.Sum256(der)
	return &protobundle.Bundle{
		MediaType: trust.BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(keyHint[:])}},
			TlogEntries: []*protorekor.TransparencyLogEntry{{
				LogIndex:          int64(index), //nolint:gosec // a test log is small
				LogId:             &protocommon.LogId{KeyId: logID},
				KindVersion:       &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.2"},
				CanonicalizedBody: body,
				InclusionProof: &protorekor.InclusionProof{
					LogIndex: int64(index), TreeSize: int64(cp.Size), RootHash: cp.Hash, Hashes: hashes, //nolint:gosec // a test log is small
					Checkpoint: &protorekor.Checkpoint{Envelope: string(cpRaw)},
				},
			}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: inTotoPayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
}

// inclusionProof computes the proof for index in the tree of size size
// from l's own tree, not through its server.
func (l *TileLog) inclusionProof(t testing.TB, index, size uint64) [][]byte {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	hashes, err := l.tree.InclusionProof(index, size)
	if err != nil {
		t.Fatal(err)
	}
	return hashes
}

func (l *TileLog) noteVerifier(t testing.TB) note.Verifier {
	t.Helper()
	sv, err := signature.LoadED25519Verifier(l.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := rekornote.NewNoteVerifier("127.0.0.1", sv)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

package trusttest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// Log is a Rekor v1 style log: a Merkle tree, checkpoints signed as
// Rekor signs them, and signed entry timestamps.
type Log struct {
	// Origin is the host name the log signs checkpoints as.
	Origin string
	// ID is the hex SHA-256 of the log's PKIX public key.
	ID   string
	key  *ecdsa.PrivateKey
	tree *testonly.Tree
	// mu guards tree and entries, which a RekorV1 server reads.
	mu sync.Mutex
	// entries are the leaves of tree, with their integrated times.
	entries []logged
}

// logged is one leaf of a Log.
type logged struct {
	body       []byte
	integrated int64
}

// treeID is the tree ID the logs sign checkpoints with.
const treeID = 1234

// append adds a leaf; the caller holds l.mu.
func (l *Log) append(body []byte, integrated int64) {
	l.tree.AppendData(body)
	l.entries = append(l.entries, logged{body: body, integrated: integrated})
}

// NewLog returns a log that already holds a few entries of others.
func NewLog(t testing.TB, origin string) *Log {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	l := &Log{Origin: origin, key: key, ID: hex.EncodeToString(sum[:]), tree: testonly.New(rfc6962.DefaultHasher)}
	// Entries of others, so that proofs have a path.
	for i := range 5 {
		l.append(fmt.Appendf(nil, "entry %d of someone else", i), 0)
	}
	return l
}

// Info is the log as a trusted root names it.
func (l *Log) Info() *root.TransparencyLog {
	raw, _ := hex.DecodeString(l.ID)
	return &root.TransparencyLog{
		BaseURL:             "https://" + l.Origin,
		ID:                  raw,
		ValidityPeriodStart: time.Now().Add(-24 * time.Hour),
		HashFunc:            crypto.SHA256,
		PublicKey:           l.key.Public(),
		SignatureHashFunc:   crypto.SHA256,
	}
}

// Add logs body and returns its entry with an inclusion proof against a
// signed checkpoint and a signed entry timestamp.
func (l *Log) Add(t testing.TB, kind string, body []byte, integrated time.Time) *protorekor.TransparencyLogEntry {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	index := int64(l.tree.Size()) //nolint:gosec // a test tree is small
	l.append(body, integrated.Unix())
	l.append([]byte("a later entry"), integrated.Unix())
	size := l.tree.Size()
	hashes, err := l.tree.InclusionProof(uint64(index), size) //nolint:gosec // not negative
	if err != nil {
		t.Fatal(err)
	}
	rootHash := l.tree.Hash()
	cp, err := signCheckpoint(l.key, l.Origin, size, rootHash)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(l.ID)
	tle := &protorekor.TransparencyLogEntry{
		LogIndex:          index,
		LogId:             &protocommon.LogId{KeyId: raw},
		KindVersion:       &protorekor.KindVersion{Kind: kind, Version: "0.0.1"},
		IntegratedTime:    integrated.Unix(),
		CanonicalizedBody: body,
		InclusionProof: &protorekor.InclusionProof{
			LogIndex: index, RootHash: rootHash, TreeSize: int64(size), Hashes: hashes, //nolint:gosec // a test tree is small
			Checkpoint: &protorekor.Checkpoint{Envelope: string(cp)},
		},
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: l.set(t, tle)}
	return tle
}

// signCheckpoint signs a checkpoint of the tree of size and rootHash as
// Rekor v1 does, with key.
func signCheckpoint(key *ecdsa.PrivateKey, origin string, size uint64, rootHash []byte) ([]byte, error) {
	signer, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return util.CreateAndSignCheckpoint(context.Background(), origin, treeID, size, rootHash, signer)
}

// Fork returns a log with the same key and origin whose tree holds the
// first keep entries of l and then others: a forked view of l.
func (l *Log) Fork(t testing.TB, keep int) *Log {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := &Log{Origin: l.Origin, ID: l.ID, key: l.key, tree: testonly.New(rfc6962.DefaultHasher)}
	for _, e := range l.entries[:keep] {
		f.append(e.body, e.integrated)
	}
	return f
}

// AppendOthers adds n entries of others to the log.
func (l *Log) AppendOthers(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range n {
		l.append(fmt.Appendf(nil, "entry %d of someone else, at %d", i, l.tree.Size()), time.Now().Unix())
	}
}

// set signs the entry timestamp of tle as Rekor does: ECDSA over the
// canonical JSON of body, integratedTime, logID and logIndex.
func (l *Log) set(t testing.TB, tle *protorekor.TransparencyLogEntry) []byte {
	t.Helper()
	// The fields in key order marshal to canonical JSON.
	payload, err := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), tle.IntegratedTime, l.ID, tle.LogIndex})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, l.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

package trusttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Faults a RekorV1 server injects.
const (
	RekorV1Honest = iota
	// RekorV1OtherEntry answers for entry i with entry i+1 and its proof.
	RekorV1OtherEntry
	// RekorV1WrongProof answers entry i with the inclusion proof of entry
	// i+1.
	RekorV1WrongProof
	// RekorV1UntrustedHead signs the tree head with a key the trusted
	// root does not name.
	RekorV1UntrustedHead
	// RekorV1UntrustedProof signs the checkpoint of each inclusion proof
	// with a key the trusted root does not name.
	RekorV1UntrustedProof
)

// RekorV1 serves a Log through the read API of a Rekor v1 server
// (/api/v1/log, /api/v1/log/proof, /api/v1/log/entries?logIndex=N) on
// loopback, with the log's real Merkle tree and checkpoints signed with the
// log's key, as Rekor v1 signs them. There is no real Rekor v1 server in
// the tests: it needs Trillian and MySQL.
type RekorV1 struct {
	URL string
	// Requests counts every request served.
	Requests atomic.Int64
	// Fault is one of the RekorV1 faults (RekorV1Honest by default).
	Fault   atomic.Int32
	served  atomic.Pointer[Log]
	srv     *httptest.Server
	badKey  *ecdsa.PrivateKey
	treeHex string
}

// ServeRekorV1 starts a Rekor v1 API for l; it stops at the end of the test.
func ServeRekorV1(t testing.TB, l *Log) *RekorV1 {
	t.Helper()
	bad, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &RekorV1{badKey: bad, treeHex: fmt.Sprintf("%016x", treeID)}
	r.served.Store(l)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL
	return r
}

// ServeFrom makes the server answer from l, e.g. a Fork of its log.
func (r *RekorV1) ServeFrom(l *Log) { r.served.Store(l) }

// Close stops the server: the log is down.
func (r *RekorV1) Close() { r.srv.Close() }

func (r *RekorV1) serve(w http.ResponseWriter, req *http.Request) {
	r.Requests.Add(1)
	l := r.served.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.Method != http.MethodGet {
		apiError(w, http.StatusMethodNotAllowed, "read-only")
		return
	}
	var body any
	var err error
	switch req.URL.Path {
	case "/api/v1/log":
		body, err = r.logInfo(l)
	case "/api/v1/log/proof":
		body, err = r.consistency(l, req.URL.Query().Get("firstSize"), req.URL.Query().Get("lastSize"))
	case "/api/v1/log/entries":
		body, err = r.entry(l, req.URL.Query().Get("logIndex"))
	default:
		apiError(w, http.StatusNotFound, "no such path")
		return
	}
	var he httpError
	switch {
	case errorsAs(err, &he):
		apiError(w, he.code, he.msg)
	case err != nil:
		apiError(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}
}

type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

func errorsAs(err error, he *httpError) bool {
	e, ok := err.(httpError) //nolint:errorlint // the server's own unwrapped errors
	if ok {
		*he = e
	}
	return ok
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

// head signs the checkpoint of l's current tree, with the log's key or,
// when untrusted, another.
func (r *RekorV1) head(l *Log, untrusted bool) (string, error) {
	key := l.key
	if untrusted {
		key = r.badKey
	}
	cp, err := signCheckpoint(key, l.Origin, l.tree.Size(), l.tree.Hash())
	return string(cp), err
}

func (r *RekorV1) logInfo(l *Log) (any, error) {
	sth, err := r.head(l, r.Fault.Load() == RekorV1UntrustedHead)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"rootHash": hex.EncodeToString(l.tree.Hash()), "treeSize": l.tree.Size(),
		"signedTreeHead": sth, "treeID": strconv.Itoa(treeID),
	}, nil
}

func (r *RekorV1) consistency(l *Log, first, last string) (any, error) {
	a, errA := strconv.ParseUint(first, 10, 64)
	b, errB := strconv.ParseUint(last, 10, 64)
	if errA != nil || errB != nil || a < 1 || a > b || b > l.tree.Size() {
		return nil, httpError{http.StatusBadRequest, "bad firstSize or lastSize"}
	}
	hashes, err := l.tree.ConsistencyProof(a, b)
	if err != nil {
		return nil, err
	}
	return map[string]any{"rootHash": hex.EncodeToString(l.tree.HashAt(b)), "hashes": hexAll(hashes)}, nil
}

func (r *RekorV1) entry(l *Log, logIndex string) (any, error) {
	i, err := strconv.ParseUint(logIndex, 10, 64)
	if err != nil || i >= uint64(len(l.entries)) {
		return nil, httpError{http.StatusNotFound, "no such entry"}
	}
	fault := r.Fault.Load()
	bodyAt, proofAt := i, i
	if next := i + 1; next < uint64(len(l.entries)) {
		switch fault {
		case RekorV1OtherEntry:
			bodyAt, proofAt = next, next
		case RekorV1WrongProof:
			proofAt = next
		}
	}
	e := l.entries[bodyAt]
	size := l.tree.Size()
	hashes, err := l.tree.InclusionProof(proofAt, size)
	if err != nil {
		return nil, err
	}
	cp, err := r.head(l, fault == RekorV1UntrustedProof)
	if err != nil {
		return nil, err
	}
	set, err := l.signSET(e.body, e.integrated, int64(bodyAt)) //nolint:gosec // a test tree is small
	if err != nil {
		return nil, err
	}
	uuid := r.treeHex + hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(e.body))
	return map[string]any{uuid: map[string]any{
		"body":           base64.StdEncoding.EncodeToString(e.body),
		"integratedTime": e.integrated,
		"logID":          l.ID,
		"logIndex":       bodyAt,
		"verification": map[string]any{
			"inclusionProof": map[string]any{
				"checkpoint": cp, "hashes": hexAll(hashes), "logIndex": proofAt,
				"rootHash": hex.EncodeToString(l.tree.Hash()), "treeSize": size,
			},
			"signedEntryTimestamp": base64.StdEncoding.EncodeToString(set),
		},
	}}, nil
}

// signSET signs an entry timestamp as Rekor does: ECDSA over the canonical
// JSON of body, integratedTime, logID and logIndex.
func (l *Log) signSET(body []byte, integrated, index int64) ([]byte, error) {
	// The fields in key order marshal to canonical JSON.
	payload, err := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(body), integrated, l.ID, index})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	return ecdsa.SignASN1(rand.Reader, l.key, sum[:])
}

func hexAll(hashes [][]byte) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

package trust

// Online look-ups in a Rekor v1 log, through its REST API (rekor's generated
// client): the log's signed tree head is verified with the key the trusted
// root names and checked against the checkpoint store with a consistency
// proof from /api/v1/log/proof; each entry is fetched by its log index, must
// be the entry the bundle holds, and must be in the tree of the signed
// checkpoint that comes with its fresh inclusion proof, which must itself be
// consistent with the log's tree head.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	rekorclient "github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/rekor/pkg/generated/client/entries"
	rekortlog "github.com/sigstore/rekor/pkg/generated/client/tlog"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/buildguard/buildguard/internal/tlog"
)

const (
	// maxRekorV1Response bounds each response of a Rekor v1 log.
	maxRekorV1Response = 4 << 20
	// maxProofHashes bounds a proof: a tree of 2^64 leaves needs 64.
	maxProofHashes = 64
)

// v1Log is a log of the trusted root as Rekor v1 signs its checkpoints:
// the signer name is the host of the log's base URL.
type v1Log struct {
	id       string
	verifier note.Verifier
}

// v1Logs returns, in log ID order, the logs of the trusted root with their
// Rekor v1 checkpoint verifiers.
func (v *Verifier) v1Logs() []v1Log {
	logs := v.policy.TrustedRoot.RekorLogs()
	ids := make([]string, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []v1Log
	for _, id := range ids {
		tl := logs[id]
		u, err := url.Parse(tl.BaseURL)
		if err != nil || u.Hostname() == "" {
			continue
		}
		nv, err := tlog.NoteVerifier(u.Hostname(), tl.PublicKey)
		if err != nil {
			continue
		}
		out = append(out, v1Log{id: id, verifier: nv})
	}
	return out
}

// rekorV1 is a Rekor v1 log read through its REST API.
type rekorV1 struct {
	url      string
	rc       *rekorclient.Rekor
	verifier note.Verifier
}

// newRekorV1Client returns rekor's generated client for the API at rawURL,
// on hc's transport with every response bounded. (rekor's pkg/client
// builds its own transport, which would bypass WithTransport, and changes
// strfmt.Default.)
func newRekorV1Client(rawURL string, hc *http.Client) (*rekorclient.Rekor, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rekor URL: %w", err)
	}
	base := strings.TrimSuffix(u.Path, "/") + rekorclient.DefaultBasePath
	limited := &http.Client{Transport: limitTransport(hc.Transport, maxRekorV1Response), Timeout: hc.Timeout}
	if limited.Transport == nil {
		limited.Transport = limitTransport(http.DefaultTransport, maxRekorV1Response)
	}
	rt := httptransport.NewWithClient(u.Host, base, []string{u.Scheme}, limited)
	return rekorclient.New(rt, strfmt.NewFormats()), nil
}

// detectV1 asks the log URL for a Rekor v1 log's info: it returns the log
// when the URL answers with one; nil when it answers with an HTTP error
// status (a tiled log's file server has no /api/v1/log); an error when it
// cannot be reached.
func (o *online) detectV1(ctx context.Context) (*rekorV1WithInfo, error) {
	rc, err := newRekorV1Client(o.url, o.hc)
	if err != nil {
		return nil, err
	}
	resp, err := rc.Tlog.GetLogInfoContext(ctx, rekortlog.NewGetLogInfoParams())
	var status interface{ Code() int }
	if errors.As(err, &status) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading the log info: %w", ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("reading the log info: %w", err)
		}
		return nil, nil // not the JSON of a Rekor v1 log
	}
	if resp.Payload == nil || resp.Payload.SignedTreeHead == nil {
		return nil, nil
	}
	return &rekorV1WithInfo{rc: rc, info: resp.Payload}, nil
}

type rekorV1WithInfo struct {
	rc   *rekorclient.Rekor
	info *models.LogInfo
}

// resolveV1 identifies the Rekor v1 log by the key that signed its tree
// head and checks the tree head against the stored checkpoint.
func (o *online) resolveV1(ctx context.Context, d *rekorV1WithInfo) error {
	raw := []byte(*d.info.SignedTreeHead)
	logs := o.v1logs()
	for _, l := range logs {
		cp, err := verifyV1Checkpoint(raw, l.verifier)
		if err != nil {
			continue
		}
		o.v1, o.cur = &rekorV1{url: o.url, rc: d.rc, verifier: l.verifier}, cp
		return o.compareStored(ctx, l.id, cp.Origin, cp, raw)
	}
	origin, _, _ := strings.Cut(string(raw), "\n")
	if len(origin) > 100 {
		origin = origin[:100]
	}
	return &OnlineError{URL: o.url, Err: fmt.Errorf("the signed tree head of the Rekor v1 log at %s (origin %q) is signed by none of the %d log(s) trusted", o.url, origin, len(logs))}
}

// verifyV1Checkpoint verifies a checkpoint as Rekor v1 signs it: the origin
// is "<host> - <tree ID>" (or the host alone) and the signer is the host.
func verifyV1Checkpoint(raw []byte, v note.Verifier) (*log.Checkpoint, error) {
	origin, _, _ := strings.Cut(string(raw), "\n")
	if origin != v.Name() && !strings.HasPrefix(origin, v.Name()+" - ") {
		return nil, fmt.Errorf("checkpoint origin %.100q is not of log %q", origin, v.Name())
	}
	cp, _, _, err := log.ParseCheckpoint(raw, origin, v)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %q: %w", v.Name(), err)
	}
	return cp, nil
}

// VerifyCheckpoint verifies a checkpoint signed by this log.
func (r *rekorV1) VerifyCheckpoint(raw []byte) (*log.Checkpoint, error) {
	return verifyV1Checkpoint(raw, r.verifier)
}

// VerifyConsistency fetches a consistency proof from older to newer and
// verifies it.
func (r *rekorV1) VerifyConsistency(ctx context.Context, older, newer *log.Checkpoint) error {
	if older.Size > newer.Size {
		return fmt.Errorf("%w: size %d after %d", tlog.ErrShrank, newer.Size, older.Size)
	}
	if older.Size == newer.Size || older.Size == 0 {
		if older.Size == newer.Size && !bytes.Equal(older.Hash, newer.Hash) {
			return &tlog.InconsistentError{Older: older, Newer: newer, Err: errors.New("same size, different roots")}
		}
		return nil
	}
	first, last := int64(older.Size), int64(newer.Size) //nolint:gosec // a log of 2^63 entries does not exist
	resp, err := r.rc.Tlog.GetLogProofContext(ctx, rekortlog.NewGetLogProofParams().WithFirstSize(&first).WithLastSize(last))
	if err != nil {
		return fmt.Errorf("consistency proof %d to %d from %s: %w", older.Size, newer.Size, r.url, err)
	}
	hashes, err := decodeHashes(resp.Payload.Hashes)
	if err != nil {
		return &tlog.InconsistentError{Older: older, Newer: newer, Err: err}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, hashes, older.Hash, newer.Hash); err != nil {
		return &tlog.InconsistentError{Older: older, Newer: newer, Err: err}
	}
	return nil
}

func decodeHashes(in []string) ([][]byte, error) {
	if len(in) > maxProofHashes {
		return nil, fmt.Errorf("proof of %d hashes, more than %d", len(in), maxProofHashes)
	}
	out := make([][]byte, len(in))
	for i, h := range in {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != rfc6962.DefaultHasher.Size() {
			return nil, fmt.Errorf("proof hash %d is not a SHA-256 hash", i)
		}
		out[i] = b
	}
	return out, nil
}

// checkEntryV1 fetches entry te from the Rekor v1 log and proves it in the
// log's tree: it returns the checkpoint it was proven in, a refusal when
// the log contradicts itself or the entry, or an error when the log could
// not be read.
func (o *online) checkEntryV1(ctx context.Context, te tiledEntry) (*log.Checkpoint, *Refusal, error) {
	r := o.v1
	if te.Checkpoint != "" {
		bcp, err := r.VerifyCheckpoint([]byte(te.Checkpoint))
		if err != nil {
			return nil, refuse(ReasonTlogCheckpoint, "checkpoint for entry %d: %v", te.Index, err), nil
		}
		if rf, err := o.consistentV1(ctx, bcp, fmt.Sprintf("it signed for entry %d", te.Index)); rf != nil || err != nil {
			return nil, rf, err
		}
	}
	index := int64(te.Index) //nolint:gosec // from a non-negative int64
	resp, err := r.rc.Entries.GetLogEntryByIndexContext(ctx, entries.NewGetLogEntryByIndexParams().WithLogIndex(index))
	var status interface{ Code() int }
	if errors.As(err, &status) && status.Code() == http.StatusNotFound {
		return nil, refuse(ReasonTlogNotOnline, "log %.16s at %s has no entry %d, though the bundle's entry is signed by it", te.LogID, o.url, te.Index), nil
	}
	if err != nil {
		return nil, nil, &OnlineError{URL: o.url, Err: fmt.Errorf("entry %d: %w", te.Index, err)}
	}
	if len(resp.Payload) != 1 {
		return nil, refuse(ReasonTlogEntryMismatch, "log %.16s answers %d entries for index %d, want 1", te.LogID, len(resp.Payload), te.Index), nil
	}
	var uuid string
	var e models.LogEntryAnon
	for k, v := range resp.Payload {
		uuid, e = k, v
	}
	b64, _ := e.Body.(string)
	body, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, refuse(ReasonTlogEntryMismatch, "log %.16s answers entry %d with a body that is not base64", te.LogID, te.Index), nil
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(body)
	switch {
	case !bytes.Equal(leaf, te.LeafHash):
		return nil, refuse(ReasonTlogEntryMismatch, "log %.16s answers another entry at index %d (leaf hash %x, the bundle's is %x)", te.LogID, te.Index, leaf, te.LeafHash), nil
	case !strings.HasSuffix(uuid, hex.EncodeToString(leaf)):
		return nil, refuse(ReasonTlogEntryMismatch, "log %.16s names entry %d %.100q, not by its leaf hash %x", te.LogID, te.Index, uuid, leaf), nil
	case e.LogIndex == nil || *e.LogIndex != index:
		return nil, refuse(ReasonTlogEntryMismatch, "log %.16s answers for index %d an entry with another index", te.LogID, te.Index), nil
	case e.LogID == nil || *e.LogID != te.LogID:
		return nil, refuse(ReasonTlogEntryMismatch, "log %.16s answers entry %d as an entry of another log", te.LogID, te.Index), nil
	}
	ip := (*models.InclusionProof)(nil)
	if e.Verification != nil {
		ip = e.Verification.InclusionProof
	}
	if ip == nil || ip.Checkpoint == nil || ip.LogIndex == nil || *ip.LogIndex < 0 {
		return nil, refuse(ReasonTlogInclusion, "log %.16s answers entry %d without an inclusion proof", te.LogID, te.Index), nil
	}
	pcp, err := r.VerifyCheckpoint([]byte(*ip.Checkpoint))
	if err != nil {
		return nil, refuse(ReasonTlogCheckpoint, "the checkpoint of the inclusion proof of entry %d is not signed by log %.16s: %v", te.Index, te.LogID, err), nil
	}
	hashes, err := decodeHashes(ip.Hashes)
	if err == nil {
		err = proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(*ip.LogIndex), pcp.Size, leaf, hashes, pcp.Hash)
	}
	if err != nil {
		return nil, refuse(ReasonTlogInclusion, "entry %d is not proven in the tree of size %d (root %x) log %.16s signed for it: %v", te.Index, pcp.Size, pcp.Hash, te.LogID, err), nil
	}
	if rf, err := o.consistentV1(ctx, pcp, fmt.Sprintf("it signed for the inclusion proof of entry %d", te.Index)); rf != nil || err != nil {
		return nil, rf, err
	}
	return pcp, nil, nil
}

// consistentV1 checks that the log's tree head and cp, a checkpoint it
// signed (what says where it came from), are of one tree: whichever is
// larger must extend the other.
func (o *online) consistentV1(ctx context.Context, cp *log.Checkpoint, what string) (*Refusal, error) {
	older, newer := cp, o.cur
	if cp.Size > o.cur.Size {
		older, newer = o.cur, cp // the log grew since its tree head was read
	}
	err := o.v1.VerifyConsistency(ctx, older, newer)
	if errors.Is(err, tlog.ErrProof) {
		return refuse(ReasonTlogSplitView, "%s", o.fork(fmt.Sprintf("the tree of size %d (root %x) %s and its tree head of size %d (root %x) are not of one tree", cp.Size, cp.Hash, what, o.cur.Size, o.cur.Hash))), nil
	}
	if err != nil {
		return nil, &OnlineError{URL: o.url, Err: err}
	}
	return nil, nil
}

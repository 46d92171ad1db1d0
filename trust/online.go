package trust

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	rekornote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/buildguard/buildguard/internal/tlog"
)

// WithCheckpoints keeps the newest verified checkpoint of each log in dir
// (created, mode 0700, when missing). Online look-ups (Policy.RekorURL) need
// it: a log's checkpoint is accepted only when a consistency proof shows it
// extends the one stored, and it then replaces it.
func WithCheckpoints(dir string) Option {
	return func(v *Verifier) { v.checkpointDir = dir }
}

// OnlineError is an online look-up that could not be made (the log cannot
// be read, or the URL serves no log of the trusted root); the verifier could
// not decide (exit 3).
type OnlineError struct {
	URL string
	Err error
}

func (e *OnlineError) Error() string { return fmt.Sprintf("online look-up at %s: %v", e.URL, e.Err) }

// Unwrap returns the cause.
func (e *OnlineError) Unwrap() error { return e.Err }

// ExitCode reports that verification could not complete.
func (e *OnlineError) ExitCode() int { return 3 }

// LogState is what an online look-up found of the log read at RekorURL.
type LogState struct {
	LogID  string `json:"logID"`
	Origin string `json:"origin"`
	URL    string `json:"url"`
	// TreeSize and RootHash (hex) are of the checkpoint the log presents now.
	TreeSize uint64 `json:"treeSize"`
	RootHash string `json:"rootHash"`
	// StoredSize and StoredRootHash are of the checkpoint remembered before
	// this run, in StoreFile; StoredSize 0 means none was (first use).
	StoredSize     uint64 `json:"storedSize"`
	StoredRootHash string `json:"storedRootHash,omitempty"`
	StoreFile      string `json:"storeFile"`
	// Advanced says that a consistency proof from the stored checkpoint to
	// the current one verified and the current one replaced it.
	Advanced bool `json:"advanced"`
	// SplitView says why the log may be presenting a forked view; the
	// stored checkpoint is then kept, and every image with an entry in the
	// log is refused.
	SplitView string `json:"splitView,omitempty"`
}

// online is the look-up of one log, tiled (Rekor v2) or Rekor v1, made
// once per Verifier.
type online struct {
	url   string
	store checkpointStore
	hc    *http.Client
	logs  func() ([]string, []note.Verifier)
	// v1logs lists the trusted logs as Rekor v1 signs checkpoints.
	v1logs func() []v1Log

	once  sync.Once
	state LogState
	// Exactly one of tl and v1 is set once resolved.
	tl  *tlog.TileLog
	v1  *rekorV1
	cur *log.Checkpoint
	err error
}

// logReader is what the checkpoint store needs of either kind of log.
type logReader interface {
	VerifyCheckpoint(raw []byte) (*log.Checkpoint, error)
	// VerifyConsistency fails with tlog.ErrProof when newer does not
	// extend older, with another error when the log cannot be read.
	VerifyConsistency(ctx context.Context, older, newer *log.Checkpoint) error
}

func (o *online) reader() logReader {
	if o.v1 != nil {
		return o.v1
	}
	return o.tl
}

// logVerifiers returns, in log ID order, the checkpoint verifiers of the
// trusted root's logs as sigstore-go builds them for Rekor v2: the origin is
// the host of the log's base URL.
func (v *Verifier) logVerifiers() ([]string, []note.Verifier) {
	logs := v.policy.TrustedRoot.RekorLogs()
	ids := make([]string, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var outIDs []string
	var vs []note.Verifier
	for _, id := range ids {
		tl := logs[id]
		u, err := url.Parse(tl.BaseURL)
		if err != nil || u.Hostname() == "" {
			continue
		}
		sv, err := signature.LoadVerifier(tl.PublicKey, tl.SignatureHashFunc)
		if err != nil {
			continue
		}
		nv, err := rekornote.NewNoteVerifier(u.Hostname(), sv)
		if err != nil {
			continue
		}
		outIDs, vs = append(outIDs, id), append(vs, nv)
	}
	return outIDs, vs
}

// resolve reads the log's current checkpoint once and checks it against the
// stored one: consistent and larger, it replaces it; smaller, or not
// consistent, the log may be presenting a forked view.
func (o *online) resolve(ctx context.Context) error {
	o.once.Do(func() { o.err = o.resolveOnce(ctx) })
	return o.err
}

func (o *online) resolveOnce(ctx context.Context) error {
	// A Rekor v1 log answers its REST API; a tiled log's file server does
	// not.
	v1, err := o.detectV1(ctx)
	if err != nil {
		return &OnlineError{URL: o.url, Err: err}
	}
	if v1 != nil {
		return o.resolveV1(ctx, v1)
	}
	ids, vs := o.logs()
	tl, cur, raw, err := tlog.Identify(ctx, o.url, vs, o.hc)
	if err != nil {
		return &OnlineError{URL: o.url, Err: err}
	}
	id := ids[slices.IndexFunc(vs, func(v note.Verifier) bool { return v == tl.Verifier() })]
	o.tl, o.cur = tl, cur
	return o.compareStored(ctx, id, tl.Origin(), cur, raw)
}

// compareStored checks the log's current checkpoint cur (raw as signed)
// against the stored one: consistent and larger, it replaces it; smaller,
// or not consistent, the log may be presenting a forked view.
func (o *online) compareStored(ctx context.Context, id, origin string, cur *log.Checkpoint, raw []byte) error {
	lr := o.reader()
	file, err := o.store.path(id)
	if err != nil {
		return &OnlineError{URL: o.url, Err: err}
	}
	st := &o.state
	*st = LogState{LogID: id, Origin: origin, URL: o.url, TreeSize: cur.Size, RootHash: hex.EncodeToString(cur.Hash), StoreFile: file}
	prev, err := o.store.load(id, lr.VerifyCheckpoint)
	if err != nil {
		return &OnlineError{URL: o.url, Err: err}
	}
	if prev == nil {
		return o.save(id, cur, raw)
	}
	st.StoredSize, st.StoredRootHash = prev.Size, hex.EncodeToString(prev.Hash)
	switch {
	case prev.Origin != cur.Origin:
		// Rekor v1 names the tree (the shard) in the origin.
		st.SplitView = o.fork(fmt.Sprintf("it now presents the tree %q, not the tree %q stored in %s (if the log started a new shard, remove that file once the shard is confirmed)", cur.Origin, prev.Origin, file))
	case prev.Size > cur.Size:
		st.SplitView = o.fork(fmt.Sprintf("it now presents a tree of size %d (root %x), smaller than the tree of size %d (root %x) stored in %s", cur.Size, cur.Hash, prev.Size, prev.Hash, file))
	case prev.Size == cur.Size && !bytes.Equal(prev.Hash, cur.Hash):
		st.SplitView = o.fork(fmt.Sprintf("it now presents a tree of size %d with root %x, but the tree of that size stored in %s has root %x", cur.Size, cur.Hash, file, prev.Hash))
	case prev.Size < cur.Size:
		err := lr.VerifyConsistency(ctx, prev, cur)
		if errors.Is(err, tlog.ErrProof) {
			st.SplitView = o.fork(fmt.Sprintf("its tree of size %d (root %x) does not extend the tree of size %d (root %x) stored in %s", cur.Size, cur.Hash, prev.Size, prev.Hash, file))
			return nil
		}
		if err != nil {
			return &OnlineError{URL: o.url, Err: err}
		}
		st.Advanced = true
		return o.save(id, cur, raw)
	}
	return nil
}

func (o *online) save(id string, cp *log.Checkpoint, raw []byte) error {
	if err := o.store.save(id, o.reader().VerifyCheckpoint, cp, raw); err != nil {
		return &OnlineError{URL: o.url, Err: err}
	}
	return nil
}

// fork says that the log may be presenting a forked view, and why.
func (o *online) fork(why string) string {
	return fmt.Sprintf("log %.16s (%s) at %s may be presenting a forked (split) view: %s", o.state.LogID, o.state.Origin, o.url, why)
}

// checkOnline looks up the verified entries of res in the log at RekorURL:
// each candidate needs an entry there, whose bundle checkpoint the current
// tree extends and which a fresh inclusion proof places in it (computed from
// the tiles of a tiled log, served by a Rekor v1 log with the entry). It changes
// res; an error means the look-up could not be made.
func (v *Verifier) checkOnline(ctx context.Context, res *ImageResult, d Digest) error {
	o := v.online
	if err := o.resolve(ctx); err != nil {
		return err
	}
	var splits []string
	if o.state.SplitView != "" {
		splits = append(splits, o.state.SplitView)
	}
	inLog := false
	for i := range res.Candidates {
		c := &res.Candidates[i]
		if !c.Verified {
			continue
		}
		var r *Refusal
		n := 0
		for _, te := range c.tiled {
			if te.LogID != o.state.LogID || te.RekorV1 != (o.v1 != nil) {
				continue
			}
			n++
			if o.state.SplitView != "" {
				continue
			}
			proven, er, err := o.cur, (*Refusal)(nil), error(nil)
			if o.v1 != nil {
				proven, er, err = o.checkEntryV1(ctx, te)
			} else {
				er, err = o.checkEntry(ctx, te)
			}
			if err != nil {
				return err
			}
			switch {
			case er == nil:
				markOnline(c.LogEntries, te, proven)
			case er.Reason == ReasonTlogSplitView:
				splits = append(splits, er.Detail)
			case r == nil:
				r = er
			}
		}
		inLog = inLog || n > 0
		if n == 0 {
			r = refuse(ReasonTlogNotOnline, "no entry is in log %.16s (%s) read from %s: its entries are in %s", o.state.LogID, o.state.Origin, o.url, logList(c.LogEntries))
		}
		if r != nil {
			c.Verified, c.Refusal, c.Signer, c.LogEntries, c.Provenance, c.Predicate = false, r, nil, nil, nil, nil
		}
	}
	res.Problems = nil
	v.conclude(res, d)
	if inLog && len(splits) > 0 {
		res.Verified = false
		slices.Sort(splits)
		for _, s := range slices.Compact(splits) {
			res.Problems = append(res.Problems, Refusal{Reason: ReasonTlogSplitView, Detail: s})
		}
	}
	return nil
}

// checkEntry checks one entry against the log's current tree: a refusal
// when the log contradicts itself or the entry, an error when the log could
// not be read.
func (o *online) checkEntry(ctx context.Context, te tiledEntry) (*Refusal, error) {
	bcp, err := o.tl.VerifyCheckpoint([]byte(te.Checkpoint))
	if err != nil {
		return refuse(ReasonTlogCheckpoint, "checkpoint for entry %d: %v", te.Index, err), nil
	}
	if bcp.Size > o.cur.Size {
		return refuse(ReasonTlogSplitView, "%s", o.fork(fmt.Sprintf("it signed a tree of size %d (root %x) for entry %d, but now presents a smaller tree of size %d (root %x)", bcp.Size, bcp.Hash, te.Index, o.cur.Size, o.cur.Hash))), nil
	}
	err = o.tl.VerifyConsistency(ctx, bcp, o.cur)
	if errors.Is(err, tlog.ErrProof) {
		return refuse(ReasonTlogSplitView, "%s", o.fork(fmt.Sprintf("its tree of size %d (root %x) does not extend the tree of size %d (root %x) it signed for entry %d", o.cur.Size, o.cur.Hash, bcp.Size, bcp.Hash, te.Index))), nil
	}
	if err != nil {
		return nil, &OnlineError{URL: o.url, Err: err}
	}
	err = o.tl.VerifyLeafInclusion(ctx, o.cur, te.Index, te.LeafHash)
	if errors.Is(err, tlog.ErrProof) {
		return refuse(ReasonTlogInclusion, "entry %d is not in the tree of size %d (root %x) that log %.16s presents now: %v", te.Index, o.cur.Size, o.cur.Hash, te.LogID, err), nil
	}
	if err != nil {
		return nil, &OnlineError{URL: o.url, Err: err}
	}
	return nil, nil
}

func markOnline(entries []LogEntry, te tiledEntry, cur *log.Checkpoint) {
	for i, e := range entries {
		if e.LogID == te.LogID && e.Index >= 0 && uint64(e.Index) == te.Index {
			entries[i].Online = &OnlineProof{TreeSize: cur.Size, RootHash: hex.EncodeToString(cur.Hash)}
		}
	}
}

func logList(entries []LogEntry) string {
	var ids []string
	for _, e := range entries {
		ids = append(ids, fmt.Sprintf("%.16s", e.LogID))
	}
	slices.Sort(ids)
	if ids = slices.Compact(ids); len(ids) == 0 {
		return "no verified log"
	}
	return "log(s) " + strings.Join(ids, ", ")
}

// Logs returns what online look-ups found of the log read at RekorURL,
// once the images were verified; nil when verification is offline, no
// verified image needed the log, or the look-up failed.
func (v *Verifier) Logs() []LogState {
	if v.online == nil || v.online.err != nil || v.online.state.LogID == "" {
		return nil
	}
	return []LogState{v.online.state}
}

package tlog_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	rekornote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/buildguard/buildguard/internal/tlog"
	"github.com/buildguard/buildguard/trust/trusttest"
)

func reader(t *testing.T, l *trusttest.TileLog) *tlog.TileLog {
	t.Helper()
	info := l.Info()
	r, err := tlog.NewTileLog(l.URL, "127.0.0.1", info.PublicKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestProofsFromTiles proves inclusion and consistency proofs computed from
// served tiles, across full and partial tiles of two levels, and that each
// check fails for a wrong entry, a forked tree and a shrunk one.
func TestProofsFromTiles(t *testing.T) {
	ctx := t.Context()
	l := trusttest.NewTileLog(t)
	var checkpoints []*log.Checkpoint
	r := reader(t, l)
	for i := range 300 {
		_, raw := l.Append(t, fmt.Appendf(nil, "entry %d", i))
		if n := i + 1; n == 1 || n == 255 || n == 256 || n == 257 || n == 299 {
			cp, err := r.VerifyCheckpoint(raw)
			if err != nil {
				t.Fatal(err)
			}
			checkpoints = append(checkpoints, cp)
		}
	}
	cur, _, err := r.Checkpoint(ctx)
	if err != nil || cur.Size != 300 {
		t.Fatalf("checkpoint %+v, %v", cur, err)
	}
	for _, i := range []uint64{0, 1, 254, 255, 256, 257, 298, 299} {
		if err := r.VerifyInclusion(ctx, cur, i, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Errorf("inclusion of %d: %v", i, err)
		}
	}
	if err := r.VerifyInclusion(ctx, cur, 7, []byte("entry 8")); !errors.Is(err, tlog.ErrProof) {
		t.Errorf("inclusion of a wrong entry: %v, want ErrProof", err)
	}
	if err := r.VerifyInclusion(ctx, cur, 300, []byte("entry 300")); err == nil {
		t.Error("inclusion outside the tree verified")
	}
	for _, old := range checkpoints {
		if err := r.VerifyConsistency(ctx, old, cur); err != nil {
			t.Errorf("consistency %d to 300: %v", old.Size, err)
		}
	}
	if err := r.VerifyConsistency(ctx, cur, checkpoints[0]); !errors.Is(err, tlog.ErrShrank) {
		t.Errorf("a shrunk tree: %v, want ErrShrank", err)
	}

	fork := l.Fork(t)
	for i := range 310 {
		fork.Append(t, fmt.Appendf(nil, "forked entry %d", i))
	}
	l.ServeFrom(fork)
	forked, _, err := r.Checkpoint(ctx)
	if err != nil || forked.Size != 310 {
		t.Fatalf("the fork's checkpoint (same key) = %+v, %v", forked, err)
	}
	var ie *tlog.InconsistentError
	if err := r.VerifyConsistency(ctx, cur, forked); !errors.Is(err, tlog.ErrProof) || !errors.As(err, &ie) || ie.Older.Size != 300 {
		t.Errorf("consistency with a fork: %v, want an InconsistentError", err)
	}
}

// TestIdentify proves a log is recognised by the key that signs its
// checkpoint, and that a checkpoint no trusted key signs is refused.
func TestIdentify(t *testing.T) {
	l, other := trusttest.NewTileLog(t), trusttest.NewTileLog(t)
	l.Append(t, []byte("x"))
	vl, vo := verifier(t, l), verifier(t, other)
	r, cp, raw, err := tlog.Identify(t.Context(), l.URL, []note.Verifier{vo, vl}, nil)
	if err != nil || r.Verifier() != vl || cp.Size != 1 || !strings.HasPrefix(string(raw), "127.0.0.1\n1\n") {
		t.Fatalf("identify: %v", err)
	}
	if _, _, _, err := tlog.Identify(t.Context(), l.URL, []note.Verifier{vo}, nil); err == nil || !strings.Contains(err.Error(), `(origin "127.0.0.1") is signed by none of the 1 log(s)`) {
		t.Errorf("untrusted log: %v", err)
	}
}

func verifier(t *testing.T, l *trusttest.TileLog) note.Verifier {
	t.Helper()
	v, err := tlog.NoteVerifier("127.0.0.1", l.Info().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestECDSACheckpoints proves NoteVerifier accepts checkpoints signed with
// an ECDSA key as rekor-tiles signs them, and only with that key.
func TestECDSACheckpoints(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := rekornote.NewNoteSigner(t.Context(), "log.example", sv)
	if err != nil {
		t.Fatal(err)
	}
	text := log.Checkpoint{Origin: "log.example", Size: 3, Hash: make([]byte, 32)}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NoteVerifier("log.example", key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := tlog.VerifyCheckpoint(signed, v); err != nil || cp.Size != 3 {
		t.Errorf("ECDSA checkpoint: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vo, _ := tlog.NoteVerifier("log.example", other.Public())
	if _, err := tlog.VerifyCheckpoint(signed, vo); err == nil {
		t.Error("checkpoint verified with another key")
	}
}

// TestResponsesAreBounded proves a log cannot make a reader read without
// end.
func TestResponsesAreBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range tlog.MaxResponse>>20 + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	l := trusttest.NewTileLog(t)
	r, err := tlog.New(srv.URL, verifier(t, l), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Checkpoint(context.Background()); !errors.Is(err, tlog.ErrTooLarge) {
		t.Errorf("endless checkpoint: %v, want ErrTooLarge", err)
	}
}

//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/buildguard/buildguard/internal/harness"
)

// TestHarnessRegistry pushes a random image to a real docker-registry and
// reads it back by digest.
func TestHarnessRegistry(t *testing.T) {
	harness.Require(t, "docker-registry")
	ctx := t.Context()
	reg, err := harness.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Addr+"/harness/smoke:v1", name.StrictValidation, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing %s: %v", tag, err)
	}

	byDigest, err := name.NewDigest(reg.Addr+"/harness/smoke@"+want.String(), name.StrictValidation, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(byDigest, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pulling %s: %v", byDigest, err)
	}
	gotDigest, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gotDigest != want {
		t.Errorf("digest read back = %s, want %s", gotDigest, want)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Errorf("read back %d layers, want 2", len(layers))
	}
	repo := filepath.Join(reg.StorageDir, "docker/registry/v2/repositories/harness/smoke")
	if _, err := os.Stat(repo); err != nil {
		t.Errorf("registry did not store under its storage dir: %v", err)
	}

	reg.Stop()
	reg.Stop() // idempotent
	if resp, err := http.Get("http://" + reg.Addr + "/v2/"); err == nil {
		resp.Body.Close()
		t.Error("registry still answers after Stop")
	}
}

// TestHarnessRegistryContext checks that cancelling the start context stops
// the service without Stop.
func TestHarnessRegistryContext(t *testing.T) {
	harness.Require(t, "docker-registry")
	ctx, cancel := context.WithCancel(t.Context())
	reg, err := harness.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + reg.Addr + "/v2/")
		if err != nil {
			return
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("registry still answers 10s after its context was cancelled")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHarnessRekor adds two hashedrekord entries to a real Rekor v2 log and
// verifies them the way online verification will: a checkpoint read from the
// tiles, verified against the log key, and inclusion proofs built from tiles.
func TestHarnessRekor(t *testing.T) {
	harness.Require(t, "posix")
	ctx := t.Context()
	rk, err := harness.StartRekor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rk.Stop)
	t.Logf("rekor write %s, tiles %s, origin %q", rk.URL, rk.TilesURL, rk.Origin)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var entries []*harness.LogEntry
	var requests []harness.HashedRekord
	for range 2 {
		artifact := make([]byte, 64)
		if _, err := rand.Read(artifact); err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(artifact)
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		hr := harness.HashedRekord{Digest: digest[:], Signature: sig, PublicKeyDER: pubDER}
		e, err := rk.AddHashedRekord(ctx, hr)
		if err != nil {
			t.Fatalf("adding entry: %v", err)
		}
		entries = append(entries, e)
		requests = append(requests, hr)
	}
	if entries[0].Index == entries[1].Index {
		t.Fatalf("both entries got index %d", entries[0].Index)
	}
	var dup *harness.DuplicateEntryError
	if _, err := rk.AddHashedRekord(ctx, requests[0]); !errors.As(err, &dup) || dup.Index != entries[0].Index {
		t.Errorf("adding a duplicate: err = %v, want DuplicateEntryError at %d", err, entries[0].Index)
	}

	tiles, err := rk.Tiles()
	if err != nil {
		t.Fatal(err)
	}
	cp, raw, err := tiles.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("reading checkpoint from tiles: %v", err)
	}
	t.Logf("checkpoint:\n%s", raw)
	if cp.Size < 2 {
		t.Fatalf("tree size %d after two entries", cp.Size)
	}
	verifyWithPEM(t, rk.PublicKeyPEM, rk.Origin, raw)

	for i, e := range entries {
		checkBody(t, e.CanonicalizedBody, requests[i])
		if err := tiles.VerifyInclusion(ctx, cp, e.Index, e.CanonicalizedBody); err != nil {
			t.Errorf("entry %d: inclusion from tiles: %v", e.Index, err)
		}
		stored, err := tiles.Entry(ctx, e.Index, cp.Size)
		if err != nil {
			t.Errorf("entry %d: reading entry bundle: %v", e.Index, err)
		} else if !bytes.Equal(stored, e.CanonicalizedBody) {
			t.Errorf("entry %d: entry bundle holds %q, want %q", e.Index, stored, e.CanonicalizedBody)
		}
		// The proof in the response is against the checkpoint in the response.
		ecp, err := tiles.VerifyCheckpoint(e.Checkpoint)
		if err != nil {
			t.Fatalf("entry %d: checkpoint in response: %v", e.Index, err)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(e.CanonicalizedBody)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Index, ecp.Size, leaf, e.ProofHashes, ecp.Hash); err != nil {
			t.Errorf("entry %d: inclusion proof in response: %v", e.Index, err)
		}
		if err := tiles.VerifyConsistency(ctx, ecp, cp); err != nil {
			t.Errorf("entry %d: consistency %d to %d: %v", e.Index, ecp.Size, cp.Size, err)
		}
	}

	// The checks above must be able to fail.
	tampered := append(bytes.Clone(entries[0].CanonicalizedBody), ' ')
	if err := tiles.VerifyInclusion(ctx, cp, entries[0].Index, tampered); err == nil {
		t.Error("inclusion of a tampered entry verified")
	}
	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := harness.NewTileLog(rk.TilesURL, rk.Origin, otherPub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Checkpoint(ctx); err == nil {
		t.Error("checkpoint verified with a key that is not the log's")
	}

	rk.Stop()
	rk.Stop() // idempotent
	if resp, err := http.Get(rk.TilesURL + "checkpoint"); err == nil {
		resp.Body.Close()
		t.Error("tile server still answers after Stop")
	}
}

// verifyWithPEM checks the checkpoint with a verifier built only from the
// published PEM key, as a client with a trusted root would.
func verifyWithPEM(t *testing.T, pubPEM []byte, origin string, raw []byte) {
	t.Helper()
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		t.Fatal("log public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	v, err := harness.NoteVerifier(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint signature: %v", err)
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		t.Fatalf("checkpoint body: %v", err)
	}
	if cp.Origin != origin {
		t.Errorf("checkpoint origin %q, want %q", cp.Origin, origin)
	}
}

// checkBody checks that the logged entry is the hashedrekord v0.0.2 we sent.
func checkBody(t *testing.T, body []byte, hr harness.HashedRekord) {
	t.Helper()
	var e struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			V002 struct {
				Data struct {
					Algorithm string `json:"algorithm"`
					Digest    []byte `json:"digest"`
				} `json:"data"`
				Signature struct {
					Content []byte `json:"content"`
				} `json:"signature"`
			} `json:"hashedRekordV002"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("entry body: %v", err)
	}
	d := e.Spec.V002
	if e.Kind != "hashedrekord" || e.APIVersion != "0.0.2" || d.Data.Algorithm != "SHA2_256" ||
		!bytes.Equal(d.Data.Digest, hr.Digest) || !bytes.Equal(d.Signature.Content, hr.Signature) {
		t.Errorf("entry body %s does not match the request", body)
	}
}

//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// TestVerifyOnlineRekorV2 signs an image with the real cosign v3 CLI through
// a real Rekor v2 log and verifies it online with the real binary, the
// log's checkpoint and tiles read from the static tile server:
//
//   - the first run stores the log's checkpoint;
//   - entries are appended, the registry is stopped, and the second run
//     takes the result from the cache (no registry to ask) yet proves the
//     grown log consistent with the stored checkpoint and stores the new one;
//   - a second Rekor v2 with the same key and origin but other entries (a
//     fork, as a log presenting a split view would serve it) is refused,
//     exit 1, both when its tree is smaller than the stored one and when it
//     is larger but does not extend it; the stored checkpoint is kept.
func TestVerifyOnlineRekorV2(t *testing.T) {
	bin := cosignBin(t)
	harness.Require(t, "docker-registry")
	harness.Require(t, "posix")
	dir := t.TempDir()
	reg, err := harness.StartRegistry(t.Context(), filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	rekor := cosignSigstore(t, bin, filepath.Join(dir, "rekor"), dir)
	rp, err := name.NewRepository(reg.Addr + "/online/signed")
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := trusttest.PushImage(t, rp)
	cosign(t, bin, dir, "sign", "--yes", "--allow-http-registry", "--key", "cosign.key", "--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json", signed)

	store := filepath.Join(dir, "checkpoints")
	verify := func(tilesURL string) (trust.LogState, string, int) {
		t.Helper()
		out, errOut, code := runBG(t, "verify", "--json", "--trusted-root", filepath.Join(dir, "trusted_root.json"), "--key", filepath.Join(dir, "cosign.pub"),
			"--rekor-url", tilesURL, "--checkpoints", store, "--verify-cache", filepath.Join(dir, "cache"), signed)
		var report struct {
			Logs []trust.LogState `json:"logs"`
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Logs) != 1 {
			t.Fatalf("exit %d, report %v:\n%s%s", code, err, out, errOut)
		}
		return report.Logs[0], out, code
	}
	first, out, code := verify(rekor.TilesURL)
	if code != 0 || first.StoredSize != 0 || first.TreeSize == 0 || !strings.Contains(out, `"online": {`) {
		t.Fatalf("first online verification: exit %d, log %+v\n%s", code, first, out)
	}
	stored := readFile(t, first.StoreFile)

	addEntries(t, rekor, 3)
	reg.Stop() // from now on the result can only come from the cache
	grown, out, code := verify(rekor.TilesURL)
	if code != 0 || !grown.Advanced || grown.StoredSize != first.TreeSize || grown.TreeSize < first.TreeSize+3 || grown.StoredRootHash != first.RootHash {
		t.Fatalf("after appending: exit %d, log %+v (first %+v)\n%s", code, grown, first, out)
	}
	if now := readFile(t, first.StoreFile); now == stored || !strings.Contains(now, rekor.Origin+"\n") {
		t.Errorf("the stored checkpoint did not advance:\n%s", now)
	}
	stored = readFile(t, first.StoreFile)

	// The fork: the same key and origin, other entries.
	key := signerKey(t, rekor.SignerKeyPath)
	fork, err := harness.StartRekorWithKey(t.Context(), filepath.Join(dir, "fork"), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fork.Stop)
	addEntries(t, fork, 1)
	for _, size := range []string{"smaller", "larger"} {
		if size == "larger" {
			addEntries(t, fork, int(grown.TreeSize)) //nolint:gosec // a test log is small
		}
		split, out, code := verify(fork.TilesURL)
		if code != 1 || split.SplitView == "" || !strings.Contains(out, `"reason": "tlog-split-view"`) || !strings.Contains(split.SplitView, "may be presenting a forked (split) view") {
			t.Errorf("%s fork: exit %d, want 1 with a split view; log %+v\n%s", size, code, split, out)
		}
		if size == "smaller" && !strings.Contains(split.SplitView, "smaller than the tree of size") {
			t.Errorf("smaller fork: %s", split.SplitView)
		}
		if size == "larger" && (split.TreeSize <= grown.TreeSize || !strings.Contains(split.SplitView, "does not extend the tree of size")) {
			t.Errorf("larger fork: size %d: %s", split.TreeSize, split.SplitView)
		}
		t.Logf("%s fork refused: %s", size, split.SplitView)
		if now := readFile(t, first.StoreFile); now != stored {
			t.Errorf("a fork replaced the stored checkpoint:\n%s", now)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// signerKey reads a log's Ed25519 signing key.
func signerKey(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, path)))
	if block == nil {
		t.Fatal("signer key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("signer key is %T", k)
	}
	return key
}

// addEntries adds n hashedrekord entries of random artifacts to the log,
// concurrently, so that they share checkpoints.
func addEntries(t *testing.T, r *harness.Rekor, n int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			artifact := make([]byte, 32)
			_, _ = rand.Read(artifact)
			digest := sha256.Sum256(artifact)
			sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
			if err == nil {
				_, err = r.AddHashedRekord(ctx, harness.HashedRekord{Digest: digest[:], Signature: sig, PublicKeyDER: der})
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("adding an entry: %v", err)
		}
	}
}

// TestVerifyOnlineRekorV1 verifies online, with the real binary, images in
// the real distribution registry whose signatures are logged in a Rekor v1
// log, served through an in-process Rekor v1 API (trusttest.RekorV1: a real
// Merkle tree, checkpoints signed with the log's key; a real Rekor v1 needs
// Trillian and MySQL). The entry is proven (exit 0); a log answering with
// another entry is refused (exit 1); a forked log is a split view (exit 1);
// a log that is down cannot complete (exit 3).
func TestVerifyOnlineRekorV1(t *testing.T) {
	harness.Require(t, "docker-registry")
	dir := t.TempDir()
	reg, err := harness.StartRegistry(t.Context(), filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	sig := trusttest.New(t)
	rekor := trusttest.ServeRekorV1(t, sig.Log)
	rp, err := name.NewRepository(reg.Addr + "/online/v1")
	if err != nil {
		t.Fatal(err)
	}
	signed, desc := trusttest.PushImage(t, rp)
	d, err := trust.ParseDigest(desc.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	trusttest.AttachBundle(t, rp, desc, trusttest.JSON(t, sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
	sig.Log.AppendOthers(3)

	store := filepath.Join(dir, "checkpoints")
	verify := func() (string, int) {
		t.Helper()
		out, errOut, code := runBG(t, "verify", "--trusted-root", sig.RootPath, "--key", sig.KeyFile(t),
			"--rekor-url", rekor.URL, "--checkpoints", store, "--no-verify-cache", signed)
		return out + errOut, code
	}
	if out, code := verify(); code != 0 || !strings.Contains(out, "verified  "+signed) {
		t.Fatalf("online in Rekor v1: exit %d\n%s", code, out)
	}
	rekor.Fault.Store(trusttest.RekorV1OtherEntry)
	out, code := verify()
	if code != 1 || !strings.Contains(out, "tlog-entry-mismatch: log ") {
		t.Errorf("log answering another entry: exit %d, want 1\n%s", code, out)
	}
	t.Logf("another entry:\n%s", out)
	rekor.Fault.Store(trusttest.RekorV1Honest)
	fork := sig.Log.Fork(t, 3)
	fork.AppendOthers(30)
	rekor.ServeFrom(fork)
	out, code = verify()
	if code != 1 || !strings.Contains(out, "tlog-split-view") || !strings.Contains(out, "may be presenting a forked (split) view") {
		t.Errorf("forked log: exit %d, want 1 with a split view\n%s", code, out)
	}
	t.Logf("forked:\n%s", out)
	rekor.Close()
	out, code = verify()
	if code != 3 {
		t.Errorf("log down: exit %d, want 3\n%s", code, out)
	}
	t.Logf("down:\n%s", out)
}

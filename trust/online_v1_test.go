package trust_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// rekorV1Fixture is a virtual Sigstore whose trusted log is served through
// an in-process Rekor v1 API (trusttest.RekorV1: a real Merkle tree,
// checkpoints signed with the log's key), and a registry with an image
// signed with a key and logged there (a bundle with an inclusion proof) and
// one signed and attested the cosign v2 way (only signed entry timestamps).
type rekorV1Fixture struct {
	sig     *trusttest.Sigstore
	rekor   *trusttest.RekorV1
	reg     *testRegistry
	bundled string
	legacy  string
	store   string
}

func newRekorV1Fixture(t *testing.T) *rekorV1Fixture {
	t.Helper()
	f := &rekorV1Fixture{sig: trusttest.New(t), reg: newTestRegistry(t, false), store: t.TempDir()}
	f.rekor = trusttest.ServeRekorV1(t, f.sig.Log)
	ref, desc := f.reg.image(t, "v1/bundled")
	f.reg.attachBundle(t, "v1/bundled", desc, trusttest.JSON(t, f.sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)))))
	f.bundled = ref
	ref, desc = f.reg.image(t, "v1/legacy")
	keyed := trusttest.SignOpts{Key: f.sig.SignKey, Logs: []*trusttest.Log{f.sig.Log}}
	trusttest.AttachLegacy(t, f.reg.repo(t, "v1/legacy"), desc.Digest, []trusttest.LegacySignature{
		f.sig.LegacySign(t, trusttest.SimpleSigning(t, ref, imageDigest(t, ref)), keyed),
	})
	trusttest.AttachLegacyAttestations(t, f.reg.repo(t, "v1/legacy"), desc.Digest, []trusttest.LegacySignature{
		f.sig.LegacyAttest(t, trusttest.ProvenanceV1(t, trustedBuilder, "https://github.com/org/tool", imageDigest(t, ref)), keyed, "dsse"),
	})
	f.legacy = ref
	f.sig.Log.AppendOthers(3) // the log grows after signing
	return f
}

func (f *rekorV1Fixture) policy() trust.Policy {
	return trust.Policy{TrustedRoot: f.sig.Root, Keys: []trust.Key{f.sig.Key}, RekorURL: f.rekor.URL}
}

func (f *rekorV1Fixture) verifier(t *testing.T, p trust.Policy) *trust.Verifier {
	t.Helper()
	return trusttest.Verifier(t, p, trust.WithKeychain(anonymous), trust.WithCheckpoints(f.store))
}

func (f *rekorV1Fixture) stored(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.store, f.sig.Log.ID+".checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestRekorV1Online proves an online look-up in a Rekor v1 log: each entry
// (from a bundle with an inclusion proof, and from a cosign v2 signature
// with only a signed entry timestamp) is fetched, is the entry the
// signature holds, and is proven in the log's signed tree; the log's tree
// head is stored, and after the log grows it advances only through a
// verified consistency proof.
func TestRekorV1Online(t *testing.T) {
	f := newRekorV1Fixture(t)
	v := f.verifier(t, f.policy())
	results, errs := v.VerifyImages(t.Context(), []string{f.bundled, f.legacy}, 0)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	logs := v.Logs()
	if len(logs) != 1 || logs[0].LogID != f.sig.Log.ID || logs[0].StoredSize != 0 || logs[0].Advanced || !strings.HasPrefix(logs[0].Origin, "rekor.trusted.example - ") {
		t.Fatalf("log state = %+v", logs)
	}
	for i, res := range results {
		if !res.Verified || len(res.Candidates) != i+1 {
			t.Fatalf("%s: verified %v, reasons %q, candidates %+v", res.Ref, res.Verified, res.Reasons(), res.Candidates)
		}
		for _, c := range res.Candidates {
			if !c.Verified || len(c.LogEntries) != 1 || c.LogEntries[0].Online == nil || c.LogEntries[0].Online.TreeSize != logs[0].TreeSize {
				t.Errorf("%s: %s: verified %v, entries %+v; want one proven in the tree of size %d", res.Ref, c.Source, c.Verified, c.LogEntries, logs[0].TreeSize)
			}
		}
	}
	first := f.stored(t)
	if !strings.HasPrefix(first, logs[0].Origin+"\n") {
		t.Errorf("stored checkpoint:\n%s", first)
	}

	f.sig.Log.AppendOthers(4)
	v = f.verifier(t, f.policy())
	res, err := v.VerifyImage(t.Context(), f.bundled)
	if err != nil || !res.Verified {
		t.Fatalf("after the log grew: %v %q", err, reasons(res))
	}
	if now := v.Logs()[0]; !now.Advanced || now.StoredSize != logs[0].TreeSize || now.TreeSize != logs[0].TreeSize+4 {
		t.Errorf("log state after growth = %+v, want advanced from %d", now, logs[0].TreeSize)
	}
	if f.stored(t) == first {
		t.Error("the stored checkpoint did not advance")
	}
}

// TestRekorV1LiesAboutTheEntry proves that a log answering with another
// entry, or with the proof of another entry, gets the signature refused,
// each for its own reason, and not an error.
func TestRekorV1LiesAboutTheEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault int32
		want  trust.Reason
		says  string
	}{
		{"another entry", trusttest.RekorV1OtherEntry, trust.ReasonTlogEntryMismatch, "answers another entry at index"},
		{"proof of another entry", trusttest.RekorV1WrongProof, trust.ReasonTlogInclusion, "is not proven in the tree of size"},
		{"proof checkpoint signed by an untrusted key", trusttest.RekorV1UntrustedProof, trust.ReasonTlogCheckpoint, "is not signed by log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRekorV1Fixture(t)
			f.rekor.Fault.Store(tc.fault)
			for _, ref := range []string{f.bundled, f.legacy} {
				res, err := f.verifier(t, f.policy()).VerifyImage(t.Context(), ref)
				if err != nil {
					t.Fatalf("%s: err %v, want a refusal", ref, err)
				}
				if res.Verified || len(res.Candidates) == 0 {
					t.Fatalf("%s: verified %v, candidates %+v", ref, res.Verified, res.Candidates)
				}
				for _, c := range res.Candidates {
					if r := c.Refusal; c.Verified || r == nil || r.Reason != tc.want || !strings.Contains(r.Detail, tc.says) {
						t.Errorf("%s: %s: verified %v, refusal %+v; want %s saying %q", ref, c.Source, c.Verified, r, tc.want, tc.says)
					}
				}
			}
		})
	}
}

// TestRekorV1UntrustedHead proves that a Rekor v1 API whose tree head is
// signed by no log of the trusted root cannot be used: exit code 3.
func TestRekorV1UntrustedHead(t *testing.T) {
	f := newRekorV1Fixture(t)
	f.rekor.Fault.Store(trusttest.RekorV1UntrustedHead)
	_, err := f.verifier(t, f.policy()).VerifyImage(t.Context(), f.bundled)
	var oe *trust.OnlineError
	if !errors.As(err, &oe) || exitcode.Of(err) != 3 || !strings.Contains(err.Error(), "is signed by none of the") {
		t.Errorf("err = %v (exit %d), want an online error with exit code 3", err, exitcode.Of(err))
	}
}

// TestRekorV1Forked proves that a Rekor v1 log presenting a tree that does
// not extend the checkpoint stored earlier, or the checkpoint in the
// bundle on first use, gets every image with an entry there refused as a
// split view (exit 1), and that the stored checkpoint is kept.
func TestRekorV1Forked(t *testing.T) {
	t.Run("stored checkpoint", func(t *testing.T) {
		f := newRekorV1Fixture(t)
		if res, err := f.verifier(t, f.policy()).VerifyImage(t.Context(), f.bundled); err != nil || !res.Verified {
			t.Fatalf("before the fork: %v %q", err, reasons(res))
		}
		before := f.stored(t)
		fork := f.sig.Log.Fork(t, 3)
		fork.AppendOthers(30)
		f.rekor.ServeFrom(fork)
		v := f.verifier(t, f.policy())
		res, err := v.VerifyImage(t.Context(), f.bundled)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified || len(res.Problems) == 0 || res.Problems[0].Reason != trust.ReasonTlogSplitView ||
			!strings.Contains(res.Problems[0].Detail, "may be presenting a forked (split) view") || !strings.Contains(res.Problems[0].Detail, "does not extend the tree of size") {
			t.Fatalf("verified %v, problems %+v: want a split view", res.Verified, res.Problems)
		}
		if exitcode.Of(err) != 0 {
			t.Errorf("a split view is a refusal, not an error")
		}
		if v.Logs()[0].SplitView == "" {
			t.Errorf("log state %+v does not report the split view", v.Logs()[0])
		}
		if f.stored(t) != before {
			t.Error("the stored checkpoint changed on a split view")
		}
	})
	t.Run("first use: the bundle's checkpoint", func(t *testing.T) {
		f := newRekorV1Fixture(t)
		fork := f.sig.Log.Fork(t, 3)
		fork.AppendOthers(30)
		f.rekor.ServeFrom(fork)
		res, err := f.verifier(t, f.policy()).VerifyImage(t.Context(), f.bundled)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified || len(res.Problems) == 0 || res.Problems[0].Reason != trust.ReasonTlogSplitView || !strings.Contains(res.Problems[0].Detail, "it signed for entry") {
			t.Errorf("verified %v, problems %+v: want a split view against the bundle's checkpoint", res.Verified, res.Problems)
		}
	})
}

// TestRekorV1Down proves that a Rekor v1 log that cannot be reached makes
// online verification an error with exit code 3, never a pass or a
// refusal.
func TestRekorV1Down(t *testing.T) {
	f := newRekorV1Fixture(t)
	if res, err := f.verifier(t, f.policy()).VerifyImage(t.Context(), f.bundled); err != nil || !res.Verified {
		t.Fatalf("before: %v %q", err, reasons(res))
	}
	f.rekor.Close()
	res, err := f.verifier(t, f.policy()).VerifyImage(t.Context(), f.bundled)
	var oe *trust.OnlineError
	if !errors.As(err, &oe) || exitcode.Of(err) != 3 || res != nil {
		t.Errorf("log down: res %v, err %v (exit %d), want an online error with exit code 3", res, err, exitcode.Of(err))
	}
}

// TestRekorV1Offline proves that without a Rekor URL the Rekor v1 log is
// never asked, though the entries verify from the signatures alone.
func TestRekorV1Offline(t *testing.T) {
	f := newRekorV1Fixture(t)
	p := f.policy()
	p.RekorURL = ""
	for _, ref := range []string{f.bundled, f.legacy} {
		res, err := trusttest.Verifier(t, p, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), ref)
		if err != nil || !res.Verified || len(res.LogEntries()) == 0 || res.LogEntries()[0].Online != nil {
			t.Fatalf("%s offline: %v %q", ref, err, reasons(res))
		}
	}
	if n := f.rekor.Requests.Load(); n != 0 {
		t.Errorf("%d requests reached the Rekor v1 log offline", n)
	}
}

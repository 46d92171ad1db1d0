package trust_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// onlineFixture is a virtual Sigstore whose trusted root also names a tiled
// log served on loopback, and a registry holding one image signed with a
// key and logged in that log.
type onlineFixture struct {
	sig   *trusttest.Sigstore
	log   *trusttest.TileLog
	reg   *testRegistry
	ref   string
	store string // the checkpoint store
}

func newOnlineFixture(t *testing.T) *onlineFixture {
	t.Helper()
	f := &onlineFixture{sig: trusttest.New(t), log: trusttest.NewTileLog(t), reg: newTestRegistry(t, false), store: t.TempDir()}
	f.sig.Trust(t, f.log.Info())
	f.log.AppendOthers(t, 5)
	f.ref = f.signedImage(t, "online/builder")
	f.log.AppendOthers(t, 3)
	return f
}

// signedImage pushes an image signed with the fixture's key, logged in the
// tiled log.
func (f *onlineFixture) signedImage(t *testing.T, repo string) string {
	t.Helper()
	ref, desc := f.reg.image(t, repo)
	b := f.log.Keyed(t, f.sig.SignKey, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)))
	f.reg.attachBundle(t, repo, desc, trusttest.JSON(t, b))
	return ref
}

// policy trusts the key, online at the tiled log.
func (f *onlineFixture) policy() trust.Policy {
	return trust.Policy{TrustedRoot: f.sig.Root, Keys: []trust.Key{f.sig.Key}, RekorURL: f.log.URL}
}

func (f *onlineFixture) verify(t *testing.T, p trust.Policy, opts ...trust.Option) (*trust.ImageResult, *trust.Verifier, error) {
	t.Helper()
	opts = append([]trust.Option{trust.WithKeychain(anonymous), trust.WithCheckpoints(f.store)}, opts...)
	v := trusttest.Verifier(t, p, opts...)
	res, err := v.VerifyImage(t.Context(), f.ref)
	return res, v, err
}

func (f *onlineFixture) stored(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.store, f.log.ID+".checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestOnlineLookup proves the online look-up: the entry is confirmed by an
// inclusion proof from the log's tiles in its current tree, the first
// checkpoint seen is stored, and after the log grows the stored checkpoint
// advances only through a verified consistency proof.
func TestOnlineLookup(t *testing.T) {
	f := newOnlineFixture(t)
	res, v, err := f.verify(t, f.policy())
	if err != nil || !res.Verified {
		t.Fatalf("verified %v, err %v, reasons %q", res != nil && res.Verified, err, reasons(res))
	}
	entries := res.LogEntries()
	if len(entries) != 1 || entries[0].LogID != f.log.ID || entries[0].Online == nil || entries[0].Online.TreeSize != 9 {
		t.Fatalf("log entries = %+v, want one confirmed online in a tree of 9", entries)
	}
	logs := v.Logs()
	if len(logs) != 1 || logs[0].LogID != f.log.ID || logs[0].TreeSize != 9 || logs[0].StoredSize != 0 || logs[0].Advanced || logs[0].SplitView != "" {
		t.Fatalf("logs = %+v, want first use at size 9", logs)
	}
	if first := f.stored(t); !strings.Contains(first, "127.0.0.1\n9\n") {
		t.Fatalf("stored checkpoint:\n%s\nwant the tree of size 9", first)
	}

	f.log.AppendOthers(t, 4)
	res, v, err = f.verify(t, f.policy())
	if err != nil || !res.Verified {
		t.Fatalf("after growth: verified %v, err %v, reasons %q", res != nil && res.Verified, err, reasons(res))
	}
	logs = v.Logs()
	if logs[0].StoredSize != 9 || logs[0].TreeSize != 13 || !logs[0].Advanced {
		t.Errorf("logs = %+v, want 9 advanced to 13", logs)
	}
	if got := f.stored(t); !strings.Contains(got, "127.0.0.1\n13\n") {
		t.Errorf("stored checkpoint:\n%s\nwant the tree of size 13", got)
	}
	if res.LogEntries()[0].Online.TreeSize != 13 {
		t.Errorf("entry confirmed in %+v, want the tree of 13", res.LogEntries()[0].Online)
	}

	// The same tree again: nothing to prove, nothing rewritten.
	if _, v, err = f.verify(t, f.policy()); err != nil || v.Logs()[0].Advanced || v.Logs()[0].StoredSize != 13 {
		t.Errorf("same tree: err %v, logs %+v", err, v.Logs())
	}
}

// TestOnlineSplitView swaps the log's storage for a fork signed with the
// same key and origin, and proves each way the fork can show itself is
// refused as a split view, naming both tree sizes and root hashes, while the
// stored checkpoint is kept.
func TestOnlineSplitView(t *testing.T) {
	for _, tc := range []struct {
		name string
		// forkSize entries of others make the fork; fresh means no
		// checkpoint was stored before (only the bundle's checkpoint is
		// there to contradict the fork).
		forkSize int
		fresh    bool
		want     []string
	}{
		{name: "larger fork", forkSize: 20, want: []string{"does not extend the tree of size 9"}},
		{name: "smaller tree", forkSize: 4, want: []string{"tree of size 4", "smaller than the tree of size 9"}},
		{name: "same size, other root", forkSize: 9, want: []string{"tree of size 9 with root"}},
		{name: "first use: the bundle's checkpoint", forkSize: 20, fresh: true, want: []string{"does not extend the tree of size 6", "it signed for entry 5"}},
		{name: "first use: smaller than the bundle's checkpoint", forkSize: 3, fresh: true, want: []string{"signed a tree of size 6", "smaller tree of size 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOnlineFixture(t)
			if !tc.fresh {
				if res, _, err := f.verify(t, f.policy()); err != nil || !res.Verified {
					t.Fatalf("before the fork: %v %q", err, reasons(res))
				}
			}
			before := ""
			if !tc.fresh {
				before = f.stored(t)
			}
			fork := f.log.Fork(t)
			fork.AppendOthers(t, tc.forkSize)
			f.log.ServeFrom(fork)
			res, v, err := f.verify(t, f.policy())
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified || len(res.Problems) == 0 || res.Problems[0].Reason != trust.ReasonTlogSplitView {
				t.Fatalf("verified %v, problems %+v: want a split view", res.Verified, res.Problems)
			}
			msg := res.Problems[0].Detail
			for _, want := range append(tc.want, "may be presenting a forked (split) view", "log "+f.log.ID[:16]) {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if !tc.fresh {
				if logs := v.Logs(); logs[0].SplitView == "" {
					t.Errorf("log state %+v does not report the split view", logs[0])
				}
				if !strings.Contains(msg, hex.EncodeToString(rootOf(t, before))) {
					t.Errorf("message does not name the stored root hash:\n%s", msg)
				}
				if after := f.stored(t); after != before {
					t.Errorf("the stored checkpoint changed on a split view:\n%s", after)
				}
			}
		})
	}
}

// rootOf returns the root hash of a stored checkpoint.
func rootOf(t *testing.T, raw string) []byte {
	t.Helper()
	lines := strings.SplitN(raw, "\n", 4)
	if len(lines) < 4 {
		t.Fatalf("checkpoint %q", raw)
	}
	if _, err := strconv.ParseUint(lines[1], 10, 64); err != nil {
		t.Fatal(err)
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestOnlineCannotComplete proves that a look-up that cannot be made is an
// error with exit code 3, not a refusal: the log's URL is down, it serves a
// log the trusted root does not name, or the stored checkpoint was changed.
func TestOnlineCannotComplete(t *testing.T) {
	f := newOnlineFixture(t)
	other := trusttest.NewTileLog(t)
	other.AppendOthers(t, 2)
	p := f.policy()
	p.RekorURL = other.URL
	if _, _, err := f.verify(t, p); exitcode.Of(err) != 3 || !strings.Contains(err.Error(), "signed by none of the") {
		t.Errorf("untrusted log: err %v (exit %d), want exit 3", err, exitcode.Of(err))
	}
	p.RekorURL = "http://127.0.0.1:1/"
	if _, _, err := f.verify(t, p); exitcode.Of(err) != 3 {
		t.Errorf("log down: err %v (exit %d), want exit 3", err, exitcode.Of(err))
	}

	if res, _, err := f.verify(t, f.policy()); err != nil || !res.Verified {
		t.Fatalf("%v %q", err, reasons(res))
	}
	file := filepath.Join(f.store, f.log.ID+".checkpoint")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doctored := strings.Replace(string(data), "127.0.0.1\n9\n", "127.0.0.1\n8\n", 1)
	if err := os.WriteFile(file, []byte(doctored), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.verify(t, f.policy()); exitcode.Of(err) != 3 || !strings.Contains(err.Error(), "stored checkpoint "+file+" does not verify") {
		t.Errorf("doctored store: err %v (exit %d), want exit 3 naming the file", err, exitcode.Of(err))
	}
}

// TestOnlineNeedsAnEntryInTheLog proves that a signature logged only in
// another log cannot pass an online look-up of this one.
func TestOnlineNeedsAnEntryInTheLog(t *testing.T) {
	f := newOnlineFixture(t)
	ref, desc := f.reg.image(t, "online/v1only")
	f.reg.attachBundle(t, "online/v1only", desc, trusttest.JSON(t, f.sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)))))
	v := trusttest.Verifier(t, f.policy(), trust.WithKeychain(anonymous), trust.WithCheckpoints(f.store))
	res, err := v.VerifyImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified || len(res.Candidates) != 1 || res.Candidates[0].Refusal == nil || res.Candidates[0].Refusal.Reason != trust.ReasonTlogNotOnline {
		t.Errorf("verified %v, reasons %q: want tlog-not-online", res.Verified, res.Reasons())
	}
	// Offline, the same signature verifies.
	p := f.policy()
	p.RekorURL = ""
	if res, err := trusttest.Verifier(t, p, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), ref); err != nil || !res.Verified {
		t.Errorf("offline: %v %q", err, reasons(res))
	}
}

// TestOnlineOptions proves an online look-up needs a checkpoint store, a
// URL, and the log not to be waived.
func TestOnlineOptions(t *testing.T) {
	f := newOnlineFixture(t)
	for name, p := range map[string]trust.Policy{
		"ftp":      {TrustedRoot: f.sig.Root, Keys: []trust.Key{f.sig.Key}, RekorURL: "ftp://127.0.0.1/"},
		"waived":   {TrustedRoot: f.sig.Root, Keys: []trust.Key{f.sig.Key}, RekorURL: f.log.URL, InsecureIgnoreTlog: true},
		"no store": f.policy(),
	} {
		var opts []trust.Option
		if name != "no store" {
			opts = append(opts, trust.WithCheckpoints(f.store))
		}
		var pe *trust.PolicyError
		if _, err := trust.New(p, opts...); !errors.As(err, &pe) {
			t.Errorf("%s: err %v, want a policy error", name, err)
		}
	}
}

// TestOfflineReadsNoTiles proves that without a Rekor URL the tiled log is
// never read, though its entry is verified (from the bundle alone).
func TestOfflineReadsNoTiles(t *testing.T) {
	f := newOnlineFixture(t)
	p := f.policy()
	p.RekorURL = ""
	res, _, err := f.verify(t, p)
	if err != nil || !res.Verified || res.LogEntries()[0].Online != nil {
		t.Fatalf("offline: %v %q %+v", err, reasons(res), res)
	}
	if n := f.log.Requests.Load(); n != 0 {
		t.Errorf("%d requests reached the log offline", n)
	}
}

func reasons(res *trust.ImageResult) []string {
	if res == nil {
		return nil
	}
	return res.Reasons()
}

// TestOnlineManyImages verifies images concurrently online: the log is read
// and its checkpoint stored once, and each image's entry is proven in the
// same tree.
func TestOnlineManyImages(t *testing.T) {
	f := newOnlineFixture(t)
	refs := []string{f.ref}
	for i := range 5 {
		refs = append(refs, f.signedImage(t, "online/many"+strconv.Itoa(i)))
	}
	v := trusttest.Verifier(t, f.policy(), trust.WithKeychain(anonymous), trust.WithCheckpoints(f.store))
	results, errs := v.VerifyImages(t.Context(), refs, 0)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	size := v.Logs()[0].TreeSize
	for _, res := range results {
		if !res.Verified || res.LogEntries()[0].Online == nil || res.LogEntries()[0].Online.TreeSize != size {
			t.Errorf("%s: verified %v, entries %+v, want confirmed in the tree of %d", res.Ref, res.Verified, res.LogEntries(), size)
		}
	}
}

package trust_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// warnings collects a verifier's warnings.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, s)
}

// TestResultCache proves a verified result is kept across verifiers (runs):
// the second verification with the same policy reads nothing from the
// registry and gives the same result, a change of any policy input misses
// the cache, and a refusal is never cached.
func TestResultCache(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	ref, desc := reg.image(t, "cache/builder")
	d := imageDigest(t, ref)
	reg.attachBundle(t, "cache/builder", desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
	reg.attachBundle(t, "cache/builder", desc, trusttest.JSON(t, f.Keyed(t, trusttest.ProvenanceV1(t, "https://ci.example/builder", "https://github.com/org/tool", d))))
	unsigned, _ := reg.image(t, "cache/unsigned")
	dir := t.TempDir()

	// verify returns the result and how many registry requests it took.
	verify := func(t *testing.T, p trust.Policy, ref string) (*trust.ImageResult, int64) {
		t.Helper()
		var w warnings
		v := trusttest.Verifier(t, p, trust.WithKeychain(anonymous), trust.WithResultCache(dir), trust.WithWarnings(w.add))
		before := reg.requests.Load()
		res, err := v.VerifyImage(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.list) > 0 {
			t.Errorf("warnings: %q", w.list)
		}
		return res, reg.requests.Load() - before
	}
	base := f.Policy()
	base.BuilderIDs = []string{"https://ci.example/builder"}
	cold, n := verify(t, base, ref)
	if !cold.Verified || n == 0 {
		t.Fatalf("cold: verified %v with %d requests", cold.Verified, n)
	}
	warm, n := verify(t, base, ref)
	if n != 0 {
		t.Errorf("cached verification made %d registry requests, want 0", n)
	}
	if !reflect.DeepEqual(warm, cold) {
		t.Errorf("cached result differs:\n%+v\n%+v", warm, cold)
	}

	_, otherKey := trusttest.NewKey(t)
	_, otherRoot := trusttest.WriteTrustedRoot(t, f.VS, f.Log, trusttest.NewLog(t, "rekor.other.example"))
	for name, change := range map[string]func(p *trust.Policy){
		"another key": func(p *trust.Policy) { p.Keys = append(p.Keys, otherKey) },
		"another identity": func(p *trust.Policy) {
			p.Identities = append(p.Identities, trust.Identity{Issuer: trusttest.Issuer, SubjectRegExp: ".*@other.example"})
		},
		"another trusted root": func(p *trust.Policy) { p.TrustedRoot = otherRoot },
		"a log threshold":      func(p *trust.Policy) { p.TlogThreshold = 2 },
		"the log waived":       func(p *trust.Policy) { p.InsecureIgnoreTlog = true },
		"another builder id":   func(p *trust.Policy) { p.BuilderIDs = append(p.BuilderIDs, "https://ci.other.example") },
		"a source URI":         func(p *trust.Policy) { p.SourceURIs = []string{"github.com/org/tool"} },
		"other limits":         func(p *trust.Policy) { p.Limits.MaxLogEntries = 3 },
	} {
		t.Run(name, func(t *testing.T) {
			p := base
			p.Keys, p.Identities, p.BuilderIDs = append([]trust.Key(nil), base.Keys...), append([]trust.Identity(nil), base.Identities...), append([]string(nil), base.BuilderIDs...)
			change(&p)
			if _, n := verify(t, p, ref); n == 0 {
				t.Errorf("a policy with %s hit the cache", name)
			}
		})
	}
	// Order of lists does not change the answer, so it hits.
	swapped := base
	swapped.BuilderIDs = []string{"https://ci.example/builder", "https://ci.example/builder"}
	if _, n := verify(t, swapped, ref); n != 0 {
		t.Errorf("a repeated builder id missed the cache (%d requests)", n)
	}

	refused, _ := verify(t, base, unsigned)
	if refused.Verified {
		t.Fatal("unsigned image verified")
	}
	if _, n := verify(t, base, unsigned); n == 0 {
		t.Error("a refusal was cached")
	}
}

// TestResultCacheDoctored proves a cache entry that is not a verified
// result of this image and policy is ignored, with a warning, and replaced.
func TestResultCacheDoctored(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	ref, desc := reg.image(t, "cache/doctored")
	reg.attachBundle(t, "cache/doctored", desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)))))
	dir := t.TempDir()
	v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous), trust.WithResultCache(dir))
	if res, err := v.VerifyImage(t.Context(), ref); err != nil || !res.Verified {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("cache files %v, %v", files, err)
	}
	for _, doctor := range []func(string) string{
		func(s string) string { return strings.Replace(s, `"verified":true`, `"verified":false`, 1) },
		func(s string) string { return s + "{}" },
		func(s string) string { return strings.Replace(s, `"format":"`, `"format":"x`, 1) },
	} {
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(files[0], []byte(doctor(string(data))), 0o600); err != nil {
			t.Fatal(err)
		}
		var w warnings
		v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous), trust.WithResultCache(dir), trust.WithWarnings(w.add))
		before := reg.requests.Load()
		res, err := v.VerifyImage(t.Context(), ref)
		if err != nil || !res.Verified || reg.requests.Load() == before {
			t.Errorf("doctored entry: verified %v, err %v, %d requests", res != nil && res.Verified, err, reg.requests.Load()-before)
		}
		if len(w.list) != 1 || !strings.Contains(w.list[0], "ignoring cached result "+files[0]) {
			t.Errorf("warnings %q", w.list)
		}
	}
}

// TestCachedPassStillLooksUpOnline proves a cached pass does not skip the
// online step: no registry request, but the log's new checkpoint is read,
// proven consistent with the stored one and stored, and a fork is caught.
func TestCachedPassStillLooksUpOnline(t *testing.T) {
	f := newOnlineFixture(t)
	cache := t.TempDir()
	if res, _, err := f.verify(t, f.policy(), trust.WithResultCache(cache)); err != nil || !res.Verified {
		t.Fatalf("%v %q", err, reasons(res))
	}
	f.log.AppendOthers(t, 3)
	regBefore, logBefore := f.reg.requests.Load(), f.log.Requests.Load()
	res, v, err := f.verify(t, f.policy(), trust.WithResultCache(cache))
	if err != nil || !res.Verified {
		t.Fatalf("%v %q", err, reasons(res))
	}
	if n := f.reg.requests.Load() - regBefore; n != 0 {
		t.Errorf("cached pass made %d registry requests", n)
	}
	if f.log.Requests.Load() == logBefore {
		t.Error("cached pass did not read the log")
	}
	if l := v.Logs()[0]; !l.Advanced || l.StoredSize != 9 || l.TreeSize != 12 || res.LogEntries()[0].Online.TreeSize != 12 {
		t.Errorf("log %+v, entry %+v: want 9 advanced to 12", l, res.LogEntries()[0].Online)
	}

	fork := f.log.Fork(t)
	fork.AppendOthers(t, 15)
	f.log.ServeFrom(fork)
	res, _, err = f.verify(t, f.policy(), trust.WithResultCache(cache))
	if err != nil || res.Verified || res.Problems[0].Reason != trust.ReasonTlogSplitView {
		t.Errorf("cached pass against a fork: err %v, verified %v, %q", err, res.Verified, reasons(res))
	}
	if n := f.reg.requests.Load() - regBefore; n != 0 {
		t.Errorf("cached verifications made %d registry requests", n)
	}
}

package cli

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// verifyEnv is a registry with signed and unsigned images and the files a
// user of a virtual Sigstore deployment would hold.
type verifyEnv struct {
	sig                *trusttest.Sigstore
	keyFile            string
	signed, keyless    string // references by digest
	provenance         string // signed, with SLSA provenance from testBuilder
	unsigned, unlogged string
	host               string
}

func newVerifyEnv(t *testing.T, referrersAPI bool) *verifyEnv {
	t.Helper()
	// No Docker config: tests must not read the user's credentials, nor
	// share the user's cache.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(referrersAPI)))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	e := &verifyEnv{sig: trusttest.New(t), host: host}
	e.keyFile = e.sig.KeyFile(t)
	// push pushes an image and attaches the bundles sign makes for it.
	push := func(repo string, sign func(d trust.Digest) [][]byte) string {
		rp, err := name.NewRepository(host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		ref, desc := trusttest.PushImage(t, rp)
		if sign != nil {
			d, err := trust.ParseDigest(desc.Digest.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range sign(d) {
				trusttest.AttachBundle(t, rp, desc, b)
			}
		}
		return ref
	}
	signature := func(b *protobundle.Bundle) [][]byte { return [][]byte{trusttest.JSON(t, b)} }
	e.signed = push("team/builder", func(d trust.Digest) [][]byte {
		return signature(e.sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d)))
	})
	e.provenance = push("team/built", func(d trust.Digest) [][]byte {
		return append(signature(e.sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))),
			trusttest.JSON(t, e.sig.Keyed(t, trusttest.ProvenanceV1(t, testBuilder, "https://github.com/org/tool", d))))
	})
	e.keyless = push("team/base", func(d trust.Digest) [][]byte {
		return signature(e.sig.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d)))
	})
	e.unlogged = push("team/unlogged", func(d trust.Digest) [][]byte {
		return signature(e.sig.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: e.sig.SignKey}))
	})
	e.unsigned = push("team/unsigned", nil)
	return e
}

const testBuilder = "https://github.com/actions/runner/github-hosted"

func (e *verifyEnv) keyed(args ...string) []string {
	return append([]string{"verify", "--trusted-root", e.sig.RootPath, "--key", e.keyFile}, args...)
}

func TestVerifyCommand(t *testing.T) {
	for _, api := range []bool{true, false} {
		e := newVerifyEnv(t, api)
		out, errOut, code := run(t, e.keyed(e.signed)...)
		if code != exitcode.Pass || !strings.HasPrefix(out, "verified  "+e.signed+": signed by key "+e.sig.Key.ID+"; logged at index ") {
			t.Errorf("referrers API %v: exit %d\n%s%s", api, code, out, errOut)
		}
	}
}

func TestVerifyKeyless(t *testing.T) {
	e := newVerifyEnv(t, true)
	out, errOut, code := run(t, "verify", "--trusted-root", e.sig.RootPath,
		"--certificate-oidc-issuer", trusttest.Issuer, "--certificate-identity-regexp", `release@builders\.example`, e.keyless)
	want := "verified  " + e.keyless + ": signed by " + trusttest.Subject + " (" + trusttest.Issuer + "); logged at index "
	if code != exitcode.Pass || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, want 0 and %q\n%s%s", code, want, out, errOut)
	}
	out, _, code = run(t, "verify", "--trusted-root", e.sig.RootPath,
		"--certificate-oidc-issuer", trusttest.Issuer, "--certificate-identity", "someone-else@builders.example", e.keyless)
	if code != exitcode.Fail || !strings.Contains(out, "identity-mismatch: certificate subject") {
		t.Errorf("wrong identity: exit %d, want 1 with identity-mismatch\n%s", code, out)
	}
}

// TestVerifyOrderAndReasons: one line per image in the order given, every
// reason under a refused one, exit 1 when any is refused.
func TestVerifyOrderAndReasons(t *testing.T) {
	e := newVerifyEnv(t, false)
	out, _, code := run(t, e.keyed(e.unsigned, e.signed, e.unlogged)...)
	if code != exitcode.Fail {
		t.Errorf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"refused   " + e.unsigned,
		"  no-signature: no Sigstore bundle is attached to ",
		"verified  " + e.signed + ": ",
		"refused   " + e.unlogged,
		"  no-signature: none of the 1 bundle(s) attached to ",
		"  referrer sha256:",
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s\nwant %d lines", out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[5], "tlog-missing: no transparency-log entry") {
		t.Errorf("the unlogged image's reason = %q, want tlog-missing", lines[5])
	}
}

func TestVerifyJSON(t *testing.T) {
	e := newVerifyEnv(t, true)
	down := strings.Replace(e.signed, e.host, "127.0.0.1:1", 1)
	out, _, code := run(t, e.keyed("--json", e.signed, e.unsigned, down)...)
	if code != exitcode.Incomplete {
		t.Errorf("exit %d, want 3 (could not complete wins over refused)", code)
	}
	var report struct {
		APIVersion string `json:"apiVersion"`
		Images     []struct {
			Ref        string            `json:"ref"`
			Digest     string            `json:"digest"`
			Verified   bool              `json:"verified"`
			Candidates []trust.Candidate `json:"candidates"`
			Problems   []trust.Refusal   `json:"problems"`
			Error      string            `json:"error"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if report.APIVersion != "buildguard/v1" || len(report.Images) != 3 {
		t.Fatalf("report = %+v", report)
	}
	got := report.Images
	if got[0].Ref != e.signed || !got[0].Verified || len(got[0].Candidates) != 1 || got[0].Candidates[0].Signer.KeyID != e.sig.Key.ID || len(got[0].Candidates[0].LogEntries) != 1 {
		t.Errorf("signed image = %+v", got[0])
	}
	if got[1].Ref != e.unsigned || got[1].Verified || len(got[1].Problems) != 1 || got[1].Problems[0].Reason != trust.ReasonNoSignature {
		t.Errorf("unsigned image = %+v", got[1])
	}
	if got[2].Ref != down || got[2].Error == "" {
		t.Errorf("unreachable image = %+v", got[2])
	}
}

func TestVerifyInsecureIgnoreTlog(t *testing.T) {
	e := newVerifyEnv(t, true)
	out, errOut, code := run(t, "verify", "--key", e.keyFile, "--insecure-ignore-tlog", e.unlogged)
	if code != exitcode.Pass || !strings.Contains(out, "transparency log NOT checked (--insecure-ignore-tlog)") || !strings.Contains(errOut, "warning: --insecure-ignore-tlog") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pub")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodKey := trusttest.New(t).KeyFile(t)
	const img = "registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"verify", "--key", notPEM, "--insecure-ignore-tlog"}, "name at least one image"},
		{[]string{"verify", "--key", notPEM, "--insecure-ignore-tlog", "registry.example/app:1.0"}, "run 'buildguard pin'"},
		{[]string{"verify", "--key", notPEM, "--insecure-ignore-tlog", "Bad Ref"}, "not a valid image reference"},
		{[]string{"verify", img}, "nothing to trust"},
		{[]string{"verify", "--key", notPEM, img}, "--trusted-root FILE is needed"},
		{[]string{"verify", "--certificate-identity", "a@example.com", "--trusted-root", notPEM, img}, "exactly one of --certificate-oidc-issuer"},
		{[]string{"verify", "--certificate-identity", "a@example.com", "--certificate-identity-regexp", "a", "--certificate-oidc-issuer", "x", "--trusted-root", notPEM, img}, "exactly one of --certificate-identity and"},
		{[]string{"verify", "--certificate-identity", "a@example.com", "--certificate-oidc-issuer", "x", "--insecure-ignore-tlog", img}, "needs --trusted-root"},
		{[]string{"verify", "--key", notPEM, "--insecure-ignore-tlog", img}, "--key: key file"},
		{[]string{"verify", "--key", filepath.Join(dir, "missing.pub"), "--insecure-ignore-tlog", img}, "no such file"},
		{[]string{"verify", "--key", goodKey, "--trusted-root", notPEM, img}, "--trusted-root: trusted root"},
		{[]string{"verify", "--rekor-url", "ftp://rekor.example", "--key", notPEM, "--trusted-root", notPEM, img}, "--rekor-url \"ftp://rekor.example\": want the http(s) URL"},
		{[]string{"verify", "--rekor-url", "https://rekor.example", "--key", notPEM, "--insecure-ignore-tlog", img}, "--rekor-url contradicts --insecure-ignore-tlog"},
		{[]string{"verify", "--verify-cache", dir, "--no-verify-cache", "--key", notPEM, "--insecure-ignore-tlog", img}, "--verify-cache contradicts --no-verify-cache"},
		{[]string{"verify", "--builder-id", "", "--key", notPEM, "--insecure-ignore-tlog", img}, "need a value"},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, tt.args...)
		if code != exitcode.Usage || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%q: exit %d, want 2 with %q\n%s", tt.args, code, tt.msg, errOut)
		}
	}
}

func TestVerifyProvenance(t *testing.T) {
	e := newVerifyEnv(t, true)
	out, errOut, code := run(t, e.keyed("--builder-id", testBuilder, "--source-uri", "github.com/org/tool", e.provenance)...)
	if code != exitcode.Pass || !strings.Contains(out, "; built by "+testBuilder+" from https://github.com/org/tool") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = run(t, e.keyed("--builder-id", "https://ci.other.example", e.provenance, e.signed)...)
	if code != exitcode.Fail || strings.Count(out, "provenance-mismatch: verified provenance says builder") != 1 || !strings.Contains(out, "no-provenance: no verified SLSA provenance") {
		t.Errorf("other builder: exit %d, want 1 with provenance-mismatch and no-provenance\n%s", code, out)
	}
}

// TestVerifyOnlineAndCache runs verify as a user would, online at a tiled
// log served on loopback: the first run stores the log's checkpoint, the
// second takes the result from the cache without a registry request yet
// proves the grown log consistent and stores its checkpoint, and a fork of
// the log is refused (exit 1) as a split view. Offline, the log is never
// read.
func TestVerifyOnlineAndCache(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	var requests atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	sig, tl := trusttest.New(t), trusttest.NewTileLog(t)
	sig.Trust(t, tl.Info())
	tl.AppendOthers(t, 3)
	rp, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/online/base")
	if err != nil {
		t.Fatal(err)
	}
	ref, desc := trusttest.PushImage(t, rp)
	d, err := trust.ParseDigest(desc.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	trusttest.AttachBundle(t, rp, desc, trusttest.JSON(t, tl.Keyed(t, sig.SignKey, trusttest.Statement(t, trust.CosignSignPredicate, d))))
	dir := t.TempDir()
	args := []string{"verify", "--trusted-root", sig.RootPath, "--key", sig.KeyFile(t), "--checkpoints", filepath.Join(dir, "cp"), "--verify-cache", filepath.Join(dir, "cache")}
	logLine := "log       " + tl.ID[:16] + " (127.0.0.1) at " + tl.URL + ": "

	out, errOut, code := run(t, append(args, ref)...)
	if code != exitcode.Pass || tl.Requests.Load() != 0 {
		t.Fatalf("offline: exit %d, %d log requests\n%s%s", code, tl.Requests.Load(), out, errOut)
	}
	args = append(args, "--rekor-url", tl.URL)
	out, errOut, code = run(t, append(args, ref)...)
	if code != exitcode.Pass || !strings.Contains(out, "(confirmed online in a tree of 4)") || !strings.Contains(out, logLine+"tree of size 4 (root ") || !strings.Contains(out, "first seen: stored in "+filepath.Join(dir, "cp", tl.ID+".checkpoint")) {
		t.Fatalf("online: exit %d\n%s%s", code, out, errOut)
	}

	tl.AppendOthers(t, 2)
	before := requests.Load()
	out, errOut, code = run(t, append(args, "--json", ref)...)
	if code != exitcode.Pass || requests.Load() != before {
		t.Fatalf("cached online: exit %d, %d registry requests\n%s%s", code, requests.Load()-before, out, errOut)
	}
	var report struct {
		Logs []trust.LogState `json:"logs"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Logs) != 1 || report.Logs[0].StoredSize != 4 || report.Logs[0].TreeSize != 6 || !report.Logs[0].Advanced {
		t.Errorf("logs = %+v, want 4 advanced to 6", report.Logs)
	}

	fork := tl.Fork(t)
	fork.AppendOthers(t, 8)
	tl.ServeFrom(fork)
	out, errOut, code = run(t, append(args, ref)...)
	if code != exitcode.Fail || !strings.Contains(out, "refused   "+ref+"\n  tlog-split-view: log "+tl.ID[:16]) || !strings.Contains(out, logLine+"SPLIT VIEW") {
		t.Errorf("fork: exit %d, want 1 with a split view\n%s%s", code, out, errOut)
	}
}

package guard

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
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
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/reproduce"
	"github.com/buildguard/buildguard/trust"
)

// countingRegistry is go-containerregistry's registry with the referrers
// API, counting the requests that write (PUT, POST, PATCH, DELETE).
type countingRegistry struct {
	host   string
	writes atomic.Int64
}

func startCountingRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	c := &countingRegistry{}
	reg := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.writes.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// decided returns a run as the pipeline leaves it: a built output, an
// evidence directory, and the given decision.
func decided(t *testing.T, image string, d evidence.Decision, signer *attest.Signer) *run {
	t.Helper()
	src, out, tree := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "app"), []byte("binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := builder.HashTree(t.Context(), tree)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Source: config.Path{Text: ".", Resolved: src}, Publish: config.Publish{Image: image}}
	cfg.Builder.Command, cfg.Builder.Workdir = []string{"go", "build"}, "/src"
	r := evidence.New()
	r.Decision = d
	r.Source = &evidence.Source{Path: ".", Digest: "sha256:" + strings.Repeat("ab", 32), SourceDateEpoch: 1700000000}
	r.Runs = []evidence.Run{{Index: 1, Builder: "sha256:" + strings.Repeat("cd", 32), OutputDigest: m.Digest()}}
	return &run{
		opts: Options{Out: out, Signer: signer}, cfg: cfg, report: r, timings: &evidence.Timings{},
		outcome: &reproduce.Outcome{Runs: []*reproduce.Run{{Index: 1, Out: tree, Result: &builder.Result{Output: m}}}},
		output:  tree,
	}
}

// TestNothingPushedUnlessPass: with a fail or error decision, or with
// --no-publish, the registry sees no write at all (no blob, no manifest,
// no tag), report.json names nothing published, and the statements are
// still written, the VSA saying FAILED.
func TestNothingPushedUnlessPass(t *testing.T) {
	reg := startCountingRegistry(t)
	for _, tc := range []struct {
		name      string
		decision  evidence.Decision
		noPublish bool
	}{{"fail", evidence.Fail, false}, {"error", evidence.Error, false}, {"no-publish", evidence.Pass, true}} {
		g := decided(t, reg.host+"/app:v1", tc.decision, nil)
		g.opts.NoPublish = tc.noPublish
		if err := g.finish(t.Context(), nil); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := reg.writes.Load(); n != 0 {
			t.Fatalf("%s: the registry saw %d writes", tc.name, n)
		}
		if g.report.Published != nil {
			t.Errorf("%s: report says published: %+v", tc.name, g.report.Published)
		}
		vsa, err := os.ReadFile(filepath.Join(g.opts.Out, attest.VSAFile))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := `"verificationResult": "FAILED"`
		if tc.noPublish {
			want = `"verificationResult": "PASSED"`
		}
		if !bytes.Contains(vsa, []byte(want)) {
			t.Errorf("%s: vsa.json lacks %s", tc.name, want)
		}
	}
	if _, err := remote.Head(mustRef(t, reg.host+"/app:v1")); err == nil {
		t.Error("the tag exists")
	}
}

// TestPublishOnPass: a pass pushes the output with its statements and
// bundles as referrers, records the digest in the report, and the same
// inputs give the same digest, byte-identical report.json, provenance.json
// and vsa.json; the bundles verify with the public key.
func TestPublishOnPass(t *testing.T) {
	reg := startCountingRegistry(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	var reports, provs, vsas [][]byte
	var digest string
	for i := range 2 {
		g := decided(t, reg.host+"/app:v1", evidence.Pass, signer)
		if err := g.finish(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		if g.report.Published == nil || g.report.Published.Image != reg.host+"/app:v1" {
			t.Fatalf("published: %+v", g.report.Published)
		}
		if i == 1 && g.report.Published.Digest != digest {
			t.Errorf("digests differ: %s, %s", digest, g.report.Published.Digest)
		}
		digest = g.report.Published.Digest
		rep, err := g.report.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, rep)
		provs = append(provs, readFile(t, g.opts.Out, attest.ProvenanceFile))
		vsas = append(vsas, readFile(t, g.opts.Out, attest.VSAFile))

		key, err := trust.NewKey(ec.Public())
		if err != nil {
			t.Fatal(err)
		}
		v, err := trust.New(trust.Policy{Keys: []trust.Key{key}, InsecureIgnoreTlog: true})
		if err != nil {
			t.Fatal(err)
		}
		m := g.controlManifest()
		c, err := v.VerifyBundle(readFile(t, g.opts.Out, attest.ProvenanceBundleFile), "sha256:"+m.Entries[0].SHA256)
		if err != nil || !c.Verified {
			t.Errorf("provenance bundle: %v %+v", err, c.Refusal)
		}
	}
	if !bytes.Equal(reports[0], reports[1]) || !bytes.Equal(provs[0], provs[1]) || !bytes.Equal(vsas[0], vsas[1]) {
		t.Error("report.json, provenance.json or vsa.json differ between two runs")
	}
	idx, err := remote.Referrers(mustRef(t, reg.host+"/app@"+digest).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	// The statements about the image (image.provenance.json,
	// image.vsa.json) are the same both times; the bundles' signatures are
	// not (ECDSA), so each run adds three bundles (the image's signature,
	// its provenance and its VSA). The statements about the output files
	// are not attached. (ggcr's registry lists the config's media type as
	// artifactType, so the annotations tell.)
	kinds := map[string]int{}
	for _, d := range im.Manifests {
		switch {
		case d.Annotations[annPredicateType] != "":
			kinds["statement"]++
		case d.Annotations[annBundlePredicateType] != "":
			kinds["bundle"]++
		}
	}
	if kinds["statement"] != 2 || kinds["bundle"] != 6 || len(im.Manifests) != 8 {
		t.Errorf("referrers: %v of %d", kinds, len(im.Manifests))
	}
}

// TestImageProvenanceVerifies: the provenance signed about the pushed
// image is found and verified by buildguard's own image verification (as
// `buildguard verify` runs it) with the public key.
func TestImageProvenanceVerifies(t *testing.T) {
	reg := startCountingRegistry(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	g := decided(t, reg.host+"/app:v1", evidence.Pass, signer)
	if err := g.finish(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	key, err := trust.NewKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Policy{Keys: []trust.Key{key}, InsecureIgnoreTlog: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyImage(t.Context(), reg.host+"/app@"+g.report.Published.Digest)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range res.Candidates {
		if c.Verified && c.PredicateType == attest.ProvenancePredicateType {
			found = true
		}
	}
	if !found {
		t.Errorf("no verified provenance about the image: %+v", res.Candidates)
	}
}

// TestPublishFailureIsError: a pass whose push fails (the registry is
// gone) ends with decision error and the error, and report.json names
// nothing published.
func TestPublishFailureIsError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	g := decided(t, host+"/app:v1", evidence.Pass, nil)
	err := g.finish(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "publishing "+host+"/app:v1") {
		t.Fatalf("err = %v", err)
	}
	if g.report.Decision != evidence.Error || len(g.report.Errors) != 1 || g.report.Published != nil {
		t.Errorf("report: decision %s, errors %v, published %+v", g.report.Decision, g.report.Errors, g.report.Published)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUnloggedSignatureFailsClosed: with a signing config whose Rekor is
// down, a passing build ends in "error" naming the log, the registry sees
// no write, and no bundle is written (never an unlogged one in place of a
// logged one); report.json records where signatures were to be logged,
// and without a config that they are not logged. The build result of
// --attest-only fails the same way.
func TestUnloggedSignatureFailsClosed(t *testing.T) {
	reg := startCountingRegistry(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	logged, err := signer.WithLogs(&attest.SigningConfig{Logs: []attest.Log{{URL: down.URL, APIVersion: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	g := decided(t, reg.host+"/app:v1", evidence.Pass, logged)
	g.report.Signing = signingRecord(logged)
	err = g.finish(t.Context(), nil)
	var le *attest.LogError
	if !errors.As(err, &le) || le.Log.URL != down.URL {
		t.Fatalf("got %v, want a LogError naming %s", err, down.URL)
	}
	if g.report.Decision != evidence.Error || len(g.report.Errors) != 1 || !strings.Contains(g.report.Errors[0], "logging the signature in the Rekor v2 log "+down.URL) {
		t.Errorf("decision %s, errors %q", g.report.Decision, g.report.Errors)
	}
	if n := reg.writes.Load(); n != 0 || g.report.Published != nil {
		t.Errorf("the registry saw %d writes; published %+v", n, g.report.Published)
	}
	for _, f := range []string{attest.ProvenanceBundleFile, attest.VSABundleFile, attest.ImageSignatureBundleFile} {
		if _, err := os.Stat(filepath.Join(g.opts.Out, f)); err == nil {
			t.Errorf("%s was written", f)
		}
	}
	rep, err := g.report.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `"signing": {
    "keyID": "` + signer.KeyID() + `",
    "logged": true,
    "tlog": "rekor",
    "logs": [
      {
        "url": "` + down.URL + `",
        "apiVersion": 2
      }
    ]
  }`
	if !strings.Contains(string(rep), want) {
		t.Errorf("report.json lacks\n%s\n%s", want, rep)
	}
	// The build result of --attest-only fails the same way, and no
	// bundle of it is left.
	g = decided(t, reg.host+"/app:v1", evidence.Pass, logged)
	g.opts.AttestOnly = true
	if err := g.buildResult(t.Context()); !errors.As(err, &le) {
		t.Errorf("build result: got %v, want a LogError", err)
	}
	if _, err := os.Stat(filepath.Join(g.opts.Out, attest.BuildResultBundleFile)); err == nil {
		t.Errorf("%s was written", attest.BuildResultBundleFile)
	}
	if r := signingRecord(signer); r.Logged || r.Tlog != evidence.TlogNone || r.Logs != nil {
		t.Errorf("without a signing config: %+v", r)
	}
}

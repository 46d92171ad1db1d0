package trust_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// hostGuard lets requests reach one host and fails every other, recording
// what was refused.
type hostGuard struct {
	allow string
	base  http.RoundTripper
	mu    sync.Mutex
	hosts []string
}

func (g *hostGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != g.allow {
		g.mu.Lock()
		g.hosts = append(g.hosts, req.URL.Host)
		g.mu.Unlock()
		return nil, fmt.Errorf("offline test: request to %s refused", req.URL.Host)
	}
	return g.base.RoundTrip(req)
}

func (g *hostGuard) refused() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.hosts...)
}

// TestOffline proves verification is offline: the verifier's transport
// reaches only the image's registry, and the process-wide default
// transport, which anything bypassing it would use, fails every request.
// Keyless, keyed, Rekor v1 and v2 entries, timestamps and a production
// bundle are all verified under the guard.
func TestOffline(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, false)
	ref, desc := reg.image(t, "offline/builder")
	d := imageDigest(t, ref)
	sign := trusttest.Statement(t, trust.CosignSignPredicate, d)
	v2, err := f.VS.AttestHashedRekordV2(trusttest.Subject, trusttest.Issuer, sign)
	if err != nil {
		t.Fatal(err)
	}
	reg.attachBundle(t, "offline/builder", desc, trusttest.JSON(t, f.Keyless(t, sign)))
	reg.attachBundle(t, "offline/builder", desc, trusttest.JSON(t, f.Keyed(t, sign)))
	reg.attachBundle(t, "offline/builder", desc, trusttest.JSON(t, trusttest.EntityBundle(t, f.VS, v2)))
	pb := productionBundles[0]
	prod := productionVerifier(t, pb)
	prodBundle := production(t, pb.bundle)

	guard := &hostGuard{allow: reg.host, base: &http.Transport{}}
	global := &hostGuard{allow: "", base: nil}
	saved, savedClient := http.DefaultTransport, http.DefaultClient.Transport
	http.DefaultTransport, http.DefaultClient.Transport = global, global
	defer func() { http.DefaultTransport, http.DefaultClient.Transport = saved, savedClient }()

	v := trusttest.Verifier(t, f.Policy(), trust.WithTransport(guard), trust.WithKeychain(anonymous))
	before := reg.requests.Load()
	res, err := v.VerifyImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || len(res.Candidates) != 3 {
		t.Fatalf("verified %v with %d candidates, want 3 verified (%q)", res.Verified, len(res.Candidates), res.Reasons())
	}
	for _, c := range res.Candidates {
		if !c.Verified {
			t.Errorf("%s refused: %v", c.Source, c.Refusal)
		}
	}
	c, err := prod.VerifyBundle(prodBundle, pb.digest)
	if err != nil || !c.Verified {
		t.Fatalf("production bundle: %v, %v", err, c.Refusal)
	}
	if reg.requests.Load() == before {
		t.Error("no request reached the registry: the guard proves nothing")
	}
	if h := append(guard.refused(), global.refused()...); len(h) > 0 {
		t.Errorf("requests left for other hosts: %q", h)
	}
}

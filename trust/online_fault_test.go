package trust_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// Faults a tileProxy injects.
const (
	faultNone      = iota
	faultDown      // every request answered 500
	faultTilesDown // the checkpoint is served, every tile answered 500
	faultHang      // every request waits until the client gives up
	faultSwapLeaf  // level-0 hash tiles serve entry 6's leaf hash at index 5 (the fixture's entry), and 5's at 6
)

// tileProxy stands between the verifier and a tiled log, on loopback (so
// its origin is still 127.0.0.1), injecting one fault.
type tileProxy struct {
	URL   string
	fault atomic.Int32
}

func newTileProxy(t *testing.T, target string) *tileProxy {
	t.Helper()
	p := &tileProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault := p.fault.Load()
		switch {
		case fault == faultDown, fault == faultTilesDown && strings.HasPrefix(r.URL.Path, "/tile/"):
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		case fault == faultHang:
			<-r.Context().Done()
			return
		}
		resp, err := http.Get(strings.TrimSuffix(target, "/") + r.URL.Path) //nolint:gosec // the test's own log on loopback
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if fault == faultSwapLeaf && strings.HasPrefix(r.URL.Path, "/tile/0/") && len(body) >= 7*32 {
			a, b := body[5*32:6*32], body[6*32:7*32]
			tmp := append([]byte(nil), a...)
			copy(a, b)
			copy(b, tmp)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL + "/"
	return p
}

// verifyAt verifies the fixture's image online at url with ctx.
func (f *onlineFixture) verifyAt(ctx context.Context, t *testing.T, url string) (*trust.ImageResult, error) {
	t.Helper()
	p := f.policy()
	p.RekorURL = url
	v := trusttest.Verifier(t, p, trust.WithKeychain(anonymous), trust.WithCheckpoints(f.store))
	return v.VerifyImage(ctx, f.ref)
}

// TestFaultRekorDown proves that a tile server that is down, that serves its
// checkpoint but not its tiles, or that hangs, makes online verification an
// error with exit code 3 (never a pass, never a plain refusal), and that
// the stored checkpoint is not advanced to the tree the log now claims.
func TestFaultRekorDown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault int32
		want  string
	}{
		{"down", faultDown, "500"},
		{"tiles down", faultTilesDown, "500"},
		{"hangs", faultHang, "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOnlineFixture(t)
			proxy := newTileProxy(t, f.log.URL)
			if res, err := f.verifyAt(t.Context(), t, proxy.URL); err != nil || !res.Verified {
				t.Fatalf("before the fault: %v %q", err, reasons(res))
			}
			before := f.stored(t)
			f.log.AppendOthers(t, 3) // the log grows: a consistency proof is due
			proxy.fault.Store(tc.fault)
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			begin := time.Now()
			res, err := f.verifyAt(ctx, t, proxy.URL)
			if err == nil {
				t.Fatalf("no error; verified %v, reasons %q", res.Verified, reasons(res))
			}
			t.Log(err)
			var oe *trust.OnlineError
			if exitcode.Of(err) != 3 || (!errors.As(err, &oe) && !errors.Is(err, context.DeadlineExceeded)) {
				t.Errorf("err = %v (exit %d), want an online error with exit code 3", err, exitcode.Of(err))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error lacks %q: %v", tc.want, err)
			}
			if res != nil && res.Verified {
				t.Error("a failed look-up verified the image")
			}
			if d := time.Since(begin); d > 10*time.Second {
				t.Errorf("the look-up took %s", d)
			}
			if after := f.stored(t); after != before {
				t.Errorf("the stored checkpoint changed though the look-up failed:\n%s", after)
			}
			// The log comes back: the look-up completes and the checkpoint
			// advances through a verified consistency proof.
			proxy.fault.Store(faultNone)
			if res, err := f.verifyAt(t.Context(), t, proxy.URL); err != nil || !res.Verified {
				t.Fatalf("after recovery: %v %q", err, reasons(res))
			}
			if after := f.stored(t); after == before {
				t.Error("the stored checkpoint did not advance after recovery")
			}
		})
	}
}

// TestFaultRekorProofForAnotherEntry proves that a tile server presenting
// another entry's leaf where the image's entry is (so every proof it serves
// is for another entry) gets the image refused as a tlog problem, not
// verified and not an error, and that the stored checkpoint is not
// advanced, whether the log grew since the last look-up or not, and on
// first use.
func TestFaultRekorProofForAnotherEntry(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fresh, grow bool
	}{
		{name: "same tree"},
		{name: "grown tree", grow: true},
		{name: "first use", fresh: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOnlineFixture(t)
			proxy := newTileProxy(t, f.log.URL)
			before := ""
			if !tc.fresh {
				if res, err := f.verifyAt(t.Context(), t, proxy.URL); err != nil || !res.Verified {
					t.Fatalf("before the fault: %v %q", err, reasons(res))
				}
				before = f.stored(t)
			}
			if tc.grow {
				f.log.AppendOthers(t, 3)
			}
			proxy.fault.Store(faultSwapLeaf)
			res, err := f.verifyAt(t.Context(), t, proxy.URL)
			if err != nil {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if res.Verified || len(res.Problems) == 0 {
				t.Fatalf("verified %v, problems %+v: want a refusal", res.Verified, res.Problems)
			}
			got := res.Problems[0].Reason
			if got != trust.ReasonTlogSplitView && got != trust.ReasonTlogInclusion {
				t.Errorf("reason %s, want %s or %s", got, trust.ReasonTlogSplitView, trust.ReasonTlogInclusion)
			}
			t.Logf("%s: %s", got, res.Problems[0].Detail)
			if !tc.fresh {
				if after := f.stored(t); after != before {
					t.Errorf("the stored checkpoint changed on a bad proof:\n%s", after)
				}
			}
		})
	}
}

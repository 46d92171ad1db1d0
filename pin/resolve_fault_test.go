package pin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fastRetry makes go-containerregistry retry idempotent requests within
// milliseconds: three attempts in all.
var fastRetry = remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 3})

// faultyRegistry is go-containerregistry's registry on loopback with faults
// injected into manifest GETs.
type faultyRegistry struct {
	host string
	// fail500 answers that many manifest GETs with 500; -1 answers all.
	fail500 atomic.Int64
	hang    atomic.Bool
	hits    atomic.Int64
}

func newFaultyRegistry(t *testing.T) *faultyRegistry {
	t.Helper()
	f := &faultyRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/manifests/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			h.ServeHTTP(w, r)
			return
		}
		f.hits.Add(1)
		if n := f.fail500.Load(); n != 0 {
			if n > 0 {
				f.fail500.Add(-1)
			}
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		if f.hang.Load() {
			<-r.Context().Done()
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

func (f *faultyRegistry) testRegistry() *testRegistry { return &testRegistry{host: f.host} }

func resolveOneRef(t *testing.T, ctx context.Context, ref string, opts ...remote.Option) (*Resolved, error) {
	t.Helper()
	r, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&Resolver{Jobs: 1, Options: opts}).Resolve(ctx, []Ref{r}, false)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

func exitCode(err error) int {
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return 3
}

// TestFaultResolve500 proves that resolution retries a registry's 500s with
// backoff (a GET of a manifest is idempotent) and succeeds once it
// recovers, and that one that keeps failing is a ResolveError with exit
// code 3 naming the registry, promptly.
func TestFaultResolve500(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := newFaultyRegistry(t)
	want := reg.testRegistry().image(t, "app:v1", 1)
	ctx := context.Background()

	reg.fail500.Store(2)
	res, err := resolveOneRef(t, ctx, reg.host+"/app:v1", fastRetry)
	if err != nil {
		t.Fatalf("after two 500s: %v", err)
	}
	if res.Digest() != want {
		t.Errorf("digest %s, want %s", res.Digest(), want)
	}
	if n := reg.hits.Load(); n < 3 {
		t.Errorf("%d manifest requests, want at least 3", n)
	}

	reg.fail500.Store(-1)
	begin := time.Now()
	_, err = resolveOneRef(t, ctx, reg.host+"/app:v1", fastRetry)
	var re *ResolveError
	if !errors.As(err, &re) || re.ExitCode() != 3 {
		t.Fatalf("err = %v, want a ResolveError with exit code 3", err)
	}
	if !strings.Contains(err.Error(), "is "+reg.host+" reachable?") || !strings.Contains(err.Error(), "500") {
		t.Errorf("error does not name the registry and the status: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("giving up took %s", d)
	}
	t.Log(err)
}

// TestFaultResolveHang proves that a registry that never answers is ended by
// the context: exit code 3, promptly, and no goroutine left behind.
func TestFaultResolveHang(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := newFaultyRegistry(t)
	reg.testRegistry().image(t, "app:v1", 1)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	reg.hang.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := resolveOneRef(t, ctx, reg.host+"/app:v1", fastRetry, remote.WithTransport(tr))
	if !errors.Is(err, context.DeadlineExceeded) || exitCode(err) != 3 {
		t.Fatalf("err = %v (exit %d), want the deadline with exit code 3", err, exitCode(err))
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("a hung registry held resolution for %s", d)
	}
	if !strings.Contains(err.Error(), reg.host) {
		t.Errorf("error does not name the registry: %v", err)
	}
	tr.CloseIdleConnections()
	// No goroutine of the client side may be left: counting all goroutines
	// would also count the test server's handler, still hanging on purpose.
	deadline := time.Now().Add(3 * time.Second)
	for clientGoroutines() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := clientGoroutines(); n > 0 {
		t.Errorf("%d goroutines of the resolver or go-containerregistry are left after the timeout", n)
	}
}

// clientGoroutines counts the goroutines running the resolver or
// go-containerregistry's remote package.
func clientGoroutines() int {
	buf := make([]byte, 4<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "go-containerregistry/pkg/v1/remote.") || strings.Contains(g, "buildguard/pin.(*Resolver)") {
			n++
		}
	}
	return n
}

// rawManifestServer serves body (with media type mt) as every manifest, and
// an empty 200 for the API version check.
func rawManifestServer(t *testing.T, mt types.MediaType, body func(w io.Writer)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", string(mt))
		if r.Method == http.MethodHead {
			return
		}
		body(w)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// indexWith returns an OCI index listing n manifests, each for its own
// platform.
func indexWith(t *testing.T, n int) []byte {
	t.Helper()
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for i := range n {
		h, _, err := v1.SHA256(strings.NewReader(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		im.Manifests = append(im.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 100, Digest: h,
			Platform: &v1.Platform{OS: "linux", Architecture: fmt.Sprintf("arch%d", i)}})
	}
	b, err := json.Marshal(im)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLimitIndexPlatforms proves an index of exactly maxPlatforms manifests
// resolves and one more is refused with an error naming the limit.
func TestLimitIndexPlatforms(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for _, n := range []int{maxPlatforms, maxPlatforms + 1} {
		body := indexWith(t, n)
		host := rawManifestServer(t, types.OCIImageIndex, func(w io.Writer) { _, _ = w.Write(body) })
		res, err := resolveOneRef(t, context.Background(), host+"/app:v1", fastRetry)
		if n == maxPlatforms {
			if err != nil || len(res.Platforms) != maxPlatforms {
				t.Fatalf("%d manifests: %v", n, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("refusing what %s served: index", host)) || !strings.Contains(err.Error(), fmt.Sprintf("lists %d manifests, more than the limit of %d", n, maxPlatforms)) {
			t.Fatalf("%d manifests: err = %v, want the limit named", n, err)
		}
		t.Log(err)
	}
}

// TestLimitManifestSize proves a manifest just over go-containerregistry's
// bound (100 MiB), which the resolver relies on, is refused with an error
// naming the bound, without reading more than the bound.
func TestLimitManifestSize(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MiB")
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	const bound = 100 << 20
	var sent atomic.Int64
	host := rawManifestServer(t, types.OCIManifestSchema1, func(w io.Writer) {
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = ' '
		}
		for sent.Load() <= bound+(4<<20) {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	_, err := resolveOneRef(t, context.Background(), host+"/app:v1", remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("refusing what %s served", host)) || !strings.Contains(err.Error(), fmt.Sprintf("body exceeds %d byte limit", bound)) || exitCode(err) != 3 {
		t.Fatalf("err = %v, want the %d byte bound named", err, bound)
	}
	t.Logf("exit %d: %.300s", exitCode(err), err)
}

// TestLimitLockfileSize proves a lockfile one byte over maxLockSize is
// refused naming the limit, with a usage error (exit 2).
func TestLimitLockfileSize(t *testing.T) {
	path := t.TempDir() + "/buildguard.lock"
	head := `{"apiVersion": "buildguard/v1", "images": []}`
	body := head + strings.Repeat(" ", maxLockSize+1-len(head))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadLock(path)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("err = %v, want a usage error", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(maxLockSize)) && !strings.Contains(err.Error(), "16 MiB") {
		t.Errorf("error does not name the limit of %d bytes: %v", maxLockSize, err)
	}
	t.Log(err)
	// At the limit, it is read.
	if err := os.WriteFile(path, []byte(body[:maxLockSize]), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLock(path); err != nil {
		t.Errorf("a lockfile of exactly %d bytes: %v", maxLockSize, err)
	}
}

// TestFaultResolveDigestMismatch proves that a registry serving another
// manifest for a pinned digest is refused, naming the digest, with exit
// code 3, and that the message does not blame reachability.
func TestFaultResolveDigestMismatch(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	body := indexWith(t, 2)
	host := rawManifestServer(t, types.OCIImageIndex, func(w io.Writer) { _, _ = w.Write(body) })
	pinned := "sha256:" + strings.Repeat("b", 64)
	r, err := ParseRef(host + "/app:v1@" + pinned)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Resolver{Jobs: 1, Options: []remote.Option{fastRetry}}).Resolve(context.Background(), []Ref{r}, true)
	if err == nil || exitCode(err) != 3 || !strings.Contains(err.Error(), pinned) || !strings.Contains(err.Error(), "refusing what "+host+" served") {
		t.Fatalf("err = %v (exit %d), want a refusal naming %s with exit code 3", err, exitCode(err), pinned)
	}
	if strings.Contains(err.Error(), "reachable") {
		t.Errorf("a registry that answered is called unreachable: %v", err)
	}
	t.Log(err)
}

// TestLimitResolveConfigSize proves that resolving a single-manifest image
// whose config is declared larger than MaxConfigSize is refused, naming
// the limit, without fetching the config.
func TestLimitResolveConfigSize(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := newFaultyRegistry(t)
	img, err := random.Image(64, 1, random.WithSource(rngSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: mustRootFS(t, img),
		Config: v1.Config{Env: []string{"PAD=" + strings.Repeat("x", MaxConfigSize)}}})
	if err != nil {
		t.Fatal(err)
	}
	reg.testRegistry().write(t, "big:v1", img)
	_, err = resolveOneRef(t, context.Background(), reg.host+"/big:v1", fastRetry)
	if err == nil || exitCode(err) != 3 || !strings.Contains(err.Error(), fmt.Sprintf("more than the limit of %d", MaxConfigSize)) ||
		!strings.Contains(err.Error(), "refusing what "+reg.host+" served") {
		t.Fatalf("err = %v (exit %d), want the config limit named", err, exitCode(err))
	}
	t.Log(err)
}

package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/pin"
)

// fastRetry makes go-containerregistry retry idempotent requests within
// milliseconds: three attempts in all.
var fastRetry = remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 3})

// faultRegistry is go-containerregistry's registry on loopback behind a
// handler that injects one fault into the requests match selects.
type faultRegistry struct {
	host string
	// fail500 answers that many matching requests with 500 before letting
	// them through; -1 answers every one with 500.
	fail500 atomic.Int64
	// hang makes matching requests wait until the client gives up.
	hang atomic.Bool
	// truncate serves only the first half of a matching response, with the
	// full Content-Length, and then drops the connection.
	truncate atomic.Bool
	// short serves only the first half of a matching response, with a
	// Content-Length that matches what is sent: a complete, short answer.
	short atomic.Bool
	// match selects the requests the fault applies to.
	match func(r *http.Request) bool
	// hits counts the matching requests.
	hits atomic.Int64
}

func newFaultRegistry(t *testing.T, match func(r *http.Request) bool) *faultRegistry {
	t.Helper()
	f := &faultRegistry{match: match}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !f.match(r) {
			h.ServeHTTP(w, r)
			return
		}
		f.hits.Add(1)
		switch n := f.fail500.Load(); {
		case n < 0:
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		case n > 0:
			f.fail500.Add(-1)
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		if f.hang.Load() {
			<-r.Context().Done() // until the client goes away
			return
		}
		if !f.truncate.Load() && !f.short.Load() {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if f.short.Load() {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)/2))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:len(body)/2])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

// blobPath selects GETs of the blob with digest d.
func blobPath(d v1.Hash) func(r *http.Request) bool {
	return func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) }
}

// manifestPath selects GETs of any manifest.
func manifestPath(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }

// faultImage is a two-layer image whose top layer is the one faults hit.
func faultImage(t *testing.T) (v1.Image, v1.Hash) {
	t.Helper()
	top := layer(t, file("payload", strings.Repeat("genuine content\n", 4096), 0o755))
	ld, err := top.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return image(t, layer(t, file("base", "ok", 0o644)), top), ld
}

// TestFaultRegistry500 proves that a registry answering 500 is retried with
// backoff for the manifest and for a layer blob (idempotent GETs) and the
// image then unpacks; and that one that keeps answering 500 ends in an error
// with exit code 3 that names the registry, with no root in the cache.
func TestFaultRegistry500(t *testing.T) {
	ctx := context.Background()
	img, ld := faultImage(t)
	for _, tc := range []struct {
		name  string
		match func(r *http.Request) bool
	}{
		{"manifest", manifestPath},
		{"blob", blobPath(ld)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFaultRegistry(t, tc.match)
			d := push(t, reg.host+"/b:v1", img)
			ref := reg.host + "/b@" + d.String()

			reg.fail500.Store(2) // two failures, then the third attempt succeeds
			c := &Cache{Dir: t.TempDir(), SkipSync: true}
			got, err := Fetch(ctx, ref, fastRetry)
			if err == nil {
				_, err = c.Unpack(ctx, got)
			}
			if err != nil {
				t.Fatalf("after two 500s: %v", err)
			}
			if n := reg.hits.Load(); n < 3 {
				t.Errorf("%d matching requests, want at least 3 (two failures and a retry)", n)
			}

			reg.fail500.Store(-1)
			c = &Cache{Dir: t.TempDir(), SkipSync: true}
			begin := time.Now()
			got, err = Fetch(ctx, ref, fastRetry)
			if err == nil {
				_, err = c.Unpack(ctx, got)
			}
			if err == nil {
				t.Fatal("a registry that keeps failing: no error")
			}
			t.Log(err)
			if code := exitCodeOf(err); code != exitIncomplete {
				t.Errorf("exit code %d, want 3", code)
			}
			if !strings.Contains(err.Error(), reg.host) || !strings.Contains(err.Error(), "500") {
				t.Errorf("error does not name the registry %s and the status: %v", reg.host, err)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("giving up took %s", d)
			}
			assertNoRoot(t, c, img)
		})
	}
}

// exitCodeOf is exitcode.Of for what this package returns (the package
// cannot import internal/exitcode's tests' helpers without a cycle).
func exitCodeOf(err error) int {
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return exitIncomplete
}

// TestFaultRegistryHang proves that a registry that never answers is ended
// by the context, for the manifest and for a layer, promptly, with exit
// code 3 and no root in the cache, and that no goroutine is left behind.
func TestFaultRegistryHang(t *testing.T) {
	img, ld := faultImage(t)
	for _, tc := range []struct {
		name  string
		match func(r *http.Request) bool
	}{
		{"manifest", manifestPath},
		{"blob", blobPath(ld)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFaultRegistry(t, tc.match)
			d := push(t, reg.host+"/b:v1", img)
			tr := http.DefaultTransport.(*http.Transport).Clone()
			before := runtime.NumGoroutine()
			reg.hang.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			c := &Cache{Dir: t.TempDir(), SkipSync: true}
			begin := time.Now()
			got, err := Fetch(ctx, reg.host+"/b@"+d.String(), fastRetry, remote.WithTransport(tr))
			if err == nil {
				_, err = c.Unpack(ctx, got)
			}
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the context's deadline", err)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("a hung registry held the fetch for %s", d)
			}
			assertNoRoot(t, c, img)
			tr.CloseIdleConnections()
			deadline := time.Now().Add(3 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Errorf("%d goroutines after the timeout, %d before", n, before)
			}
		})
	}
}

// TestFaultTruncatedAndMismatchedBlob proves that a layer cut off
// mid-stream, or served with other bytes, fails the unpack with an error
// naming the layer, leaves no root for the image's digest, and that a later
// good fetch unpacks cleanly into the same cache.
func TestFaultTruncatedAndMismatchedBlob(t *testing.T) {
	ctx := context.Background()
	img, ld := faultImage(t)
	for _, tc := range []string{"truncated", "short", "mismatched"} {
		t.Run(tc, func(t *testing.T) {
			var reg *faultRegistry
			var host string
			if tc != "mismatched" {
				reg = newFaultRegistry(t, blobPath(ld))
				host = reg.host
				reg.truncate.Store(tc == "truncated")
				reg.short.Store(tc == "short")
			} else {
				host = newRegistry(t, &ld) // flips a byte of the blob
			}
			d := push(t, host+"/b:v1", img)
			ref := host + "/b@" + d.String()
			c := &Cache{Dir: t.TempDir(), SkipSync: true}
			got, err := Fetch(ctx, ref, fastRetry)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Unpack(ctx, got)
			var le *LayerError
			if !errors.As(err, &le) || le.Index != 1 || le.Layer != ld {
				t.Fatalf("err = %v, want a LayerError for layer 1 %s", err, ld)
			}
			t.Logf("exit %d: %v", le.ExitCode(), err)
			if tc == "mismatched" && (!errors.Is(err, ErrDigestMismatch) || le.ExitCode() != exitFail) {
				t.Errorf("err = %v, want a digest mismatch with exit code 1", err)
			}
			// A cut-off stream is a transfer that failed, not proof of a
			// swapped layer: exit 3, saying how far it got. A short answer
			// is caught by its Content-Length before any byte is read.
			want := map[string]string{"truncated": "layer stream cut off after", "short": "does not match expected size"}[tc]
			if tc != "mismatched" && (le.ExitCode() != exitIncomplete || !strings.Contains(err.Error(), want)) {
				t.Errorf("err = %v (exit %d), want %q with exit code 3", err, le.ExitCode(), want)
			}
			assertNoRoot(t, c, img)

			// The registry mends: the same cache unpacks the image cleanly.
			if reg != nil {
				reg.truncate.Store(false)
				reg.short.Store(false)
			} else {
				host = newRegistry(t, nil)
				push(t, host+"/b:v1", img)
				ref = host + "/b@" + d.String()
			}
			got, err = Fetch(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			root, err := c.Unpack(ctx, got)
			if err != nil {
				t.Fatalf("a good fetch after the fault: %v", err)
			}
			if readFile(t, root, "payload") != strings.Repeat("genuine content\n", 4096) || readFile(t, root, "base") != "ok" {
				t.Error("the root after the fault has the wrong content")
			}
		})
	}
}

// TestFaultDiskFull proves that a cache on a file system that fills up
// during unpack fails with a "no space" error (exit 3) that names the cache
// and how to move it, leaves no half root that a later unpack trusts, and
// that a smaller image then unpacks into the same cache.
func TestFaultDiskFull(t *testing.T) {
	dir := harness.SmallDisk(t, "8m")
	ctx := context.Background()
	// 12 MiB of zeros in the second layer: small to fetch, too big to write.
	big := image(t, layer(t, file("small", "fits", 0o644)), layer(t, file("big", string(make([]byte, 12<<20)), 0o644)))
	c := &Cache{Dir: filepath.Join(dir, "rootfs")}
	_, err := c.Unpack(ctx, big)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	t.Log(err)
	var le *LayerError
	if !errors.As(err, &le) || le.Index != 1 || le.ExitCode() != exitIncomplete {
		t.Errorf("err = %#v, want a LayerError for layer 1 with exit code 3", err)
	}
	var ns *NoSpaceError
	if !errors.As(err, &ns) || exitCodeOf(err) != exitIncomplete {
		t.Errorf("err = %v (exit %d), want a NoSpaceError with exit code 3", err, exitCodeOf(err))
	}
	for _, want := range []string{"unpacking image sha256:", "the rootfs cache (" + c.Dir + ") ran out of space", "XDG_CACHE_HOME (or pass --cache DIR)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	assertNoRoot(t, c, big)
	entries, _ := os.ReadDir(c.Dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left behind in the cache: %s", e.Name())
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Bfree*uint64(st.Bsize) < 6<<20 {
		t.Errorf("the failed unpack left %d bytes free of 8 MiB: not cleaned up", st.Bfree*uint64(st.Bsize))
	}

	// A second attempt fails the same way (no stale root is trusted), and a
	// small image unpacks into the same cache.
	if _, err := c.Unpack(ctx, big); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("second attempt: err = %v, want ENOSPC again", err)
	}
	small := image(t, layer(t, file("small", "fits", 0o644)))
	root, err := c.Unpack(ctx, small)
	if err != nil {
		t.Fatalf("a small image after the full disk: %v", err)
	}
	if readFile(t, root, "small") != "fits" {
		t.Error("small image content")
	}
}

// TestFaultBuildKilled proves that a build whose process is killed with
// SIGKILL from outside is reported as a failed run (exit 1, status 137),
// promptly, with the container, its state and its cgroup removed.
func TestFaultBuildKilled(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`echo started; sleep 985`)...)
		s.Timeout = 30 * time.Second
		// Under gVisor the build's processes live in gVisor's kernel, not
		// the host's: what can be killed from outside is the sandbox.
		find, status := func() string { return findProcess(t, "985") }, 128+int(syscall.SIGKILL)
		if rt == RuntimeRunsc {
			find, status = func() string {
				if b, _ := os.ReadFile(s.Log); !bytes.Contains(b, []byte("started")) {
					return ""
				}
				return findSandbox(t)
			}, -1
		}
		killed := make(chan string, 1)
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if p := find(); p != "" {
					pid, _ := strconv.Atoi(p)
					if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
						killed <- p
						return
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			killed <- ""
		}()
		begin := time.Now()
		res, err := mustFail(t, s, ErrBuildFailed)
		if p := <-killed; p == "" {
			t.Fatal("the build's process was never found to kill")
		}
		var be *BuildError
		if !errors.As(err, &be) || be.ExitCode() != exitFail || status > 0 && be.Status != status {
			t.Errorf("err = %v, want a BuildError with status %d and exit code 1", err, status)
		}
		if res.TimedOut || status > 0 && res.ExitCode != status || res.ExitCode == 0 {
			t.Errorf("result %+v: want exit status %d, not a timeout", res, status)
		}
		if d := time.Since(begin); d > 15*time.Second {
			t.Errorf("Run took %s after the kill", d)
		}
		if !strings.Contains(logText(t, res), "started") {
			t.Errorf("log lost the output before the kill: %q", logText(t, res))
		}
		t.Log(err)
	})
}

// TestLimitFetchManifestSize proves that Fetch refuses a manifest just over
// go-containerregistry's bound (100 MiB), which it relies on, with an error
// naming the bound and exit code 3, without reading past it.
func TestLimitFetchManifestSize(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MiB")
	}
	const bound = 100 << 20
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if r.Method == http.MethodHead {
			return
		}
		chunk := []byte(strings.Repeat(" ", 1<<20))
		for sent.Load() <= bound+(4<<20) {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	_, err := Fetch(context.Background(), host+"/b@sha256:"+strings.Repeat("a", 64), remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	if err == nil || !strings.Contains(err.Error(), "body exceeds 104857600 byte limit") || exitCodeOf(err) != exitIncomplete {
		t.Fatalf("err = %v, want the 100 MiB bound named, exit code 3", err)
	}
	t.Logf("exit %d: %v", exitCodeOf(err), err)
}

// bigConfigImage returns an image whose config is padded to size bytes (a
// valid config: the padding is an environment variable).
func bigConfigImage(t *testing.T, size int) v1.Image {
	t.Helper()
	img := image(t, layer(t, file("base", "ok", 0o644)))
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Env = []string{"PATH=/bin", "PAD=" + strings.Repeat("x", max(size-len(raw)-len(`{"Env":["PATH=/bin","PAD="]}`)-16, 0))}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLimitFetchConfigSize proves that Fetch refuses an image whose config
// blob is declared larger than pin.MaxConfigSize before reading it (a
// hostile image cannot make the guard read gigabytes into memory), with an
// error naming the limit and exit code 1, and accepts one just under it.
func TestLimitFetchConfigSize(t *testing.T) {
	ctx := context.Background()
	reg := newFaultRegistry(t, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/blobs/") })
	host := reg.host
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{pin.MaxConfigSize - 1024, true},
		{pin.MaxConfigSize + 1024, false},
	} {
		img := bigConfigImage(t, tc.size)
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		d := push(t, host+"/big:v1", img)
		before := reg.hits.Load()
		got, err := Fetch(ctx, host+"/big@"+d.String())
		if tc.ok {
			if err != nil {
				t.Fatalf("config of %d bytes: %v", m.Config.Size, err)
			}
			if p, err := ImagePath(got); err != nil || p != "/bin" {
				t.Errorf("PATH %q, %v", p, err)
			}
			continue
		}
		if !errors.Is(err, ErrLimit) || exitCodeOf(err) != exitFail || !strings.Contains(err.Error(), fmt.Sprintf("more than the limit of %d", pin.MaxConfigSize)) {
			t.Fatalf("config of %d bytes: err = %v, want ErrLimit naming the limit, exit code 1", m.Config.Size, err)
		}
		if n := reg.hits.Load() - before; n != 0 {
			t.Errorf("%d blob requests: the oversized config was fetched", n)
		}
		t.Log(err)
	}
}

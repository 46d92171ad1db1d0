package guard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/guard"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

var fastRetry = remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 3})

// Faults faultRegistry injects into GETs of blobs.
const (
	blobsOK = iota
	blobs500
	blobsHang
)

// faultRegistry is go-containerregistry's registry on loopback, with a fault
// injected into blob GETs.
type faultRegistry struct {
	host  string
	fault atomic.Int32
}

func newFaultRegistry(t *testing.T) *faultRegistry {
	t.Helper()
	f := &faultRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			switch f.fault.Load() {
			case blobs500:
				http.Error(w, "injected failure", http.StatusInternalServerError)
				return
			case blobsHang:
				<-r.Context().Done()
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

// pushBusybox pushes a busybox builder image (Debian's busybox-static,
// PATH=/bin) to host and returns its pinned reference.
func pushBusybox(t *testing.T, host string) string {
	t.Helper()
	ref := host + "/team/busybox:1"
	d, err := testimage.PushBusybox(t.Context(), ref, harness.Require(t, "busybox"), []string{"sh", "cat", "echo", "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	return ref + "@" + d
}

// project writes a source directory and buildguard.yaml for a build in
// image running command, and loads it.
func project(t *testing.T, image, command, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ := json.Marshal(command)
	yaml := "apiVersion: buildguard/v1\nsource: src\nsourceDateEpoch: \"1700000000\"\nbuilder:\n  image: " + image +
		"\n  command: [\"sh\", \"-c\", " + string(cmd) + "]\n  timeout: 1m\npolicy:\n  waive: [verified, sbom]\n" + extra
	f := filepath.Join(dir, "buildguard.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func requireRoot(t *testing.T) {
	t.Helper()
	harness.RequireRoot(t, "a guarded build needs root for crun and runc")
	harness.Require(t, builder.RuntimeCrun)
}

func readReport(t *testing.T, dir string) (*evidence.Report, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, guard.ReportFileName))
	if err != nil {
		t.Fatal(err)
	}
	r, err := evidence.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return r, data
}

// assertCacheClean fails when the rootfs cache holds anything but complete
// roots, their markers and lock files.
func assertCacheClean(t *testing.T, dir string, roots int) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		switch {
		case strings.HasSuffix(e.Name(), ".lock"):
		case strings.HasSuffix(e.Name(), ".complete"):
			if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(e.Name(), ".complete"))); err != nil {
				t.Errorf("marker %s without its root", e.Name())
			}
		case e.IsDir() && strings.HasPrefix(e.Name(), "sha256-"):
			if _, err := os.Stat(filepath.Join(dir, e.Name()+".complete")); err != nil {
				t.Errorf("root %s without its marker", e.Name())
			}
			n++
		default:
			t.Errorf("the cache holds %s", e.Name())
		}
	}
	if n != roots {
		t.Errorf("%d complete roots in the cache, want %d", n, roots)
	}
}

// TestFaultConcurrentBuildsShareCache proves that two guarded builds
// running at once with one rootfs cache (and separate evidence
// directories) both pass with the same decisions and output digests, and
// leave one complete root in the cache.
func TestFaultConcurrentBuildsShareCache(t *testing.T) {
	requireRoot(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := newFaultRegistry(t)
	ref := pushBusybox(t, reg.host)
	cache := t.TempDir()
	outs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	errs := make([]error, len(outs))
	var wg sync.WaitGroup
	for i, out := range outs {
		cfg := project(t, ref, "cat hello.txt > /out/copy; echo built", "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = guard.Build(t.Context(), guard.Options{Config: cfg, Out: out, CacheDir: cache, Runtime: builder.RuntimeCrun, Jobs: 1, Remote: []remote.Option{fastRetry}})
		}()
	}
	wg.Wait()
	var reports []*evidence.Report
	var raw [][]byte
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("build %d: %v", i, errs[i])
		}
		r, data := readReport(t, out)
		raw = append(raw, data)
		if r.Decision != evidence.Pass || len(r.Runs) != 2 || r.Runs[0].OutputDigest == "" {
			t.Fatalf("build %d: decision %s, runs %+v, errors %q, violations %+v", i, r.Decision, r.Runs, r.Errors, r.Violations)
		}
		for _, run := range r.Runs {
			if run.Sandbox == nil || run.Sandbox.Seccomp != builder.SeccompProfile || !run.Sandbox.UserNamespace {
				t.Errorf("build %d run %d: sandbox %+v in the report, want seccomp %q and a user namespace", i, run.Index, run.Sandbox, builder.SeccompProfile)
			}
		}
		reports = append(reports, r)
	}
	a, b := reports[0], reports[1]
	if a.Decision != b.Decision || len(a.Violations) != len(b.Violations) {
		t.Errorf("decisions differ: %s %+v / %s %+v", a.Decision, a.Violations, b.Decision, b.Violations)
	}
	for i := range a.Runs {
		if a.Runs[i].OutputDigest != b.Runs[i].OutputDigest {
			t.Errorf("run %d: output digests differ: %s / %s", i, a.Runs[i].OutputDigest, b.Runs[i].OutputDigest)
		}
	}
	if !bytes.Equal(raw[0], raw[1]) {
		t.Errorf("the two reports differ:\n%s\n%s", raw[0], raw[1])
	}
	assertCacheClean(t, cache, 1)
}

// TestFaultBuildRegistryFails proves that a guarded build whose builder
// image cannot be fetched (the registry answers 500 to every blob, or hangs)
// ends with exit code 3, a report with decision "error" naming the
// registry, no root in the cache, and nothing published.
func TestFaultBuildRegistryFails(t *testing.T) {
	requireRoot(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for _, tc := range []struct {
		name  string
		fault int32
		want  string
	}{
		{"500", blobs500, "500 Internal Server Error"},
		{"hang", blobsHang, "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFaultRegistry(t)
			ref := pushBusybox(t, reg.host)
			dest := reg.host + "/team/app:v1"
			cfg := project(t, ref, "echo built > /out/x", "publish:\n  image: "+dest+"\n")
			reg.fault.Store(tc.fault)
			cache, out := t.TempDir(), filepath.Join(t.TempDir(), "evidence")
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			begin := time.Now()
			_, err := guard.Build(ctx, guard.Options{Config: cfg, Out: out, CacheDir: cache, Runtime: builder.RuntimeCrun, Remote: []remote.Option{fastRetry}})
			if err == nil || exitcode.Of(err) != exitcode.Incomplete {
				t.Fatalf("err = %v (exit %d), want exit 3", err, exitcode.Of(err))
			}
			t.Logf("exit %d: %v", exitcode.Of(err), err)
			if !strings.Contains(err.Error(), reg.host) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name the registry %s and %q: %v", reg.host, tc.want, err)
			}
			if d := time.Since(begin); d > 10*time.Second {
				t.Errorf("the build took %s to give up", d)
			}
			r, _ := readReport(t, out)
			if r.Decision != evidence.Error || len(r.Errors) == 0 {
				t.Errorf("report decision %s, errors %q; want error", r.Decision, r.Errors)
			}
			assertCacheClean(t, cache, 0)
			reg.fault.Store(blobsOK)
			destRef, err := name.ParseReference(dest)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := remote.Head(destRef); err == nil {
				t.Errorf("%s was published by a build that could not complete", dest)
			}
		})
	}
}

// killSleeps sends SIGKILL to every process "sleep ARG" until stop closes,
// and reports how many it killed.
func killSleeps(arg string, stop <-chan struct{}) <-chan int {
	n := make(chan int, 1)
	go func() {
		killed := 0
		for {
			select {
			case <-stop:
				n <- killed
				return
			case <-time.After(20 * time.Millisecond):
			}
			ds, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, d := range ds {
				b, err := os.ReadFile(d)
				if err != nil {
					continue
				}
				args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
				if len(args) == 2 && strings.HasSuffix(args[0], "sleep") && args[1] == arg {
					if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(d))); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
						killed++
					}
				}
			}
		}
	}()
	return n
}

// TestFaultBuildKilledBySignal proves that a guarded build whose build
// process is killed with SIGKILL from outside is decided as fail (exit 1),
// the report naming the killed run's status, with no container state left
// behind and nothing published.
func TestFaultBuildKilledBySignal(t *testing.T) {
	requireRoot(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := newFaultRegistry(t)
	ref := pushBusybox(t, reg.host)
	dest := reg.host + "/team/app:v1"
	cfg := project(t, ref, "echo started; sleep 983", "publish:\n  image: "+dest+"\n")
	out := filepath.Join(t.TempDir(), "evidence")
	stop := make(chan struct{})
	killed := killSleeps("983", stop)
	begin := time.Now()
	_, err := guard.Build(t.Context(), guard.Options{Config: cfg, Out: out, CacheDir: t.TempDir(), Runtime: builder.RuntimeCrun, Remote: []remote.Option{fastRetry}})
	close(stop)
	if n := <-killed; n == 0 {
		t.Fatal("no build process was found to kill")
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("the build took %s after the kill", d)
	}
	r, _ := readReport(t, out)
	t.Logf("exit %d: %v; decision %s, violations %+v, errors %q", exitcode.Of(err), err, r.Decision, r.Violations, r.Errors)
	if err != nil || r.Decision != evidence.Fail {
		t.Fatalf("err = %v, decision %s: want a fail decision (exit 1)", err, r.Decision)
	}
	text, _ := json.Marshal(r.Violations)
	if !strings.Contains(string(text), "exited 137") || strings.Contains(string(text), "exited -1") {
		t.Errorf("the violations do not give the killed run's status 137 (and only real statuses): %s", text)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("buildguard-run-%d-*", os.Getpid())))
	if len(left) > 0 {
		t.Errorf("container state left behind: %v", left)
	}
	destRef, err := name.ParseReference(dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(destRef); err == nil {
		t.Errorf("%s was published by a failed build", dest)
	}
}

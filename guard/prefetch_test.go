package guard_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/guard"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/harness"
)

// fileServer serves body at /dist/tool.tar.gz, or the injected status,
// and counts the requests.
type fileServer struct {
	url    string
	status atomic.Int32
	hits   atomic.Int32
}

func newFileServer(t *testing.T, body string) *fileServer {
	t.Helper()
	f := &fileServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		if s := f.status.Load(); s != 0 {
			http.Error(w, "injected", int(s))
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/dist/tool.tar.gz"
	return f
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A declared file dependency reaches the build at its dest, read-only,
// with the bytes its sha256 pins; the report and the provenance name it.
// A dependency whose bytes differ is a fail decided before any run (the
// build never starts), and a server that refuses is exit 3: in both cases
// nothing is built.
func TestPrefetchFileDependency(t *testing.T) {
	requireRoot(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := newFaultRegistry(t)
	ref := pushBusybox(t, reg.host)
	body := "the pinned file\n"
	srv := newFileServer(t, body)
	dep := func(sum string) string {
		return "dependencies:\n  - {type: file, url: \"" + srv.url + "\", sha256: " + sum + ", dest: third_party/tool.tar.gz}\n"
	}
	opts := func(t *testing.T, cfgExtra, command string) (guard.Options, string) {
		cfg := project(t, ref, command, cfgExtra)
		out := filepath.Join(t.TempDir(), "ev")
		return guard.Options{Config: cfg, Out: out, CacheDir: t.TempDir(), Runtime: builder.RuntimeCrun, Jobs: 1, Remote: []remote.Option{fastRetry}}, out
	}

	t.Run("pinned", func(t *testing.T) {
		o, out := opts(t, dep(sha256Hex(body)), "cat third_party/tool.tar.gz > /out/seen; echo x > third_party/tool.tar.gz || echo read-only > /out/ro")
		if _, err := guard.Build(t.Context(), o); err != nil {
			t.Fatalf("Build: %v", err)
		}
		r, _ := readReport(t, out)
		if r.Decision != "pass" {
			t.Fatalf("decision %s: %+v", r.Decision, r.Violations)
		}
		if len(r.Dependencies) != 1 || r.Dependencies[0].Digest["sha256"] != sha256Hex(body) || !r.Dependencies[0].Pinned {
			t.Errorf("report dependencies = %+v", r.Dependencies)
		}
		seen, err := os.ReadFile(filepath.Join(out, "runs", "run-1", "out", "seen"))
		if err != nil || string(seen) != body {
			t.Errorf("the build saw %q (%v) at its dest, want %q", seen, err, body)
		}
		if _, err := os.Stat(filepath.Join(out, "runs", "run-1", "out", "ro")); err != nil {
			t.Errorf("the build could write over its dependency: %v", err)
		}
		prov, err := os.ReadFile(filepath.Join(out, "provenance.json"))
		if err != nil || !strings.Contains(string(prov), `"uri": "`+srv.url+`"`) {
			t.Errorf("provenance.json does not name the dependency (%v)", err)
		}
	})

	t.Run("mismatch", func(t *testing.T) {
		other := sha256Hex("another file\n")
		o, out := opts(t, dep(other), "echo built > /out/x")
		_, err := guard.Build(t.Context(), o)
		if err != nil {
			t.Fatalf("Build: %v, want a decision", err)
		}
		r, _ := readReport(t, out)
		if r.Decision != "fail" || len(r.Violations) != 1 || r.Violations[0].Rule != "dependencies-verified" ||
			!strings.Contains(r.Violations[0].Message, other) || !strings.Contains(r.Violations[0].Message, sha256Hex(body)) {
			t.Errorf("decision %s, violations %+v: want one dependencies-verified naming both hashes", r.Decision, r.Violations)
		}
		if len(r.Runs) != 0 {
			t.Errorf("runs %+v: nothing may be built from a dependency that does not match", r.Runs)
		}
	})

	// A dependency cache on a full file system stops the guard before any
	// build (exit 3), naming the cache and how to move it.
	t.Run("full disk", func(t *testing.T) {
		big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
		bigSrv := newFileServer(t, big)
		small := harness.SmallDisk(t, "1m")
		o, out := opts(t, "dependencies:\n  - {type: file, url: \""+bigSrv.url+"\", sha256: "+sha256Hex(big)+", dest: big.bin}\n", "echo built > /out/x")
		o.CacheDir = small
		_, err := guard.Build(t.Context(), o)
		var ns *builder.NoSpaceError
		if code := exitcode.Of(err); code != exitcode.Incomplete || !errors.As(err, &ns) ||
			!strings.Contains(err.Error(), "the dependency cache ("+filepath.Join(small, "deps")+") ran out of space") {
			t.Fatalf("Build: exit %d, %v: want 3, the dependency cache full", code, err)
		}
		r, _ := readReport(t, out)
		if r.Decision != "error" || len(r.Runs) != 0 {
			t.Errorf("decision %s, runs %+v: want error, nothing built", r.Decision, r.Runs)
		}
		var partial []string
		_ = filepath.WalkDir(small, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".lock") {
				partial = append(partial, p)
			}
			return nil
		})
		if len(partial) > 0 {
			t.Errorf("left in the dependency cache: %v", partial)
		}
	})

	t.Run("refused", func(t *testing.T) {
		srv.status.Store(http.StatusForbidden)
		defer srv.status.Store(0)
		o, out := opts(t, dep(sha256Hex("not cached yet\n")), "echo built > /out/x")
		_, err := guard.Build(t.Context(), o)
		if code := exitcode.Of(err); code != exitcode.Incomplete || !strings.Contains(err.Error(), srv.url) {
			t.Fatalf("Build: exit %d, %v: want 3 naming the URL", code, err)
		}
		r, _ := readReport(t, out)
		if r.Decision != "error" || len(r.Runs) != 0 {
			t.Errorf("decision %s, runs %+v: want error, nothing built", r.Decision, r.Runs)
		}
	})
}

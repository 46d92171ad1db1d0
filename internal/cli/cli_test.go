package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/internal/exitcode"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, IO{Out: &out, Err: &errb})
	if err != nil {
		errb.WriteString("buildguard: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitcode.Of(err)
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, c := range commands() {
		for _, flag := range []string{"-h", "--help"} {
			out, _, code := run(t, c.name, flag)
			if code != 0 || !strings.Contains(out, "Usage: buildguard "+c.name) || !strings.Contains(out, "Examples:") || !strings.Contains(out, "Exit codes:") {
				t.Errorf("%s %s: exit %d, output:\n%s", c.name, flag, code, out)
			}
		}
	}
	out, _, code := run(t, "--help")
	if code != 0 || !strings.Contains(out, "pin ") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{nil, "no command given"},
		{[]string{"pni"}, `unknown command "pni"`},
		{[]string{"pin"}, "name at least one file"},
		{[]string{"pin", "--no-such-flag", "Dockerfile"}, "unknown flag: --no-such-flag"},
		{[]string{"pin", "--check", "--write", "Dockerfile"}, "cannot be combined with --write"},
		{[]string{"pin", "--platform", "amd64", "Dockerfile"}, "want OS/ARCH"},
		{[]string{"pin", "missing.go"}, "unknown file type"},
		{[]string{"pin", "Dockerfile.does-not-exist"}, "no such file"},
		{[]string{"version", "extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.args...)
		if code != exitcode.Usage || !strings.Contains(stderr, tt.msg) {
			t.Errorf("buildguard %q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.msg)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version", "--json")
	var v VersionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.GoVersion == "" || v.Version == "" {
		t.Errorf("version --json: exit %d, %q", code, out)
	}
}

func TestPinCheckWriteCheck(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(32, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/base:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	dir := t.TempDir()
	t.Chdir(dir)
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM "+host+"/base:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out, _, code := run(t, "pin", "--check", df)
	if code != exitcode.Fail || !strings.Contains(out, df+":1: "+host+"/base:1 is not pinned (run: buildguard pin --write "+df+")") {
		t.Fatalf("check before pinning: exit %d, %q", code, out)
	}
	out, _, code = run(t, "pin", df)
	if code != 0 || !strings.Contains(out, "-> "+host+"/base:1@"+digest.String()) {
		t.Fatalf("pin: exit %d, %q", code, out)
	}
	if b, _ := os.ReadFile(df); strings.Contains(string(b), "@") {
		t.Fatalf("pin without --write changed the file")
	}
	_, _, code = run(t, "pin", "--write", "--lock", "buildguard.lock", df)
	if code != 0 {
		t.Fatalf("pin --write: exit %d", code)
	}
	if b, _ := os.ReadFile(df); string(b) != "FROM "+host+"/base:1@"+digest.String()+"\n" {
		t.Fatalf("pinned Dockerfile: %q", b)
	}
	_, stderr, code := run(t, "pin", "--check", df) // reads ./buildguard.lock
	if code != 0 || !strings.Contains(stderr, "are pinned") {
		t.Fatalf("check after pinning: exit %d, %q", code, stderr)
	}
	out, _, code = run(t, "pin", "--check", "--json", df)
	var rep pinReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Lock != "buildguard.lock" || len(rep.Problems) != 0 {
		t.Fatalf("check --json: exit %d, %q", code, out)
	}
	// A lockfile that is not valid is a usage error, not a pass.
	if err := os.WriteFile("buildguard.lock", []byte(`{"apiVersion":"buildguard/v9","images":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, "pin", "--check", df)
	if code != exitcode.Usage || !strings.Contains(stderr, "buildguard/v9") {
		t.Fatalf("check with a bad lockfile: exit %d, %q", code, stderr)
	}
}

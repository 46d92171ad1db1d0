package pin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func scanFiles(t *testing.T, paths ...string) []*File {
	t.Helper()
	var files []*File
	for _, p := range paths {
		f, err := ScanFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

func TestPinWriteKeepsFileAndIsIdempotent(t *testing.T) {
	reg := newTestRegistry(t)
	app := reg.image(t, "app:v1", 1)
	latest := reg.image(t, "tools:latest", 2)
	golang := reg.image(t, "library/golang:1.26", 3) // served as docker.io/library/golang
	dir := t.TempDir()
	src := "# syntax=docker/dockerfile:1\n" +
		"ARG BASE=" + reg.host + "/app:v1\n" +
		"FROM golang:1.26   AS build\n" +
		"\n" +
		"RUN go build\n" +
		"FROM ${BASE}\n" +
		"COPY --from=" + reg.host + "/tools /x /x\n"
	path := writeFile(t, dir, "Dockerfile", src)

	res, err := Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() != 3 {
		t.Fatalf("Changed() = %d, want 3", res.Changed())
	}
	var warned bool
	for _, c := range res.Changes {
		if c.Text == reg.host+"/tools" {
			warned = c.Warning && strings.Contains(c.Note, "no tag")
		}
	}
	if !warned {
		t.Errorf("a reference without a tag was not warned about: %+v", res.Changes)
	}
	if err := res.WriteFiles(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# syntax=docker/dockerfile:1\n" +
		"ARG BASE=" + reg.host + "/app:v1@" + app + "\n" +
		"FROM golang:1.26@" + golang + "   AS build\n" +
		"\n" +
		"RUN go build\n" +
		"FROM ${BASE}\n" +
		"COPY --from=" + reg.host + "/tools:latest@" + latest + " /x /x\n"
	if string(got) != want {
		t.Errorf("rewritten Dockerfile:\n%s\nwant:\n%s", got, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode changed to %v", st.Mode().Perm())
	}

	// A second run finds everything pinned and changes nothing.
	res, err = Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() != 0 {
		t.Errorf("second run changes %d references", res.Changed())
	}
	if problems, err := Check(scanFiles(t, path), nil, ""); err != nil || len(problems) != 0 {
		t.Errorf("Check after --write: %v %v", problems, err)
	}
}

func TestPinYAMLKeepsCommentsAndQuotes(t *testing.T) {
	reg := newTestRegistry(t)
	d := reg.image(t, "app:v1", 1)
	dir := t.TempDir()
	src := "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    # the app\n    - image: \"" + reg.host + "/app:v1\"  # quoted\n      name: app\n"
	path := writeFile(t, dir, "pod.yaml", src)
	res, err := Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WriteFiles(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := strings.Replace(src, "/app:v1\"", "/app:v1@"+d+"\"", 1)
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPinMultiArch(t *testing.T) {
	reg := newTestRegistry(t)
	idx, plats := reg.index(t, "multi:1", 10, "linux/amd64", "linux/arm64")
	path := writeFile(t, t.TempDir(), "Dockerfile", "FROM "+reg.host+"/multi:1\n")

	res, err := Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Changes[0].Digest; got != idx {
		t.Errorf("default pin = %s, want the index %s", got, idx)
	}
	res, err = Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver(), Platform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Changes[0].Digest; got != plats["linux/arm64"] {
		t.Errorf("--platform linux/arm64 pin = %s, want %s", got, plats["linux/arm64"])
	}
	entry, ok := res.Lock.Find(reg.host + "/multi:1")
	if !ok || entry.Index != idx || entry.Platforms["linux/amd64"] != plats["linux/amd64"] || entry.Platforms["linux/arm64"] != plats["linux/arm64"] {
		t.Errorf("lock entry %+v does not record the index and both platforms", entry)
	}
	_, err = Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver(), Platform: "linux/s390x"})
	if err == nil || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("missing platform: want an error listing the platforms, got %v", err)
	}
}

func TestLockIsByteStableAndChecked(t *testing.T) {
	reg := newTestRegistry(t)
	reg.index(t, "multi:1", 10, "linux/amd64", "linux/arm64")
	d := reg.image(t, "app:v1", 1)
	dir := t.TempDir()
	a := writeFile(t, dir, "Dockerfile", "FROM "+reg.host+"/multi:1\nFROM "+reg.host+"/app:v1@"+d+"\n")
	b := writeFile(t, dir, "ci.yaml", "jobs:\n  x:\n    container: "+reg.host+"/app:v1\n")
	var locks [][]byte
	for range 2 {
		res, err := Pin(context.Background(), scanFiles(t, a, b), Options{Resolver: reg.resolver(), Lock: true})
		if err != nil {
			t.Fatal(err)
		}
		data, err := res.Lock.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		locks = append(locks, data)
	}
	if !bytes.Equal(locks[0], locks[1]) {
		t.Fatalf("lockfile differs between runs:\n%s\n%s", locks[0], locks[1])
	}
	lock, err := ParseLock(locks[0])
	if err != nil {
		t.Fatalf("the lockfile written does not parse: %v\n%s", err, locks[0])
	}
	if len(lock.Images) != 2 || !bytes.HasSuffix(locks[0], []byte("}\n")) {
		t.Errorf("want 2 sorted entries and a trailing newline:\n%s", locks[0])
	}

	// The check: pinned and in the lock passes; a digest the lock does not
	// record is refused.
	other := reg.image(t, "app:v2", 99)
	c := writeFile(t, dir, "Containerfile", "FROM "+reg.host+"/app:v1@"+d+"\nFROM "+reg.host+"/app:v1@"+other+"\nFROM "+reg.host+"/app:v3@"+other+"\n")
	problems, err := Check(scanFiles(t, c), lock, "buildguard.lock")
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 2 || problems[0].Line != 2 || !strings.Contains(problems[0].Msg, "disagrees with buildguard.lock") ||
		problems[1].Line != 3 || !strings.Contains(problems[1].Msg, "is not in buildguard.lock") {
		t.Errorf("problems = %v", problems)
	}
}

func TestCheckNamesEveryUnpinnedReference(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "Dockerfile", "FROM golang:1.26 AS b\nFROM alpine@"+testDigest+"\nCOPY --from=busybox /a /a\n")
	problems, err := Check(scanFiles(t, a), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		a + ":1: golang:1.26 is not pinned (run: buildguard pin --write " + a + ")",
		a + ":3: busybox is not pinned (run: buildguard pin --write " + a + ")",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPinUpdateMovesDigests(t *testing.T) {
	reg := newTestRegistry(t)
	old := reg.image(t, "app:v1", 1)
	path := writeFile(t, t.TempDir(), "Dockerfile", "FROM "+reg.host+"/app:v1@"+old+"\n")
	newer := reg.image(t, "app:v1", 2) // the tag moves
	res, err := Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver()})
	if err != nil || res.Changed() != 0 {
		t.Fatalf("without --update a pinned reference is left alone: changed %d, %v", res.Changed(), err)
	}
	res, err = Pin(context.Background(), scanFiles(t, path), Options{Resolver: reg.resolver(), Update: true})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Changes[0]
	if !c.Changed || c.Digest != newer || !strings.Contains(c.Note, "moved") || !strings.Contains(c.Note, old) {
		t.Errorf("update: %+v", c)
	}
}

func TestPinBadInputsLeaveFilesUntouched(t *testing.T) {
	reg := newTestRegistry(t)
	reg.image(t, "app:v1", 1)
	down := httptest.NewServer(http.NotFoundHandler())
	downHost := strings.TrimPrefix(down.URL, "http://")
	down.Close() // nothing listens there any more
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer refuse.Close()
	refuseHost := strings.TrimPrefix(refuse.URL, "http://")

	tests := []struct {
		name, file, src string
		code            int
		msg             string
	}{
		{"tag does not exist", "Dockerfile", "FROM " + reg.host + "/app:v1\nFROM " + reg.host + "/app:nope\n", 2, "Dockerfile:2: resolving " + reg.host + "/app:nope: tag nope does not exist"},
		{"repository does not exist", "Dockerfile", "FROM " + reg.host + "/nothing:v1\n", 2, "does not exist"},
		{"registry down", "Dockerfile", "FROM " + reg.host + "/app:v1\nFROM " + downHost + "/app:v1\n", 3, "could not ask the registry"},
		{"registry refuses", "Dockerfile", "FROM " + refuseHost + "/app:v1\n", 3, "refused"},
		{"malformed reference", "Dockerfile", "FROM " + reg.host + "/app:v1\nFROM UPPER/case:1\n", 2, "Dockerfile:2:"},
		{"not YAML", "pod.yaml", "spec: [\n", 2, "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), tt.file, tt.src)
			err := func() error {
				f, err := ScanFile(path)
				if err != nil {
					return err
				}
				res, err := Pin(context.Background(), []*File{f}, Options{Resolver: &Resolver{Options: []remote.Option{remote.WithRetryBackoff(remote.Backoff{Steps: 1})}}})
				if err != nil {
					return err
				}
				return res.WriteFiles()
			}()
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) || coder.ExitCode() != tt.code {
				t.Errorf("error %v: want exit code %d", err, tt.code)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.src {
				t.Errorf("file changed:\n%s", got)
			}
		})
	}
}

func TestResolveAsksEachReferenceOnce(t *testing.T) {
	reg := newTestRegistry(t)
	reg.image(t, "app:v1", 1)
	dir := t.TempDir()
	var paths []string
	for i := range 5 {
		paths = append(paths, writeFile(t, dir, "Dockerfile."+string(rune('a'+i)), "FROM "+reg.host+"/app:v1\nFROM "+reg.host+"/app\n"))
	}
	if _, err := Pin(context.Background(), scanFiles(t, paths...), Options{Resolver: &Resolver{Jobs: 1}}); err == nil {
		t.Fatal("app:latest does not exist; want an error")
	}
	reg.image(t, "app:latest", 2)
	before := reg.requests.Load()
	if _, err := Pin(context.Background(), scanFiles(t, paths...), Options{Resolver: &Resolver{Jobs: 1}}); err != nil {
		t.Fatal(err)
	}
	// Two distinct references, each: ping, manifest, config blob.
	if n := reg.requests.Load() - before; n > 6 {
		t.Errorf("%d requests for 2 distinct references in 10 places", n)
	}
}

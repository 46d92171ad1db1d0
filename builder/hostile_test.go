package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// hostileCase is one hostile image. It must either fail with an error
// matching want (and leave no root) or succeed harmlessly, with check
// inspecting the root.
type hostileCase struct {
	name   string
	layers [][]tent
	limits Limits
	want   error // nil: must succeed
	check  func(t *testing.T, root string)
}

// TestHostileLayers unpacks a corpus of hostile layers next to a sentinel
// directory and a planted host file under /tmp, and proves that none of them
// writes, links or deletes anything outside the root: each either succeeds
// harmlessly (the attack neutralised inside the root) or fails with a clear
// error matching a sentinel, leaving no root behind.
func TestHostileLayers(t *testing.T) {
	base := t.TempDir()
	sentinelDir := filepath.Join(base, "sentinel")
	if err := os.MkdirAll(sentinelDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sentinelDir, "keep"), []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, err := os.CreateTemp("/tmp", "buildguard-sentinel-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(host.Name()) })
	if _, err := host.WriteString("host file"); err != nil {
		t.Fatal(err)
	}
	host.Close()
	hostRel := strings.TrimPrefix(host.Name(), "/")

	longName := strings.Repeat("a", 5000)
	deep := strings.Repeat("d/", 300) + "f"
	var many []tent
	for i := range 100 {
		many = append(many, file("f"+strings.Repeat("x", i), "", 0o644))
	}

	cases := []hostileCase{
		{name: "dotdot", layers: [][]tent{{file("../escape", "x", 0o644)}}, want: ErrUnsafeEntry},
		{name: "dotdot-deep", layers: [][]tent{{file("../../../../../../tmp/escape", "x", 0o644)}}, want: ErrUnsafeEntry},
		{name: "absolute", layers: [][]tent{{file("/abs/path", "x", 0o644)}},
			check: func(t *testing.T, root string) { mustRead(t, root, "abs/path", "x") }},
		{name: "inner-dotdot", layers: [][]tent{{file("a/../../x", "x", 0o644)}}, want: ErrUnsafeEntry},
		{name: "symlink-root-write-through", layers: [][]tent{{symlink("evil", "/"), file("evil/etc/passwd", "pwned", 0o644)}},
			check: func(t *testing.T, root string) { mustRead(t, root, "etc/passwd", "pwned") }},
		{name: "symlink-up-write-through", layers: [][]tent{{symlink("up", "../../.."), file("up/x", "x", 0o644)}},
			check: func(t *testing.T, root string) { mustRead(t, root, "x", "x") }},
		{name: "symlink-to-sentinel-dir", layers: [][]tent{{symlink("d", sentinelDir), file("d/planted", "x", 0o644), file("d/keep", "overwritten", 0o644)}},
			check: func(t *testing.T, root string) {
				mustRead(t, root, strings.TrimPrefix(sentinelDir, "/")+"/keep", "overwritten")
			}},
		{name: "symlink-then-file-replaces-link", layers: [][]tent{{symlink("s", host.Name())}, {file("s", "overwritten", 0o644)}},
			check: func(t *testing.T, root string) { mustRead(t, root, "s", "overwritten") }},
		{name: "symlink-in-lower-layer-write-through", layers: [][]tent{{symlink("t", "/tmp")}, {file("t/"+filepath.Base(host.Name()), "overwritten", 0o644)}},
			check: func(t *testing.T, root string) { mustRead(t, root, hostRel, "overwritten") }},
		{name: "symlink-absolute-self-loop", layers: [][]tent{{symlink("tmp", "/tmp")}, {file(hostRel, "overwritten", 0o644)}}, want: ErrUnsafeEntry},
		{name: "hardlink-absolute-host", layers: [][]tent{{hardlink("h", "/etc/passwd")}}, want: ErrUnsafeEntry},
		{name: "hardlink-host-tmp-file", layers: [][]tent{{hardlink("h", host.Name())}}, want: ErrUnsafeEntry},
		{name: "hardlink-dotdot", layers: [][]tent{{hardlink("h", "../outside")}}, want: ErrUnsafeEntry},
		{name: "hardlink-through-symlink", layers: [][]tent{{symlink("hostetc", "/etc"), hardlink("h", "hostetc/hostname")}}, want: ErrUnsafeEntry},
		{name: "hardlink-to-directory", layers: [][]tent{{dir("d", 0o755), hardlink("h", "d")}}, want: ErrUnsafeEntry},
		{name: "hardlink-to-symlink-out", layers: [][]tent{{symlink("s", host.Name()), hardlink("h", "s"), file("h", "overwritten", 0o644)}},
			check: func(t *testing.T, root string) { mustRead(t, root, "h", "overwritten") }},
		{name: "whiteout-dotdot", layers: [][]tent{{file("a", "", 0o644)}, {file("../.wh.sentinel", "", 0o644)}}, want: ErrUnsafeEntry},
		{name: "whiteout-through-symlink", layers: [][]tent{{symlink("evil", sentinelDir)}, {file("evil/.wh.keep", "", 0o644)}}},
		{name: "whiteout-through-symlink-host", layers: [][]tent{{symlink("evil", "/tmp")}, {file("evil/.wh."+filepath.Base(host.Name()), "", 0o644)}}},
		{name: "opaque-through-symlink", layers: [][]tent{{symlink("evil", sentinelDir)}, {file("evil/.wh..wh..opq", "", 0o644)}}},
		{name: "whiteout-root", layers: [][]tent{{file(".wh.", "", 0o644)}}, want: ErrUnsafeEntry},
		{name: "device-node", layers: [][]tent{{{name: "dev/sda", typ: tar.TypeBlock}, {name: "dev/null", typ: tar.TypeChar}}},
			check: func(t *testing.T, root string) { mustNotExist(t, root, "dev/sda", "dev/null") }},
		{name: "fifo", layers: [][]tent{{{name: "pipe", typ: tar.TypeFifo}}},
			check: func(t *testing.T, root string) { mustNotExist(t, root, "pipe") }},
		{name: "setuid", layers: [][]tent{{file("su", "x", 0o6755)}},
			check: func(t *testing.T, root string) {
				if fi, err := os.Stat(filepath.Join(root, "su")); err != nil || fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
					t.Errorf("su: %v %v", fi.Mode(), err)
				}
			}},
		{name: "huge-declared-size", layers: [][]tent{{{name: "big", typ: tar.TypeReg, size: 1 << 40}}}, want: ErrLimit},
		{name: "size-over-small-limit", layers: [][]tent{{file("a", strings.Repeat("x", 600), 0o644), file("b", strings.Repeat("x", 600), 0o644)}},
			limits: Limits{MaxBytes: 1000}, want: ErrLimit},
		{name: "too-many-entries", layers: [][]tent{many}, limits: Limits{MaxEntries: 50}, want: ErrLimit},
		{name: "path-too-long", layers: [][]tent{{file(longName, "x", 0o644)}}, want: ErrLimit},
		{name: "path-too-deep", layers: [][]tent{{file(deep, "x", 0o644)}}, want: ErrLimit},
		{name: "symlink-target-too-long", layers: [][]tent{{symlink("s", longName)}}, want: ErrLimit},
		{name: "symlink-loop", layers: [][]tent{{symlink("a", "b"), symlink("b", "a"), file("a/x", "x", 0o644)}}, want: ErrUnsafeEntry},
		{name: "symlink-self-loop", layers: [][]tent{{symlink("l", "l/l"), file("l/x", "x", 0o644)}}, want: ErrUnsafeEntry},
		{name: "file-then-dir-through-file", layers: [][]tent{{file("f", "x", 0o644), file("f/x", "x", 0o644)}}, want: ErrUnsafeEntry},
		{name: "dot-entries", layers: [][]tent{{dir("./", 0o777), file(".", "x", 0o644), dir("/", 0o700)}},
			check: func(t *testing.T, root string) {
				if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("root mode %v %v", fi.Mode(), err)
				}
			}},
	}
	if len(cases) < 12 {
		t.Fatal("the corpus must have at least 12 cases")
	}

	passwd := hashFile(t, "/etc/passwd")
	before := snapshot(t, base, "")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var layers []v1.Layer
			for _, ents := range tc.layers {
				layers = append(layers, layer(t, ents...))
			}
			img := image(t, layers...)
			c := &Cache{Dir: filepath.Join(base, "cache", tc.name), Limits: tc.limits, Logf: t.Logf}
			root, err := c.Unpack(context.Background(), img)
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			case tc.want == nil && err != nil:
				t.Fatalf("err = %v, want success", err)
			case err != nil:
				t.Logf("refused: %v", err)
				if !strings.Contains(err.Error(), "layer ") {
					t.Errorf("error does not name the layer: %v", err)
				}
				assertNoRoot(t, c, img)
			default:
				if tc.check != nil {
					tc.check(t, root)
				}
			}
			// Nothing outside the cache changed.
			if after := snapshot(t, base, filepath.Join(base, "cache")); after != before {
				t.Errorf("outside the root changed:\nbefore %s\nafter  %s", before, after)
			}
			if got := readFile(t, "/", host.Name()); got != "host file" {
				t.Errorf("host file changed: %q", got)
			}
			if hashFile(t, "/etc/passwd") != passwd {
				t.Error("/etc/passwd changed")
			}
			// Inside the cache, only the case's own entries exist.
			ents, _ := os.ReadDir(filepath.Join(base, "cache"))
			if len(ents) != i+1 {
				t.Errorf("cache dir has %d entries, want %d", len(ents), i+1)
			}
			cents, _ := os.ReadDir(c.Dir)
			for _, e := range cents {
				if !strings.HasPrefix(e.Name(), "sha256-") {
					t.Errorf("unexpected %s in the cache", e.Name())
				}
			}
		})
	}
}

// snapshot lists the tree under base (skipping skip) with modes and file
// hashes.
func snapshot(t *testing.T, base, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b.WriteString(p + " " + info.Mode().String())
		if info.Mode().IsRegular() {
			b.WriteString(" " + hashFile(t, p))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func hashFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return string(s[:])
}

func mustRead(t *testing.T, root, name, want string) {
	t.Helper()
	if got := readFile(t, root, name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func mustNotExist(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		if exists(root, n) {
			t.Errorf("%s exists in the root", n)
		}
	}
}

package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadIDMap(t *testing.T) {
	files := func(uid, gid string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			switch name {
			case SubUIDFile:
				return []byte(uid), nil
			case SubGIDFile:
				return []byte(gid), nil
			}
			return nil, os.ErrNotExist
		}
	}
	m, err := readIDMap(files("bad line\nroot:100000:65536\nroot:300000:65536\n", "0:200000:70000\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.UID != 100000 || m.GID != 200000 || m.Size != 65536 || m.Mode != IDMapRanged {
		t.Errorf("readIDMap = %+v, want uid 100000, gid 200000, 65536 ids, ranged (the first line of root's, by name or uid)", m)
	}
	for _, tc := range []struct{ name, uid, gid, want string }{
		{"none", "alice:100000:65536\n", "root:100000:65536\n", "root has none in /etc/subuid"},
		{"no gid", "root:100000:65536\n", "", "root has none in /etc/subgid"},
		{"too few", "root:100000:1000\n", "root:100000:65536\n", "fewer than the 65536"},
		{"holds root", "root:0:65536\n", "root:100000:65536\n", "holds host root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readIDMap(files(tc.uid, tc.gid), 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("readIDMap: %v, want an error saying %q", err, tc.want)
			}
			if tc.name != "holds root" && (!errors.Is(err, ErrNoSubIDs) || !strings.Contains(err.Error(), "usermod --add-subuids")) {
				t.Errorf("error %q wraps ErrNoSubIDs and names the fix", err)
			}
		})
	}
	// A range that holds the invoking user's own uid would let the build
	// write as that user.
	if _, err := readIDMap(files("1000:900:65536\n", "1000:900:65536\n"), 1000); err == nil || !strings.Contains(err.Error(), "own uid") {
		t.Errorf("range holding the user's own uid: %v, want refused", err)
	}
}

// A shifted unpack gives each entry the host id its owner maps to, is
// cached apart from an unshifted one, and refuses an owner it cannot map.
func TestUnpackMapped(t *testing.T) {
	requireRoot(t)
	img := image(t, layer(t, dir("etc", 0o755), owned(file("etc/app", "x", 0o644), 5, 6), owned(symlink("etc/link", "app"), 7, 8),
		owned(dir("srv", 0o700), 9, 10)))
	c := &Cache{Dir: t.TempDir(), SkipSync: true}
	m := IDMap{UID: 200000, GID: 300000, Size: 65536, Mode: IDMapRanged}
	root, err := c.UnpackMapped(context.Background(), img, m)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.Unpack(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if plain == root {
		t.Fatalf("Unpack and UnpackMapped share %s", root)
	}
	for p, want := range map[string][2]uint32{".": {200000, 300000}, "etc": {200000, 300000}, "etc/app": {200005, 300006},
		"etc/link": {200007, 300008}, "srv": {200009, 300010}} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s belongs to %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
		if err := syscall.Lstat(filepath.Join(plain, p), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != os.Geteuid() {
			t.Errorf("unshifted %s belongs to %d, want the unpacking user", p, st.Uid)
		}
	}
	far := image(t, layer(t, owned(file("x", "x", 0o644), 70000, 0)))
	if _, err := c.UnpackMapped(context.Background(), far, m); err == nil || !strings.Contains(err.Error(), "outside the 65536 ids") {
		t.Errorf("owner 70000 with 65536 ids mapped: %v, want refused", err)
	}
	single := IDMap{UID: 4000, GID: 4000, Size: 1, Mode: IDMapSingle}
	root, err = c.UnpackMapped(context.Background(), far, single)
	if err != nil {
		t.Fatalf("single-id mapping: %v (every owner becomes the one id)", err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(root, "x"), &st); err != nil || st.Uid != 4000 {
		t.Errorf("single-id x: uid %d, %v; want 4000", st.Uid, err)
	}
}

// A root unpacked for another mapping (or not shifted) is refused before
// anything runs.
func TestRunRefusesUnmappedRoot(t *testing.T) {
	requireRoot(t)
	s := busyboxStep(t, RuntimeAuto, "true")
	plain, err := testCache(t).Unpack(context.Background(), busyboxImage(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Rootfs = plain
	var se *StepError
	if _, err := Run(context.Background(), s); !errors.As(err, &se) || se.Field != "Rootfs" {
		t.Fatalf("Run with an unshifted root: %v, want a StepError on Rootfs", err)
	}
	s = busyboxStep(t, RuntimeAuto, "true")
	s.Sandbox.UID = 70000
	if _, err := Run(context.Background(), s); !errors.As(err, &se) || se.Field != "Sandbox" {
		t.Fatalf("Run as uid 70000: %v, want a StepError on Sandbox (outside the mapping)", err)
	}
}

// The rootless mode is believed only inside a user namespace: as real root
// a planted BUILDGUARD_ROOTLESS must not map the build to host root.
func TestParseRootless(t *testing.T) {
	single := Rootless{Mode: IDMapSingle, UID: 1000, GID: 1000}.Encode()
	if r := parseRootless(single, false); r != nil {
		t.Errorf("outside a user namespace: %+v, want nil", r)
	}
	r := parseRootless(single, true)
	if r == nil {
		t.Fatal("inside a user namespace: nil")
	}
	if m := r.idMap(); m.UID != 0 || m.Size != 1 || m.Mode != IDMapSingle {
		t.Errorf("single mode maps %+v, want the namespace's 0 alone", m)
	}
	ranged := Rootless{Mode: IDMapRanged, UID: 1000, GID: 1000, SubUID: 100000, SubGID: 100000, Count: MinSubIDs}.Encode()
	if m := parseRootless(ranged, true).idMap(); m.UID != 1 || m.GID != 1 || m.Size != MinSubIDs || m.validate() != nil {
		t.Errorf("ranged mode maps %+v, want the namespace's 1..65536", m)
	}
	for _, bad := range []string{"{", `{"mode":"root"}`, Rootless{Mode: IDMapRanged, Count: 10}.Encode()} {
		if r := parseRootless(bad, true); r != nil {
			t.Errorf("%s: %+v, want nil", bad, r)
		}
	}
}

// A user whose first range is too small but who has a large one later gets
// the large one; with only small ranges, the first (so doctor can say how
// small).
func TestParseSubIDsPrefersAFullRange(t *testing.T) {
	r, ok := ParseSubIDs([]byte("dev:5000:100\ndev:200000:65536\n"), "dev", "1000")
	if !ok || r.Start != 200000 || r.Count != 65536 {
		t.Errorf("ParseSubIDs = %+v %v, want 200000 (65536 ids)", r, ok)
	}
	r, ok = ParseSubIDs([]byte("dev:5000:100\ndev:6000:200\n"), "dev", "1000")
	if !ok || r.Start != 5000 {
		t.Errorf("ParseSubIDs = %+v %v, want the first range, 5000", r, ok)
	}
}

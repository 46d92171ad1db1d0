package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestLimitImageEdges unpacks, for each limit of Limits, an image exactly
// at the limit (which must unpack) and the same image under a limit one
// lower (which must be refused with a LimitError naming the field, the
// value, the layer, and the buildguard.yaml field and flag that raise it).
// Raising the limit by one, as limits.X or --max-X does through
// guard.BuilderLimits, is what makes the refused image unpack.
func TestLimitImageEdges(t *testing.T) {
	// 300 bytes, in components short enough for a file name.
	long := strings.Repeat("n", 100) + "/" + strings.Repeat("n", 100) + "/" + strings.Repeat("n", 98)
	entries := make([]tent, 40)
	for i := range entries {
		entries[i] = file(fmt.Sprintf("f%02d", i), "", 0o644)
	}
	for _, tc := range []struct {
		field   string
		setting string
		img     func(t *testing.T) v1.Image
		at      int64 // the image's measure: it unpacks with the limit at this
		with    func(n int64) Limits
	}{
		{"MaxBytes", "limits.imageBytes, --max-image-bytes",
			func(t *testing.T) v1.Image {
				return image(t, layer(t, file("a", strings.Repeat("x", 600), 0o644)), layer(t, file("b", strings.Repeat("y", 400), 0o644)))
			},
			1000, func(n int64) Limits { return Limits{MaxBytes: n} }},
		{"MaxEntries", "limits.tarEntries, --max-tar-entries",
			func(t *testing.T) v1.Image { return image(t, layer(t, entries[:25]...), layer(t, entries[25:]...)) },
			40, func(n int64) Limits { return Limits{MaxEntries: n} }},
		{"MaxPathLen", "limits.pathLength, --max-path-length",
			func(t *testing.T) v1.Image { return image(t, layer(t, file(long, "x", 0o644))) },
			300, func(n int64) Limits { return Limits{MaxPathLen: int(n)} }},
		{"MaxPathLen", "limits.pathLength, --max-path-length", // a link target is bounded alike
			func(t *testing.T) v1.Image { return image(t, layer(t, symlink("s", long))) },
			300, func(n int64) Limits { return Limits{MaxPathLen: int(n)} }},
		{"MaxDepth", "limits.pathDepth, --max-path-depth",
			func(t *testing.T) v1.Image { return image(t, layer(t, file("a/b/c/d/e/f", "x", 0o644))) },
			6, func(n int64) Limits { return Limits{MaxDepth: int(n)} }},
		{"MaxLayers", "limits.layers, --max-layers",
			func(t *testing.T) v1.Image {
				return image(t, layer(t, file("1", "", 0o644)), layer(t, file("2", "", 0o644)), layer(t, file("3", "", 0o644)))
			},
			3, func(n int64) Limits { return Limits{MaxLayers: int(n)} }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			img := tc.img(t)
			c := &Cache{Dir: t.TempDir(), SkipSync: true, Limits: tc.with(tc.at)}
			if _, err := c.Unpack(context.Background(), img); err != nil {
				t.Fatalf("at the limit (%s %d): %v", tc.field, tc.at, err)
			}
			c = &Cache{Dir: t.TempDir(), SkipSync: true, Limits: tc.with(tc.at - 1)}
			_, err := c.Unpack(context.Background(), img)
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrLimit) {
				t.Fatalf("one over the limit (%s %d): err = %v, want a LimitError", tc.field, tc.at-1, err)
			}
			if le.Field != tc.field || le.Max != tc.at-1 {
				t.Errorf("LimitError names %s %d, want %s %d", le.Field, le.Max, tc.field, tc.at-1)
			}
			if got := le.Setting(); got != tc.setting {
				t.Errorf("Setting() = %q, want %q", got, tc.setting)
			}
			if tc.field != "MaxLayers" && !strings.Contains(err.Error(), "layer ") {
				t.Errorf("the error does not name the layer: %v", err)
			}
			assertNoRoot(t, c, img)
			t.Run("the message says how to raise the limit", func(t *testing.T) {
				want := fmt.Sprintf("exceeds the limit of %d (raise with %s)", tc.at-1, tc.setting)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			})
		})
	}
}

// TestLimitImageDefaults: a zero Limits takes the defaults, which the
// buildguard.yaml and flag documentation state.
func TestLimitImageDefaults(t *testing.T) {
	d := Limits{}.withDefaults()
	want := Limits{MaxBytes: 8 << 30, MaxEntries: 1_000_000, MaxPathLen: 4096, MaxDepth: 256, MaxLayers: 256}
	if d != want {
		t.Errorf("defaults = %+v, want %+v (docs/limits.md)", d, want)
	}
	if s := (&LimitError{Field: "Other"}).Setting(); s != "builder.Limits.Other" {
		t.Errorf("Setting of a field without a flag = %q", s)
	}
}

// TestLimitOutputEntries: a tree of exactly maxEntries entries is hashed;
// one more is refused with a message that says how to raise the limit; 0
// means the default.
func TestLimitOutputEntries(t *testing.T) {
	dir := t.TempDir()
	for i := range 9 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := HashTreeMax(ctx, dir, 10)
	if err != nil || len(m.Entries) != 10 {
		t.Fatalf("10 entries at a limit of 10: %v", err)
	}
	_, err = HashTreeMax(ctx, dir, 9)
	want := "more than 9 entries (raise with limits.outputEntries, --max-output-entries)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("10 entries at a limit of 9: err = %v, want %q", err, want)
	}
	if _, err := HashTreeMax(ctx, dir, 0); err != nil {
		t.Errorf("limit 0 (the default): %v", err)
	}
	if _, err := HashTreeMax(ctx, dir, -1); err == nil {
		t.Error("a negative limit was accepted")
	}
	if DefaultMaxOutputEntries != 1_000_000 {
		t.Errorf("DefaultMaxOutputEntries = %d, want 1000000 (docs/limits.md)", DefaultMaxOutputEntries)
	}
}

// TestLimitBuildLog runs a build that prints exactly 64 bytes: under a cap
// of 64 the log is whole; under 63 it is cut, and a note on the result says
// how to raise the cap.
func TestLimitBuildLog(t *testing.T) {
	requireRoot(t)
	rt := RuntimeAuto
	script := sh(`printf '%%063d\n' 0`) // 63 zeros and a newline
	for _, tc := range []struct {
		max       int64
		truncated bool
	}{{64, false}, {63, true}} {
		s := busyboxStep(t, rt, script...)
		s.MaxLog = tc.max
		res := mustRun(t, s)
		notes := strings.Join(res.Notes, "\n")
		wantNote := fmt.Sprintf("the build log was cut at %d bytes (raise with limits.buildLogBytes, --max-build-log-bytes)", tc.max)
		switch {
		case res.LogTruncated != tc.truncated:
			t.Errorf("cap %d: LogTruncated = %v, want %v (log %d bytes)", tc.max, res.LogTruncated, tc.truncated, res.LogBytes)
		case tc.truncated && !strings.Contains(notes, wantNote):
			t.Errorf("cap %d: notes %q lack %q", tc.max, notes, wantNote)
		case !tc.truncated && (res.LogBytes != 64 || strings.Contains(notes, "log was cut")):
			t.Errorf("cap %d: LogBytes %d, notes %q; want the whole 64 bytes and no note", tc.max, res.LogBytes, notes)
		}
	}
}

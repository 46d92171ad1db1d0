package builder

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// benchImage is ~200 MiB of random content: 4 gzip layers of 50 files of
// 1 MiB, compressed once up front so that iterations measure unpacking only.
func benchImage(b *testing.B) (v1.Image, int64) {
	b.Helper()
	const layers, files, size = 4, 50, 1 << 20
	var ls []v1.Layer
	for i := range layers {
		var ents []tent
		for j := range files {
			ents = append(ents, file(fmt.Sprintf("l%d/f%d", i, j), string(randomBytes(uint64(i*1000+j), size)), 0o644))
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if _, err := zw.Write(tarBytes(b, ents)); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		gz := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
	}
	return image(b, ls...), layers * files * size
}

// BenchmarkUnpack unpacks the ~200 MiB image into a cold cache each
// iteration (digest checks, os.Root, syncfs included; see SkipSync for the
// variant without the flush). Compare with BenchmarkTarX.
func BenchmarkUnpack(b *testing.B) {
	img, total := benchImage(b)
	for _, skipSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", !skipSync), func(b *testing.B) {
			b.SetBytes(total)
			for i := 0; b.Loop(); i++ {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				if _, err := (&Cache{Dir: dir, SkipSync: skipSync}).Unpack(context.Background(), img); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkTarX is the peer: the image flattened by go-containerregistry
// (what `crane export` does) piped into `tar -x`.
func BenchmarkTarX(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Skip("no tar on PATH")
	}
	img, total := benchImage(b)
	b.SetBytes(total)
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		rc := mutate.Extract(img)
		cmd := exec.Command("tar", "-x", "-C", dir)
		cmd.Stdin = rc
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("tar -x: %v: %s", err, out)
		}
		rc.Close()
		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

package pin

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// benchFiles writes 20 Dockerfiles with 10 references each (200 in all),
// naming 100 distinct images, to a registry that answers each request after
// latency (a stand-in for the network round trip to a real registry).
func benchFiles(b *testing.B, latency time.Duration) (*testRegistry, []*File) {
	b.Helper()
	tr := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if latency > 0 && r.Method == http.MethodGet {
			time.Sleep(latency)
		}
		h.ServeHTTP(w, r)
	}))
	b.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	for i := range 100 {
		tr.image(b, fmt.Sprintf("img%d:v1", i), int64(i))
	}
	dir := b.TempDir()
	var files []*File
	for f := range 20 {
		var sb strings.Builder
		for r := range 10 {
			fmt.Fprintf(&sb, "FROM %s/img%d:v1 AS s%d\n", tr.host, (f*10+r)%100, r)
		}
		p := filepath.Join(dir, fmt.Sprintf("Dockerfile.%d", f))
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		file, err := ScanFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, file)
	}
	return tr, files
}

// BenchmarkPin200Refs pins 200 references in 20 files (100 distinct) with
// sequential (jobs=1) and concurrent resolution, with no added latency and
// with 5 ms per request. Report the concurrent/sequential ratio.
func BenchmarkPin200Refs(b *testing.B) {
	for _, latency := range []time.Duration{0, 5 * time.Millisecond} {
		_, files := benchFiles(b, latency)
		for _, jobs := range []int{1, 16} {
			b.Run(fmt.Sprintf("latency=%s/jobs=%d", latency, jobs), func(b *testing.B) {
				for b.Loop() {
					res, err := Pin(context.Background(), files, Options{Resolver: &Resolver{Jobs: jobs}})
					if err != nil {
						b.Fatal(err)
					}
					if res.Changed() != 200 {
						b.Fatalf("changed %d", res.Changed())
					}
				}
			})
		}
	}
}

// BenchmarkScanDockerfile measures the scanner alone on the seed file.
func BenchmarkScanDockerfile(b *testing.B) {
	data, err := os.ReadFile("testdata/Dockerfile.multistage")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Scan("Dockerfile", KindDockerfile, data); err != nil {
			b.Fatal(err)
		}
	}
}

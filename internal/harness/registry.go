package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// registryReadyTimeout bounds the wait for GET /v2/ to answer.
const registryReadyTimeout = 20 * time.Second

// Registry is a running CNCF distribution registry (Debian's docker-registry)
// on loopback, with filesystem storage, deletes enabled and no auth. It has
// no OCI referrers API.
type Registry struct {
	// Addr is "127.0.0.1:PORT", usable as the registry part of a reference.
	Addr string
	// StorageDir is the root of the registry's filesystem storage.
	StorageDir string
	// LogPath is the file that receives the registry's output.
	LogPath string

	proc *process
}

// StartRegistry starts docker-registry with its config, storage and log in
// dir and waits until GET /v2/ answers 200. The registry is stopped by Stop
// or when ctx is cancelled.
func StartRegistry(ctx context.Context, dir string) (*Registry, error) {
	bin, err := Lookup("docker-registry")
	if err != nil {
		return nil, err
	}
	r := &Registry{
		StorageDir: filepath.Join(dir, "storage"),
		LogPath:    filepath.Join(dir, "registry.log"),
	}
	if err := os.MkdirAll(r.StorageDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating registry storage: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		r.Addr = "127.0.0.1:" + strconv.Itoa(ports[0])
		if err := os.WriteFile(cfgPath, registryConfig(r.StorageDir, r.Addr), 0o600); err != nil {
			return nil, fmt.Errorf("writing registry config: %w", err)
		}
		r.proc, err = startProcess(ctx, "docker-registry", r.LogPath, bin, "serve", cfgPath)
		if err != nil {
			return nil, err
		}
		err = r.proc.waitReady(ctx, registryReadyTimeout, r.ping)
		if err == nil {
			return r, nil
		}
		r.proc.stop()
		if attempt == startAttempts || !errors.Is(err, errExited) || !r.proc.bindFailed() {
			return nil, fmt.Errorf("starting registry: %w", err)
		}
	}
}

// registryConfig is a distribution 2.8 config: filesystem storage, deletes
// on, no auth, plain HTTP on addr, quiet logs, no background jobs.
func registryConfig(storage, addr string) []byte {
	return fmt.Appendf(nil, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  headers:
    X-Content-Type-Options: [nosniff]
`, storage, addr)
}

// ping checks that the registry answers the OCI distribution base endpoint.
func (r *Registry) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}

// Stop kills the registry's process group and waits for it to exit. It is
// safe to call more than once.
func (r *Registry) Stop() {
	if r != nil && r.proc != nil {
		r.proc.stop()
	}
}

package releasekit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// ExampleRegistry is the registry the example's files (examples/hello)
// name; CopyExample puts the address of the registry started on loopback
// in its place.
const ExampleRegistry = "127.0.0.1:5000"

// CopyExample copies the regular files of the example directory src into
// dst, with ExampleRegistry replaced by addr, and returns their names.
func CopyExample(src, dst, addr string) ([]string, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("reading the example: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return nil, err
		}
		data = bytes.ReplaceAll(data, []byte(ExampleRegistry), []byte(addr))
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil { //nolint:gosec // names come from ReadDir of the example directory
			return nil, err
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// ToolEnv is this process's environment with every cache and
// configuration that cosign and the registry clients write put under tmp,
// and an empty COSIGN_PASSWORD for a key pair without a password. It makes
// tmp/docker.
func ToolEnv(tmp string) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(tmp, "docker"), 0o700); err != nil {
		return nil, err
	}
	return append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"), "DOCKER_CONFIG="+filepath.Join(tmp, "docker"),
		"TUF_ROOT="+filepath.Join(tmp, "tuf"), "SIGSTORE_NO_CACHE=true", "COSIGN_PASSWORD="), nil
}

package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/transparency-dev/formats/log"

	"github.com/buildguard/buildguard/internal/atomicfile"
)

// DefaultCacheDir is buildguard's cache directory: $XDG_CACHE_HOME/buildguard,
// else ~/.cache/buildguard (os.UserCacheDir on other systems).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory: %w", err)
	}
	return filepath.Join(dir, "buildguard"), nil
}

// maxCheckpointFile bounds a stored checkpoint.
const maxCheckpointFile = 64 << 10

// checkpointStore keeps the newest verified checkpoint of each log: one file
// per log, named by the log's ID ("<hex SHA-256 of the log key>.checkpoint"),
// holding the signed checkpoint as the log served it, so that it is verified
// again with the log's key whenever it is read.
type checkpointStore struct{ dir string }

// logIDPattern is a log ID as a trusted root names it.
var logIDPattern = regexp.MustCompile(`^[0-9a-f]{1,128}$`)

func (s checkpointStore) path(logID string) (string, error) {
	if !logIDPattern.MatchString(logID) {
		return "", fmt.Errorf("log ID %q is not lower-case hex", logID)
	}
	return filepath.Join(s.dir, logID+".checkpoint"), nil
}

// verifyFunc parses a signed checkpoint of one log and verifies it with the
// log's key.
type verifyFunc func(raw []byte) (*log.Checkpoint, error)

// load returns the stored checkpoint of the log, verified with verify; nil
// when none is stored. A stored file that does not verify is an error: it
// was changed since buildguard wrote it.
func (s checkpointStore) load(logID string, verify verifyFunc) (*log.Checkpoint, error) {
	p, err := s.path(logID)
	if err != nil {
		return nil, err
	}
	raw, err := readBounded(p, maxCheckpointFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading stored checkpoint: %w", err)
	}
	cp, err := verify(raw)
	if err != nil {
		return nil, fmt.Errorf("stored checkpoint %s does not verify with the key of log %s: %w", p, logID, err)
	}
	return cp, nil
}

// save stores raw, the signed checkpoint cp, unless a checkpoint of a tree at
// least as large was stored meanwhile (by another run): the store only grows.
func (s checkpointStore) save(logID string, verify verifyFunc, cp *log.Checkpoint, raw []byte) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("checkpoint store: %w", err)
	}
	if now, err := s.load(logID, verify); err != nil {
		return err
	} else if now != nil && now.Size >= cp.Size {
		return nil
	}
	p, err := s.path(logID)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, raw, 0o600)
}

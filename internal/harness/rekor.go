package harness

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rekorReadyTimeout bounds the wait for the write API and the first
// checkpoint.
const rekorReadyTimeout = 30 * time.Second

// rekorHost is where every Rekor of the harness listens. rekor-tiles uses its
// --hostname flag verbatim as the checkpoint origin, and sigstore-go checks a
// Rekor v2 checkpoint against url.Hostname() of the log's base URL, which
// drops the port: so the origin is "127.0.0.1".
const rekorHost = "127.0.0.1"

// Rekor is a running Rekor v2 log (rekor-tiles with POSIX storage) on
// loopback, plus a static file server that serves its C2SP tlog-tiles
// (/checkpoint, /tile/..., /tile/entries/...) the way public logs do; the
// rekor-tiles server itself answers no reads.
type Rekor struct {
	// URL is the base of the write API (POST URL + "/api/v2/log/entries").
	URL string
	// TilesURL is the base of the tiles, with a trailing slash.
	TilesURL string
	// Origin is the first line of every checkpoint the log signs.
	Origin string
	// PublicKey is the log's checkpoint key (ed25519.PublicKey).
	PublicKey crypto.PublicKey
	// PublicKeyPEM is PublicKey as a PKIX "PUBLIC KEY" PEM block.
	PublicKeyPEM []byte
	// SignerKeyPath is the PKCS#8 PEM private key the server signs with.
	SignerKeyPath string
	// StorageDir is the POSIX storage the tiles are served from.
	StorageDir string
	// LogPath is the file that receives the server's output.
	LogPath string

	proc      *process
	files     *http.Server
	filesDone chan struct{}
	stopFiles func() bool // unregisters the ctx hook that closes files
	stopOnce  sync.Once
}

// StartRekor generates an Ed25519 checkpoint key, starts a static file
// server over the log's storage and then the rekor-tiles POSIX server
// ("posix serve") with its key, storage and log in dir, and waits until the
// write API is healthy and the first checkpoint is readable and verifies.
// Everything is stopped by Stop or when ctx is cancelled.
func StartRekor(ctx context.Context, dir string) (*Rekor, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating rekor key: %w", err)
	}
	return StartRekorWithKey(ctx, dir, priv)
}

// StartRekorWithKey is StartRekor with the checkpoint key given: a second
// log started with the key and origin of another presents a fork of it
// (what a split-view attack looks like to a client).
func StartRekorWithKey(ctx context.Context, dir string, key ed25519.PrivateKey) (_ *Rekor, err error) {
	bin, err := Lookup("posix")
	if err != nil {
		return nil, err
	}
	r := &Rekor{
		Origin:        rekorHost,
		SignerKeyPath: filepath.Join(dir, "rekor-signer.pem"),
		StorageDir:    filepath.Join(dir, "log"),
		LogPath:       filepath.Join(dir, "rekor.log"),
	}
	if err := os.MkdirAll(r.StorageDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating rekor storage: %w", err)
	}
	if err := r.writeSignerKey(key); err != nil {
		return nil, err
	}
	if err := r.serveTiles(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.Stop()
		}
	}()
	tiles, err := NewTileLog(r.TilesURL, r.Origin, r.PublicKey, nil)
	if err != nil {
		return nil, err
	}
	ready := func(ctx context.Context) error {
		if err := r.healthy(ctx); err != nil {
			return err
		}
		_, _, err := tiles.Checkpoint(ctx)
		return err
	}
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		r.URL = "http://" + net.JoinHostPort(rekorHost, strconv.Itoa(ports[0]))
		r.proc, err = startProcess(ctx, "rekor-tiles", r.LogPath, bin, "serve",
			"--hostname="+rekorHost,
			"--storage-dir="+r.StorageDir,
			"--signer-filepath="+r.SignerKeyPath,
			"--http-address="+rekorHost, "--http-port="+strconv.Itoa(ports[0]),
			"--grpc-address="+rekorHost, "--grpc-port="+strconv.Itoa(ports[1]),
			"--http-metrics-port="+strconv.Itoa(ports[2]),
			"--checkpoint-interval=1s",
			"--log-level=warn",
		)
		if err != nil {
			return nil, err
		}
		err = r.proc.waitReady(ctx, rekorReadyTimeout, ready)
		if err == nil {
			return r, nil
		}
		r.proc.stop()
		if attempt == startAttempts || !errors.Is(err, errExited) || !r.proc.bindFailed() {
			return nil, fmt.Errorf("starting rekor: %w", err)
		}
	}
}

// writeSignerKey writes the log's Ed25519 key for the server and keeps the
// public half.
func (r *Rekor) writeSignerKey(priv ed25519.PrivateKey) error {
	pub, ok := priv.Public().(ed25519.PublicKey)
	if !ok || len(priv) != ed25519.PrivateKeySize {
		return errors.New("rekor key is not an Ed25519 private key")
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("marshaling rekor key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("marshaling rekor public key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	if err := os.WriteFile(r.SignerKeyPath, privPEM, 0o600); err != nil {
		return fmt.Errorf("writing rekor key: %w", err)
	}
	r.PublicKey = pub
	r.PublicKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return nil
}

// serveTiles starts the static file server over StorageDir and sets
// TilesURL. It serves only the tlog-tiles paths, never the server's state.
func (r *Rekor) serveTiles(ctx context.Context) error {
	l, err := net.Listen("tcp", net.JoinHostPort(rekorHost, "0"))
	if err != nil {
		return fmt.Errorf("listening for tiles: %w", err)
	}
	r.TilesURL = "http://" + l.Addr().String() + "/"
	r.files = &http.Server{Handler: tilesHandler(r.StorageDir), ReadHeaderTimeout: 10 * time.Second}
	r.filesDone = make(chan struct{})
	go func() {
		defer close(r.filesDone)
		_ = r.files.Serve(l) // returns http.ErrServerClosed after Close
	}()
	r.stopFiles = context.AfterFunc(ctx, func() { _ = r.files.Close() })
	return nil
}

// tilesHandler serves GET and HEAD for /checkpoint and /tile/... from dir.
func tilesHandler(dir string) http.Handler {
	fs := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := req.URL.Path
		allowed := p == "/checkpoint" || (strings.HasPrefix(p, "/tile/") && !strings.Contains(p, "/."))
		if !allowed || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fs.ServeHTTP(w, req)
	})
}

// healthy checks the write API's health endpoint.
func (r *Rekor) healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
		return fmt.Errorf("GET /healthz: %s %s", resp.Status, body)
	}
	return nil
}

// Tiles returns a client that reads and verifies this log's tiles.
func (r *Rekor) Tiles() (*TileLog, error) {
	return NewTileLog(r.TilesURL, r.Origin, r.PublicKey, nil)
}

// Stop kills the server's process group, closes the tile server and waits
// for both. It is safe to call more than once.
func (r *Rekor) Stop() {
	if r == nil {
		return
	}
	r.stopOnce.Do(func() {
		if r.proc != nil {
			r.proc.stop()
		}
		if r.files != nil {
			r.stopFiles()
			_ = r.files.Close()
			<-r.filesDone
		}
	})
}

package harness

// The tile-log helpers live in internal/tlog, which online verification
// uses; these names keep the harness's API.

import "github.com/buildguard/buildguard/internal/tlog"

// TileLog reads a tlog-tiles log over HTTP and verifies what it reads
// against the log's origin and public key.
type TileLog = tlog.TileLog

// NewTileLog returns a reader for the log whose tiles are under tilesURL.
// hc may be nil for http.DefaultClient.
var NewTileLog = tlog.NewTileLog

// NoteVerifier returns a signed-note verifier for a log's checkpoints, as
// rekor-tiles signs them.
var NoteVerifier = tlog.NoteVerifier

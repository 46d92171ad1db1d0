package tlog_test

import (
	"bytes"
	"testing"

	"github.com/buildguard/buildguard/internal/tlog"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// FuzzVerifyCheckpoint feeds a log's checkpoint parser attacker bytes: it
// must not panic, and what it accepts must be exactly the signed text.
func FuzzVerifyCheckpoint(f *testing.F) {
	l := trusttest.NewTileLog(f)
	_, good := l.Append(f, []byte("seed"))
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("\n1\n"), []byte("\n2\n"), 1))
	f.Add([]byte("127.0.0.1\n1\n\n"))
	f.Add([]byte{})
	v, err := tlog.NoteVerifier("127.0.0.1", l.Info().PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cp, err := tlog.VerifyCheckpoint(raw, v)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(raw, cp.Marshal()) {
			t.Errorf("accepted %q as %+v, whose text is not what was signed", raw, cp)
		}
	})
}

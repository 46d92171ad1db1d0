package builder

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestLogSink(t *testing.T) {
	var file, stream bytes.Buffer
	s := &logSink{file: &file, stream: &stream, prefix: []byte("> "), max: 10}
	for _, p := range []string{"ab", "c\nde", "f\n", "ghijkl\nmn"} {
		if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	s.finish()
	if want := "abc\ndef\ngh\n[buildguard: log truncated: 7 more bytes of output were not kept (cap 10 bytes)]\n"; file.String() != want {
		t.Errorf("file = %q, want %q", file.String(), want)
	}
	if want := "> abc\n> def\n> gh\n> [buildguard: log truncated: 7 more bytes of output were not kept (cap 10 bytes)]\n"; stream.String() != want {
		t.Errorf("stream = %q, want %q", stream.String(), want)
	}
	if s.kept != 10 || s.dropped != 7 {
		t.Errorf("kept %d, dropped %d", s.kept, s.dropped)
	}
}

// Without truncation the file is the output byte for byte (no newline is
// added), while the stream ends its last line.
func TestLogSinkExact(t *testing.T) {
	var file, stream bytes.Buffer
	s := &logSink{file: &file, stream: &stream, prefix: []byte("| "), max: 100}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.pump(r); close(done) }()
	_, _ = w.Write([]byte("one\ntwo"))
	w.Close()
	<-done
	if file.String() != "one\ntwo" || stream.String() != "| one\n| two\n" {
		t.Errorf("file %q, stream %q", file.String(), stream.String())
	}
	if strings.Contains(file.String(), "truncated") {
		t.Error("note without truncation")
	}
}

package builder

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// DefaultMaxLog is the default cap on a build log, in bytes.
const DefaultMaxLog = 16 << 20

// logSink takes the build's output (stdout and stderr interleaved, as a
// terminal shows them), keeps up to max bytes of it in a file and streams
// the same bytes to a writer with a prefix at the start of each line. What
// comes past the cap is counted and dropped, and a note says so at the end.
type logSink struct {
	file    io.Writer // nil: no file
	stream  io.Writer // nil: no streaming
	prefix  []byte
	max     int64
	kept    int64
	dropped int64
	midLine bool // the last byte kept was not a newline
	err     error
}

// Write keeps what fits under the cap. It never fails, so that a full disk
// or a broken terminal does not stop the build: the first error is kept in
// s.err and reported after the run.
func (s *logSink) Write(p []byte) (int, error) {
	n := len(p)
	room := s.max - s.kept
	if int64(len(p)) > room {
		s.dropped += int64(len(p)) - max(room, 0)
		p = p[:max(room, 0)]
	}
	if len(p) == 0 {
		return n, nil
	}
	s.kept += int64(len(p))
	if s.file != nil {
		if _, err := s.file.Write(p); err != nil && s.err == nil {
			s.err = fmt.Errorf("writing the build log: %w", err)
		}
	}
	s.streamOut(p)
	return n, nil
}

// streamOut writes p to the stream with the prefix before every line.
func (s *logSink) streamOut(p []byte) {
	mid := s.midLine
	s.midLine = p[len(p)-1] != '\n'
	if s.stream == nil {
		return
	}
	var buf bytes.Buffer
	for len(p) > 0 {
		if !mid {
			buf.Write(s.prefix)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			buf.Write(p)
			break
		}
		buf.Write(p[:i+1])
		mid = false
		p = p[i+1:]
	}
	_, _ = s.stream.Write(buf.Bytes()) // a terminal that went away must not fail the build
}

// finish appends the truncation note, when output was dropped, to the file
// and the stream, and ends an unfinished line on the stream.
func (s *logSink) finish() {
	var note []byte
	if s.dropped > 0 {
		note = fmt.Appendf(nil, "[buildguard: log truncated: %d more bytes of output were not kept (cap %d bytes)]\n", s.dropped, s.max)
	}
	nl := []byte(nil)
	if s.midLine {
		nl = []byte{'\n'}
	}
	if s.file != nil && note != nil {
		if _, err := s.file.Write(append(nl, note...)); err != nil && s.err == nil {
			s.err = fmt.Errorf("writing the build log: %w", err)
		}
	}
	if s.stream != nil && (nl != nil || note != nil) {
		out := nl
		if note != nil {
			out = append(append(out, s.prefix...), note...)
		}
		_, _ = s.stream.Write(out)
	}
	s.midLine = false
}

// pump copies r (the read end of the build's output pipe) into s until EOF,
// then finishes the log and closes r. It is run on its own goroutine.
func (s *logSink) pump(r *os.File) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = s.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	s.finish()
	_ = r.Close()
}

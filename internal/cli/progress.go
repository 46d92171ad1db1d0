package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lineProgress prints a line as each stage ends: plain, timestamped lines
// that read well in a CI log.
type lineProgress struct{ w io.Writer }

func (p *lineProgress) Start(string) {}

func (p *lineProgress) Done(stage string, d time.Duration, err error) {
	status := "done"
	if err != nil {
		status = "FAILED: " + err.Error()
	}
	fmt.Fprintf(p.w, "%s buildguard %-8s %s (%s)\n", time.Now().UTC().Format("15:04:05"), stage, status, d.Round(time.Millisecond))
}

// ttyProgress is the progress on a terminal: one line per stage with a
// spinner, the elapsed time and the tail of the build's output, redrawn in
// place; a finished stage leaves its line with a check mark or a cross. It
// is also the builds' output stream, of which it shows only the last line.
type ttyProgress struct {
	w     io.Writer
	mu    sync.Mutex
	stage string
	start time.Time
	tail  string
	buf   []byte
	stop  chan struct{}
	done  chan struct{}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newTTYProgress(w io.Writer) *ttyProgress { return &ttyProgress{w: w} }

func (p *ttyProgress) Start(stage string) {
	p.mu.Lock()
	p.stage, p.start, p.tail = stage, time.Now(), ""
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.mu.Unlock()
	go p.spin(p.stop, p.done)
}

func (p *ttyProgress) spin(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		p.mu.Lock()
		line := fmt.Sprintf("%s %-8s %5.1fs  %s", spinner[i%len(spinner)], p.stage, time.Since(p.start).Seconds(), p.tail)
		fmt.Fprintf(p.w, "\r\033[K%s", clip(line, 100))
		p.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (p *ttyProgress) Done(stage string, d time.Duration, err error) {
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	mark, msg := "✓", ""
	if err != nil {
		mark, msg = "✗", "  "+err.Error()
	}
	fmt.Fprintf(p.w, "\r\033[K%s %-8s %5.1fs%s\n", mark, stage, d.Seconds(), msg)
	p.stop = nil
}

// Write takes the builds' output and keeps its last complete line.
func (p *ttyProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	if i := bytes.LastIndexByte(p.buf, '\n'); i >= 0 {
		lines := strings.Split(strings.TrimRight(string(p.buf[:i]), "\n"), "\n")
		p.tail = strings.TrimSpace(lines[len(lines)-1])
		p.buf = append(p.buf[:0], p.buf[i+1:]...)
	}
	if len(p.buf) > 4096 {
		p.buf = p.buf[len(p.buf)-4096:]
	}
	return len(b), nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

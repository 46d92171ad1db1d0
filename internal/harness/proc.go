package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startAttempts bounds how often a service is started again with fresh ports
// when another process took one of its ports between the probe and the bind.
const startAttempts = 3

// stopGrace is how long a stopped service may take to exit after SIGTERM
// before its process group is killed.
const stopGrace = 5 * time.Second

// errExited reports that a service's process exited before it became ready.
var errExited = errors.New("process exited before it was ready")

// process is a child process in its own process group whose stdout and
// stderr go to a log file.
type process struct {
	name    string
	logPath string
	pid     int

	done    chan struct{} // closed once the process has exited
	waitErr error         // set before done is closed

	stopOnce sync.Once
}

// startProcess starts bin with args, appending its output to logPath. The
// process group is killed when ctx is cancelled or stop is called.
func startProcess(ctx context.Context, name, logPath, bin string, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	defer logf.Close() // the child has its own descriptor once started
	fmt.Fprintf(logf, "=== %s: %s %s\n", time.Now().UTC().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.stop()
		case <-p.done:
		}
	}()
	return p, nil
}

// stop terminates the process group, escalating to SIGKILL after stopGrace,
// and waits for the process to exit. It is safe to call more than once.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
		// Also reaps anything the service left behind in its group.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	})
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls ready every 100ms until it succeeds, the process exits,
// timeout passes or ctx is done. Errors include the tail of the log.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%s: %w (%w); log %s:\n%s", p.name, errExited, p.waitErr, p.logPath, logTail(p.logPath))
		}
		probeCtx, probeCancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(probeCtx)
		probeCancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; last probe: %w; log %s:\n%s",
				p.name, timeout, ctx.Err(), last, p.logPath, logTail(p.logPath))
		case <-tick.C:
		case <-p.done:
		}
	}
}

// bindFailed reports whether the process died because a port was taken.
func (p *process) bindFailed() bool {
	return p.exited() && strings.Contains(logTail(p.logPath), "address already in use")
}

// logTail returns about the last 4 KiB of the log at path.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 4 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		if _, err := f.Seek(-max, io.SeekEnd); err != nil {
			return fmt.Sprintf("(reading log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	return string(bytes.TrimSpace(b))
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment
// ago. Another process may take one before the service binds it; callers
// retry with fresh ports (see startAttempts).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("probing for a free port: %w", err)
		}
		defer l.Close() // held until all n are picked, so they are distinct
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

package reproduce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// maxDiffoscopeOutput caps what is kept of diffoscope's report.
const maxDiffoscopeOutput = 1 << 20

// Diffoscope runs diffoscope (when installed) on two paths with a timeout
// and returns its text report, cut at 1 MiB. It is the deep second opinion
// a release engineer may want beside buildguard's own explanation; a
// missing diffoscope is an error that says how to install it.
func Diffoscope(ctx context.Context, a, b string, timeout time.Duration) (string, error) {
	bin, err := exec.LookPath("diffoscope")
	if err != nil {
		return "", fmt.Errorf("diffoscope is not installed (apt-get install --no-install-recommends diffoscope): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--no-progress", "--text", "-", a, b)
	cmd.Stdout = &capped{buf: &out, max: maxDiffoscopeOutput}
	cmd.Stderr = cmd.Stdout
	err = cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("diffoscope did not finish within %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		err = nil // 1: the inputs differ, which is why it was run
	}
	return out.String(), err
}

// capped keeps the first max bytes written and discards the rest.
type capped struct {
	buf *bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	switch {
	case room <= 0:
		if !c.cut {
			c.cut = true
			c.buf.WriteString("\n... diffoscope output cut at 1 MiB\n")
		}
	case len(p) > room:
		c.buf.Write(p[:room])
	default:
		c.buf.Write(p)
	}
	return len(p), nil
}

// Package releasekit holds what the programs that drive the real parts
// share: running a command with its output shown and its exit code
// checked, the preflight check for the tools, clean and independent Go
// builder images made from this machine's toolchain, and key-pair signing
// with the real cosign CLI through a Rekor v2 log started on loopback.
//
// It is for internal/cmd/release (`make release`), internal/cmd/demo
// (`make demo`) and internal/cmd/benchoverhead (scripts/bench-overhead.sh).
package releasekit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
)

// Preflight fails early, naming every missing tool with how to get it:
// docker-registry, posix (the Rekor v2 server), cosign, busybox and crun
// or runc, and root for the rootful runtimes. what names the program in
// the message.
func Preflight(what string) error {
	var missing []string
	for _, tool := range []string{"docker-registry", "posix", "cosign", "busybox"} {
		if _, err := harness.Lookup(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tool, harness.InstallHint(tool)))
		}
	}
	_, crunErr := harness.Lookup("crun")
	_, runcErr := harness.Lookup("runc")
	if crunErr != nil && runcErr != nil {
		missing = append(missing, "crun or runc ("+harness.InstallHint("crun")+")")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s needs: %s; `sudo bash .ci/run` installs them all", what, strings.Join(missing, ", "))
	}
	return nil
}

// Runner runs commands, showing each as `$ command` and its output
// indented below it, as it comes.
type Runner struct {
	// Env is every command's environment.
	Env []string
	// Out is where commands and their output are shown; nil means
	// os.Stdout.
	Out io.Writer
	// Quiet shows nothing; the error of a command that exits other than
	// wanted then carries its output.
	Quiet bool
}

func (r *Runner) out() io.Writer {
	if r.Out == nil {
		return os.Stdout
	}
	return r.Out
}

// Run runs bin with args in dir and checks that it exits want. It returns
// what the command printed (stdout and stderr, interleaved). On a
// cancelled ctx the command gets SIGINT first, so that buildguard stops
// its containers.
func (r *Runner) Run(ctx context.Context, dir string, want int, bin string, args ...string) (string, error) {
	line := filepath.Base(bin) + " " + strings.Join(args, " ")
	w := r.out()
	if r.Quiet {
		w = io.Discard
	}
	fmt.Fprintf(w, "$ %s\n", line)
	c := exec.CommandContext(ctx, bin, args...)
	c.Dir, c.Env = dir, r.Env
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	ind := &indent{w: w, start: true}
	c.Stdout = io.MultiWriter(&out, ind)
	if r.Quiet {
		c.Stdout = &out
	}
	c.Stderr = c.Stdout
	err := c.Run()
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		return out.String(), fmt.Errorf("%s: %w", line, err)
	}
	if !ind.start {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  (exit %d)\n", got)
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	if got != want {
		err := fmt.Errorf("%s exited %d, want %d", line, got, want)
		if r.Quiet {
			err = fmt.Errorf("%w\n%s", err, out.String())
		}
		return out.String(), err
	}
	return out.String(), nil
}

// indent writes what it is given with two spaces before each line, as it
// comes, so that a long build shows its progress.
type indent struct {
	w     io.Writer
	start bool // at the start of a line
}

func (i *indent) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if i.start {
			b.WriteString("  ")
		}
		b.WriteByte(c)
		i.start = c == '\n'
	}
	if _, err := i.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

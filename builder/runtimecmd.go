package builder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runtimeCmd runs the commands of one container's life: run, kill, delete.
// Each starts from the sandbox's thread, with the runtime's state under the
// run directory (never the system's /run/crun or /run/runc) and its own log
// in JSON there.
type runtimeCmd struct {
	rt *Runtime
	sb *sandbox
	id string
	// cgroups is whether the container gets cgroups (the limits apply
	// through them); runsc otherwise makes its own, which rootless it
	// cannot.
	cgroups bool
}

func (rc *runtimeCmd) stateDir() string { return filepath.Join(rc.sb.dir, "state") }
func (rc *runtimeCmd) logPath() string  { return filepath.Join(rc.sb.dir, "runtime.log") }

// command returns the runtime invoked with the global flags, then args. The
// runtime gets a bare PATH and nothing else from the host's environment.
func (rc *runtimeCmd) command(args ...string) *exec.Cmd {
	full := []string{"--root", rc.stateDir(), "--log", rc.logPath(), "--log-format", "json"}
	if rc.rt.Name == RuntimeRunsc {
		full = append(full, runscFlags...)
		if !rc.cgroups {
			full = append(full, "--ignore-cgroups")
		}
	}
	full = append(full, args...)
	cmd := exec.Command(rc.rt.Path, full...)
	cmd.Env = []string{"PATH=" + DefaultPath}
	return cmd
}

// runscFlags are gVisor's global flags for a build: a network stack of its
// own with nothing but loopback (the spec's empty network namespace is
// not enough: runsc would give the sandbox a copy of the namespace's
// interfaces), and the spec's seccomp filter loaded inside the sandbox as
// well, so that the build sees the refusals it sees under crun and runc.
var runscFlags = []string{"--network=none", "--oci-seccomp"}

// run runs a short runtime command and waits for it at most timeout.
func (rc *runtimeCmd) run(timeout time.Duration, args ...string) error {
	cmd := rc.command(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := rc.sb.start(cmd); err != nil {
		return fmt.Errorf("starting %s %s: %w", rc.rt.Name, args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("no answer in %s: %w", timeout, <-done)
	}
	if err == nil {
		return nil
	}
	if args[0] == "delete" && !rc.exists() {
		return nil // `run` deleted it when the container exited
	}
	return fmt.Errorf("%s %s %s: %w: %s", rc.rt.Name, args[0], rc.id, err, strings.TrimSpace(out.String()))
}

// exists reports whether the runtime still holds state for the container.
func (rc *runtimeCmd) exists() bool {
	_, err := os.Lstat(filepath.Join(rc.stateDir(), rc.id))
	return !errors.Is(err, fs.ErrNotExist)
}

// stop kills the container (every process of its pid namespace dies with
// its init) and waits for the `run` command, whose exit is sent on done, to
// return; if it does not, it is killed too. It returns how `run` exited,
// and an error when it had to be killed.
//
// A kill that finds no container (the runtime is still making it) is sent
// again every 100ms until the container exists or the runtime returns.
func (rc *runtimeCmd) stop(run *exec.Cmd, done <-chan error) (waitErr, err error) {
	deadline := time.After(10 * time.Second)
	for {
		kerr := rc.run(10*time.Second, "kill", rc.id, "KILL")
		var retry <-chan time.Time
		if kerr != nil {
			retry = time.After(100 * time.Millisecond)
		}
		select {
		case waitErr = <-done:
			return waitErr, nil
		case <-retry:
			continue
		case <-deadline:
			_ = run.Process.Kill()
			waitErr = <-done
			return waitErr, errors.Join(fmt.Errorf("%s run did not return after the container was killed", rc.rt.Name), kerr)
		}
	}
}

// failure explains why the container did not start: the errors of the
// runtime's own log, else how the runtime exited.
func (rc *runtimeCmd) failure(waitErr error) error {
	var msgs []string
	if f, err := os.Open(rc.logPath()); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e struct{ Level, Msg string }
			if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
				msgs = append(msgs, e.Msg)
			}
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	if waitErr != nil {
		return fmt.Errorf("%s run: %w", rc.rt.Name, waitErr)
	}
	return fmt.Errorf("%s run exited without starting the container", rc.rt.Name)
}

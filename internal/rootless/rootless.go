// Package rootless runs buildguard as an unprivileged user: the command
// runs again in a user namespace and a mount namespace of its own, where it
// is root over the user's own ids and nothing else (as `podman unshare` and
// rootlesskit do), so that the sandbox is built there exactly as it is as
// root: a private mount namespace, an overlay root, crun or runc.
//
// The namespace maps its 0 to the invoking user and, when the user has a
// subordinate id range (/etc/subuid, /etc/subgid) and newuidmap and
// newgidmap are installed, its ids 1..65536 to that range ("ranged"):
// builds then run as those ids and the image's owners are kept. Otherwise
// the user alone is mapped ("single"): the image's files all belong to the
// user, and a build cannot run as another uid. builder.HostIDMap reads the
// mode back inside.
package rootless

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/internal/exitcode"
)

// syncEnv names the descriptor on which the child waits for its id
// mappings (ranged mode only: newuidmap writes them after the child starts).
const syncEnv = "BUILDGUARD_ROOTLESS_SYNC"

// Plan is the namespace Enter makes.
type Plan struct {
	builder.Rootless
	// NewUIDMap and NewGIDMap are the mapping tools (ranged mode).
	NewUIDMap, NewGIDMap string
}

// Decide says which namespace an unprivileged user gets: ranged when its
// subordinate ids and the mapping tools are there, single otherwise, with
// the reason in Plan.Why.
func Decide() (Plan, error) {
	uid, gid := os.Getuid(), os.Getgid()
	p := Plan{Rootless: builder.Rootless{Mode: builder.IDMapSingle, UID: uint32(uid), GID: uint32(gid)}} //nolint:gosec // ids are 32-bit and never negative
	m, err := builder.SubIDMap(uid)
	switch {
	case errors.Is(err, builder.ErrNoSubIDs):
		p.Why = err.Error()
		return p, nil
	case err != nil:
		return p, err
	}
	var err1, err2 error
	p.NewUIDMap, err1 = exec.LookPath("newuidmap")
	p.NewGIDMap, err2 = exec.LookPath("newgidmap")
	if err1 != nil || err2 != nil {
		p.Why = "newuidmap or newgidmap is not installed (apt-get install -y uidmap)"
		return p, nil
	}
	p.Mode = builder.IDMapRanged
	p.SubUID, p.SubGID, p.Count = m.UID, m.GID, m.Size
	return p, nil
}

// Enter runs this command again in the namespace, unless it is root (or
// already inside): then it returns false and the caller goes on. Otherwise
// it waits for the command and returns true with an error that carries the
// command's exit status (and says nothing more: the command has spoken).
func Enter(ctx context.Context) (bool, error) {
	if os.Geteuid() == 0 {
		return false, nil
	}
	p, err := Decide()
	if err != nil {
		return true, exitcode.WithCode(exitcode.Incomplete, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return true, exitcode.WithCode(exitcode.Incomplete, fmt.Errorf("rootless: finding this program: %w", err))
	}
	cmd := exec.Command(exe, os.Args[1:]...) // #nosec G702 -- this program again, with the arguments it was given
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), builder.RootlessEnv+"="+p.Encode())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	var w *os.File
	if p.Mode == builder.IDMapSingle {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(p.UID), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(p.GID), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	} else {
		var r *os.File
		if r, w, err = os.Pipe(); err != nil {
			return true, exitcode.WithCode(exitcode.Incomplete, err)
		}
		defer r.Close()
		defer w.Close()
		cmd.ExtraFiles = []*os.File{r}
		cmd.Env = append(cmd.Env, syncEnv+"=3")
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return true, exitcode.WithCode(exitcode.Incomplete, fmt.Errorf("rootless: creating a user namespace: %w "+
			"(run `buildguard doctor` to see what this machine lacks)", err))
	}
	if w != nil {
		if err := p.writeMaps(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return true, exitcode.WithCode(exitcode.Incomplete, err)
		}
		_, _ = w.Write([]byte{1})
		_ = w.Close()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s) // the command stops its builds itself
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			ctx = context.Background()
		case err := <-done:
			var ee *exec.ExitError
			switch {
			case err == nil:
				return true, nil
			case errors.As(err, &ee) && ee.ExitCode() >= 0:
				return true, exitcode.WithCode(ee.ExitCode(), errSilent)
			default:
				return true, exitcode.WithCode(exitcode.Incomplete, fmt.Errorf("rootless: %w", err))
			}
		}
	}
}

// errSilent is the error of a command that has printed its own.
var errSilent = silent{}

type silent struct{}

func (silent) Error() string { return "" }

// writeMaps maps 0 to the user and 1..Count to its subordinate ids in the
// user namespace of pid.
func (p Plan) writeMaps(pid int) error {
	for _, m := range []struct {
		tool      string
		own, base uint32
	}{{p.NewUIDMap, p.UID, p.SubUID}, {p.NewGIDMap, p.GID, p.SubGID}} {
		args := []string{strconv.Itoa(pid), "0", strconv.Itoa(int(m.own)), "1", "1", strconv.Itoa(int(m.base)), strconv.Itoa(int(p.Count))}
		if out, err := exec.Command(m.tool, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("rootless: %s %s: %w: %s (run `buildguard doctor`)", m.tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Child is called first thing in main: in a ranged namespace it waits
// until the parent has written the id mappings, so that nothing runs with
// the overflow ids, and then starts again as the namespace's root.
func Child() {
	fd := os.Getenv(syncEnv)
	if fd == "" {
		return
	}
	_ = os.Unsetenv(syncEnv)
	n, err := strconv.Atoi(fd)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(n), "rootless-sync")
	b := make([]byte, 1)
	_, err = f.Read(b)
	_ = f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildguard: rootless: the id mappings were never written")
		os.Exit(exitcode.Incomplete)
	}
	// This process was executed before its ids were mapped, so it lost the
	// namespace's capabilities at that execve; executed again as the
	// namespace's root, it has them.
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, os.Environ()) // #nosec G702 -- this program again, as it was started
	}
	fmt.Fprintf(os.Stderr, "buildguard: rootless: starting again in the user namespace: %v\n", err)
	os.Exit(exitcode.Incomplete)
}

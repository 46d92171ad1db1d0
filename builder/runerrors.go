package builder

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sentinel errors of Run, for errors.Is.
var (
	// ErrRuntimeMissing is matched when a runtime is not installed.
	ErrRuntimeMissing = errors.New("OCI runtime not found")
	// ErrRuntimeUnusable is matched when a runtime is installed but cannot
	// start a container on this machine.
	ErrRuntimeUnusable = errors.New("OCI runtime cannot start a container here")
	// ErrRuntimeUnsupported is matched when a runtime name is not one Run
	// knows.
	ErrRuntimeUnsupported = errors.New("runtime not supported")
	// ErrTimeout is matched by a TimeoutError.
	ErrTimeout = errors.New("build timed out")
	// ErrBuildFailed is matched by a BuildError.
	ErrBuildFailed = errors.New("build failed")
	// ErrSpecialOutput is matched by an OutputError.
	ErrSpecialOutput = errors.New("build output holds special files")
	// ErrNoSpace is matched by a NoSpaceError.
	ErrNoSpace = errors.New("no space left on this machine's disk")
)

// RuntimeError is a runtime that is missing, unsupported, or could not start
// the container. The build did not run.
type RuntimeError struct {
	// Runtime is the runtime's name as asked for (crun, runc, auto, ...).
	Runtime string
	// Err says what went wrong, and what to install where that helps.
	Err error
}

func (e *RuntimeError) Error() string {
	return fmt.Sprintf("runtime %s: %v (run `buildguard doctor` to see what this machine lacks)", e.Runtime, e.Err)
}

// Unwrap returns the cause.
func (e *RuntimeError) Unwrap() error { return e.Err }

// ExitCode is 3: the guard could not run the build.
func (e *RuntimeError) ExitCode() int { return exitIncomplete }

// StepError is a Step that cannot be run as given: a usage or configuration
// error found before anything started.
type StepError struct {
	// Field names the Step field, e.g. "Workdir".
	Field string
	// Err says what is wrong with it.
	Err error
}

func (e *StepError) Error() string { return fmt.Sprintf("build step %s: %v", e.Field, e.Err) }

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// ExitCode is 2: the step needs fixing, nothing ran.
func (e *StepError) ExitCode() int { return exitUsage }

func stepErrorf(field, format string, args ...any) error {
	return &StepError{Field: field, Err: fmt.Errorf(format, args...)}
}

// TimeoutError is a build that ran past its timeout and was killed. It is a
// failed run, told apart from a build that exited non-zero (BuildError).
type TimeoutError struct {
	// Timeout is the limit the build ran past.
	Timeout time.Duration
	// BeforeStart: the timeout ran out while the runtime was still making
	// the container, before the build's first process ran.
	BeforeStart bool
}

func (e *TimeoutError) Error() string {
	if e.BeforeStart {
		return fmt.Sprintf("build killed after its timeout of %s, before the runtime had started it (the timeout counts from the runtime's start: allow for the container's start)", e.Timeout)
	}
	return fmt.Sprintf("build killed after its timeout of %s", e.Timeout)
}

// Is matches ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// ExitCode is 3: the build did not complete, so nothing could be checked.
func (e *TimeoutError) ExitCode() int { return exitIncomplete }

// BuildError is a build command that exited with a non-zero status.
type BuildError struct {
	// Status is the command's exit status (128+N when killed by signal N).
	Status int
	// Log is the build log's path, when one was written.
	Log string
}

func (e *BuildError) Error() string {
	if e.Log == "" {
		return fmt.Sprintf("build exited with status %d", e.Status)
	}
	return fmt.Sprintf("build exited with status %d (log: %s)", e.Status, e.Log)
}

// Is matches ErrBuildFailed.
func (e *BuildError) Is(target error) bool { return target == ErrBuildFailed }

// ExitCode is 1: the build step failed, so there is nothing to publish.
func (e *BuildError) ExitCode() int { return exitFail }

// OutputError is a build output that holds entries that cannot be
// published as files: devices, fifos, sockets, setuid or setgid files.
type OutputError struct {
	// Paths lists the offending entries, sorted, relative to the output
	// directory, each with what it is ("run/x.sock (socket)").
	Paths []string
}

func (e *OutputError) Error() string {
	const show = 10
	p := e.Paths
	more := ""
	if len(p) > show {
		more = fmt.Sprintf(" and %d more", len(p)-show)
		p = p[:show]
	}
	return fmt.Sprintf("build output holds special files: %s%s", strings.Join(p, ", "), more)
}

// Is matches ErrSpecialOutput.
func (e *OutputError) Is(target error) bool { return target == ErrSpecialOutput }

// ExitCode is 1: the output is refused.
func (e *OutputError) ExitCode() int { return exitFail }

// NoSpaceError is a file system of this machine that ran full while the
// guard wrote to it: the run directory that holds a run's copy of the source
// (under TMPDIR), the rootfs cache, or the dependency cache. It is the machine's condition, not the
// step's: nothing is wrong with the build, and no other runtime would do
// better.
type NoSpaceError struct {
	// Dir is the directory that was being written: TMPDIR, or the cache.
	Dir string
	// What names it for the reader ("the run directories").
	What string
	// Setting is the environment variable that moves it elsewhere.
	Setting string
	// Free is the space left there after the failure (and after what was
	// written of it was removed), in bytes, or -1 when it could not be read.
	Free int64
	// Need is the space the write wanted, in bytes, where it is known
	// (a run's copies of its source and writable inputs), else 0.
	Need int64
	// Err is the write that failed.
	Err error
}

func (e *NoSpaceError) Error() string {
	free := "unknown"
	if e.Free >= 0 {
		free = mib(e.Free)
	}
	need := ""
	if e.Need > 0 {
		need = ", and the copies need " + mib(e.Need)
	}
	return fmt.Sprintf("%v: the file system of %s (%s) ran out of space: %s free%s; free space there (df -h %s), or set %s to a directory on a larger one",
		e.Err, e.What, e.Dir, free, need, e.Dir, e.Setting)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Unwrap returns the failed write, which matches syscall.ENOSPC (or EDQUOT).
func (e *NoSpaceError) Unwrap() error { return e.Err }

// Is matches ErrNoSpace.
func (e *NoSpaceError) Is(target error) bool { return target == ErrNoSpace }

// ExitCode is 3: the guard could not complete on this machine.
func (e *NoSpaceError) ExitCode() int { return exitIncomplete }

// NoSpace returns err as a NoSpaceError about dir (named by what, moved by
// the setting) when a write failed for want of space (ENOSPC, or EDQUOT for
// a user's quota), and nil otherwise. The dependency cache's writer, which
// is not this package, tells its full disk the same way.
func NoSpace(err error, dir, what, setting string) *NoSpaceError {
	if err == nil || !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return nil
	}
	if ns := (*NoSpaceError)(nil); errors.As(err, &ns) {
		return ns
	}
	return &NoSpaceError{Dir: dir, What: what, Setting: setting, Free: freeOrUnknown(dir), Err: err}
}

// FreeBytes is the space an unprivileged user may still use on path's file
// system (statfs(2) f_bavail; root may use a little more).
func FreeBytes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil //nolint:gosec // Bsize is a positive block size
}

// freeOrUnknown is FreeBytes as NoSpaceError.Free keeps it: -1 when it
// cannot be read.
func freeOrUnknown(dir string) int64 {
	n, err := FreeBytes(dir)
	if err != nil || n > math.MaxInt64 {
		return -1
	}
	return int64(n)
}

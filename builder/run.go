package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/buildguard/buildguard/evidence"
)

// Step is one build step: a command run in an unpacked builder image, with
// the source read-only and an empty output directory. The zero value of
// every optional field is the strict choice.
type Step struct {
	// Rootfs is the image's root filesystem, as Cache.Unpack returns it. It
	// is never written: the build sees it through a read-only overlay.
	Rootfs string
	// ImagePath is PATH from the image config; empty means DefaultPath.
	ImagePath string
	// Command is the argv to run (not a shell line).
	Command []string
	// Workdir is where Source is mounted read-only, and the command's
	// working directory; empty means DefaultWorkdir.
	Workdir string
	// Source is the host directory holding the source.
	Source string
	// Out is an existing, empty host directory, mounted read-write at
	// OutDir. The caller owns it; Run leaves the build's output in it.
	Out string
	// Env holds the variables the configuration sets (builder.env). They
	// may not set HOME or SOURCE_DATE_EPOCH.
	Env map[string]string
	// SourceDateEpoch is the build's SOURCE_DATE_EPOCH (see
	// SourceDateEpoch).
	SourceDateEpoch int64
	// Timeout is the wall-clock limit of the build; 0 means none.
	Timeout time.Duration
	// Runtime is "auto" (or empty), "crun" or "runc".
	Runtime string
	// Memory and Pids limit the build through the runtime's cgroups when
	// the host allows; 0 means no limit. Result says whether they applied.
	Memory int64
	Pids   int64
	// LimitsRequired makes Memory and Pids limits that cgroups cannot
	// apply a *RuntimeError (exit 3). Otherwise the rlimits that stand in
	// are applied (RLIMIT_AS for memory, RLIMIT_NPROC for pids), and the
	// sandbox record says so.
	LimitsRequired bool
	// Log is the path of the build log to write: stdout and stderr in one
	// stream (runc copies the two through separate pipes, so their relative
	// order is only as exact as crun's); empty means none.
	Log string
	// MaxLog caps the log in bytes; 0 means DefaultMaxLog. Output beyond it
	// is counted and dropped, and a note at the end says so.
	MaxLog int64
	// MaxOutputEntries bounds the entries of the output tree; 0 means
	// DefaultMaxOutputEntries. A larger output fails the run.
	MaxOutputEntries int64
	// Stream, when set, receives the output as it comes, each line starting
	// with Prefix (e.g. "build | ").
	Stream io.Writer
	Prefix string
	// Sandbox varies what a reproducible build must not depend on; the zero
	// value is the control sandbox.
	Sandbox Sandbox
	// Inputs are host files and directories the build sees beside its
	// source (verified dependencies, a variation's library), mounted in
	// order after the source and /out.
	Inputs []Input
	// IDs is the user namespace the build runs in; its zero value means
	// HostIDMap. Rootfs must have been unpacked for it (UnpackMapped).
	IDs IDMap
	// Scratch bounds the disk space the build's writable copies (its
	// source and writable inputs) may take, in bytes; 0 means
	// DefaultScratch. A build past it is killed (ScratchError).
	Scratch int64
}

// DefaultScratch is Step.Scratch when it is 0.
const DefaultScratch = 16 << 30

// ScratchEnforcement says how Step.Scratch is enforced: by measuring the
// run's writable copies every scratchInterval and killing the build past
// it, since no file-system quota is assumed.
const ScratchEnforcement = "watched"

// ScratchLimit is the bound Step.Scratch sets.
func (s *Step) ScratchLimit() int64 { return s.scratch() }

// scratchInterval is how often the scratch space is measured.
const scratchInterval = 2 * time.Second

func (s *Step) scratch() int64 {
	if s.Scratch > 0 {
		return s.Scratch
	}
	return DefaultScratch
}

// Input is a host file or directory that the build sees.
type Input struct {
	// Source is the absolute host path of a file or directory.
	Source string
	// Destination is where the build sees it: an absolute path, or a
	// path relative to the workdir (inside the source's view).
	Destination string
	// Writable: the build may write there (npm writes into its cache). It
	// then sees a private copy, made for each run like the source's and
	// discarded with the run; Source is never written. Otherwise the
	// input is mounted read-only.
	Writable bool
}

// Sandbox holds the properties of the sandbox that reproducibility
// rebuilds vary. The zero value is the control: host name Hostname, no
// domain name, umask 022, uid and gid 0, the environment sorted by name.
type Sandbox struct {
	// Hostname and Domainname are set in the build's UTS namespace.
	Hostname   string
	Domainname string
	// Umask, when not nil, replaces 022.
	Umask *uint32
	// UID and GID run the build as another user; the output directory and
	// $HOME are given to that user.
	UID, GID uint32
	// ReverseEnv passes the environment in reverse order.
	ReverseEnv bool
	// ClockOffset, when not zero, shifts the wall clock that the build's
	// dynamically linked programs read, through libfaketime, where the
	// host has it and the image's glibc can load it (see faketime.go);
	// Result.FakeClock says whether it did.
	ClockOffset time.Duration
}

// Result is what a run did. Run returns it whenever a container started,
// also alongside a TimeoutError, BuildError or OutputError.
type Result struct {
	// Image is the digest of the builder image, when Build ran the step.
	Image string
	// Runtime names the runtime that ran the build and its version.
	Runtime string
	// ExitCode is the command's exit status (128+N when killed by signal
	// N); -1 when it was killed for a timeout or cancellation.
	ExitCode int
	// TimedOut is set when the build ran past Step.Timeout and was killed.
	TimedOut bool
	// Duration is the wall-clock time from starting the runtime until the
	// container was deleted.
	Duration time.Duration
	// Log is Step.Log; LogBytes is how much output it kept, and
	// LogTruncated says whether output was dropped for the cap.
	Log          string
	LogBytes     int64
	LogTruncated bool
	// Memory and Pids are the limits that were applied (0: none).
	Memory int64
	Pids   int64
	// ScratchBytes is the most the build's writable copies (its source
	// and writable inputs) took on disk, as last measured; ScratchExceeded
	// says it passed Step.Scratch and the build was killed.
	ScratchBytes    int64
	ScratchExceeded bool
	// Sandbox is the isolation the build had (report.json's
	// runs[].sandbox); set once the container started. The runtime
	// refuses to start a container whose seccomp filter or id mapping it
	// cannot install, so a build that ran had them.
	Sandbox *evidence.Sandbox
	// Notes say what was skipped, degraded or fallen back from, and why.
	Notes []string
	// Output is the manifest of the output directory, after a build that
	// exited 0.
	Output *Manifest
	// FakeClock is ClockLibfaketime when Sandbox.ClockOffset was applied
	// through libfaketime, and empty otherwise.
	FakeClock string
	// Unreached says, in plain sentences, what the step asked the sandbox
	// to vary that this image cannot be made to see (a clock offset without
	// a glibc that can load libfaketime, a locale without its data).
	Unreached []string
}

// Run runs s in a container of the first usable runtime and returns what
// happened. The container has no network (a fresh network namespace with
// loopback only), a read-only root, the source read-only, and only s's
// environment; see Step.Spec for the whole configuration.
//
// The error is nil only when the command exited 0 and its output was
// collected. A *StepError (exit code 2) is a step that cannot run as given;
// a *RuntimeError (3) a runtime that is missing or could not start the
// container; a *TimeoutError (3) a build killed at its timeout; a
// *BuildError (1) a command that exited non-zero; an *OutputError (1) an
// output holding special files. When ctx is cancelled the build is killed
// and ctx's error returned. In every case the container is deleted and the
// run's state directory removed before Run returns.
//
// With runtime auto, a runtime that cannot start the container (the build
// never ran) is skipped for the next one, and a note says why.
//
// Run runs as root, or as root of an unprivileged user's own user
// namespace (internal/rootless): the root is prepared in a private mount
// namespace (see sandbox.go), and the build always runs in a user
// namespace mapping s.IDs (see userns.go).
func Run(ctx context.Context, s Step) (_ *Result, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.MaxOutputEntries < 0 {
		return nil, stepErrorf("MaxOutputEntries", "must not be negative, got %d", s.MaxOutputEntries)
	}
	env, err := s.Environ()
	if err != nil {
		return nil, err
	}
	if err := lookCommand(s.Rootfs, s.Command[0], envValue(env, "PATH"), s.workdir()); err != nil {
		return nil, err
	}
	var fakeClock string
	unreached := s.missingLocales()
	if s.Sandbox.ClockOffset != 0 {
		shifted, faked, why := s.withFakeClock()
		switch {
		case faked:
			s, fakeClock = shifted, ClockLibfaketime
		default:
			unreached = append(unreached, "the clock was not shifted: "+why)
		}
	}
	if err := s.fillIDs(); err != nil {
		return nil, err
	}
	if s.IDs.Mode == IDMapSingle && (s.Sandbox.UID != 0 || s.Sandbox.GID != 0) {
		unreached = append(unreached, fmt.Sprintf("the build ran as uid 0, not %d: only the invoking user is mapped (%s)", s.Sandbox.UID, s.IDs.Source))
		s.Sandbox.UID, s.Sandbox.GID = 0, 0
	}
	if err := s.checkIDs(); err != nil {
		return nil, err
	}
	if s.Runtime == RuntimeRunsc && s.IDs.Mode == IDMapSingle {
		return nil, &RuntimeError{Runtime: RuntimeRunsc, Err: fmt.Errorf("%w: runsc needs a subordinate id range: gVisor's sandbox runs as nobody, "+
			"whom a single-id user namespace does not map (%s); give the user a range with `%s`, or use runtime auto",
			ErrRuntimeUnusable, s.IDs.Source, SubIDFix(invokingUser()))}
	}
	// The build's user owns the output directory while it runs; the
	// invoking user owns what it leaves there.
	if err := os.Lchown(s.Out, int(s.IDs.HostUID(s.Sandbox.UID)), int(s.IDs.HostGID(s.Sandbox.GID))); err != nil {
		return nil, &StepError{Field: "Out", Err: err}
	}
	defer func() {
		if cerr := giveBack(s.Out, s.MaxOutputEntries); cerr != nil && err == nil {
			err = fmt.Errorf("giving the output back to the invoking user: %w", cerr)
		}
	}()
	rts, notes, err := candidates(ctx, s.Runtime)
	if err != nil {
		return nil, err
	}
	var failures []string
	for _, rt := range rts {
		res, started, err := runWith(ctx, rt, &s)
		if started {
			res.Notes = append(notes, res.Notes...)
			if rt.Name == RuntimeRunsc {
				if s.Sandbox.Umask != nil && *s.Sandbox.Umask != 0o022 {
					unreached = append(unreached, fmt.Sprintf("the umask was not varied: %s ignores the spec's process.user.umask, so the build ran with 0022", rt))
				}
				if s.Sandbox.ReverseEnv {
					unreached = append(unreached, fmt.Sprintf("the environment's order was not reversed: %s does not keep the order it is given", rt))
				}
			}
			switch {
			case s.Sandbox.Domainname == "" || rt.setsDomainname():
			case rt.Name == RuntimeRunsc:
				unreached = append(unreached, fmt.Sprintf("the domain name was not set: %s keeps none a build can read (crun, or runc 1.2 and later, set it)", rt))
			default:
				unreached = append(unreached, fmt.Sprintf("the domain name was not set: %s sets it only through the kernel.domainname sysctl, "+
					"which the build's user namespace cannot write (crun, or runc 1.2 and later, set it)", rt))
			}
			if s.IDs.Mode == IDMapSingle {
				// In Unreached, so that the report says it.
				unreached = append(unreached, "single-id user namespace: every file of the image belongs to the build's uid 0 "+
					"(the owners the image gives are not kept), and the build cannot run as another uid ("+s.IDs.Source+")")
			}
			res.FakeClock, res.Unreached = fakeClock, unreached
			return res, err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if se := (*StepError)(nil); errors.As(err, &se) {
			return nil, err
		}
		if errors.Is(err, ErrNoSpace) {
			return nil, err
		}
		failures = append(failures, fmt.Sprintf("%s: %v", rt, err))
		if res != nil {
			notes = append(notes, res.Notes...)
		}
		notes = append(notes, fmt.Sprintf("runtime %s could not start the build: %v", rt, err))
	}
	name := s.Runtime
	if name == "" {
		name = RuntimeAuto
	}
	hint := "; try another runtime (auto tries " + strings.Join(RuntimeOrder, ", then ") + ")"
	if name == RuntimeAuto {
		hint = "; run where one of " + strings.Join(RuntimeOrder, ", ") + " can start a container"
	}
	return nil, &RuntimeError{Runtime: name, Err: fmt.Errorf("%w: %s%s", ErrRuntimeUnusable, strings.Join(failures, "; "), hint)}
}

// runWith runs s with rt, first with the limits s asks for and, when the
// container does not start with them, once more without. started reports
// whether the build's container was created (the command may have run).
func runWith(ctx context.Context, rt *Runtime, s *Step) (*Result, bool, error) {
	mode := detectCgroups()
	hide := rt.Name == RuntimeCrun && mode == cgroupHybrid
	var notes []string
	if hide && RootlessMode() != nil {
		// The cgroup2 mount came with the user namespace: it is locked
		// there, and unmounting it fails (EINVAL).
		return nil, false, &RuntimeError{Runtime: rt.Name, Err: fmt.Errorf("%w: %s refuses hybrid cgroups (v1 with a cgroup2 mount at %s/unified), "+
			"and a rootless build cannot remove that mount from its namespace (it is locked there); runc runs on such hosts", ErrRuntimeUnusable, rt, cgroupRoot)}
	}
	if hide {
		mode = cgroupV1
		notes = append(notes, fmt.Sprintf("%s refuses hybrid cgroups (v1 with a cgroup2 mount at %s/unified): "+
			"it runs in a private mount namespace with that mount removed, so it sees cgroup v1", rt, cgroupRoot))
	}
	withLimits := s.Memory > 0 || s.Pids > 0
	// unlimited says why cgroups could not apply the limits, for the
	// sandbox record (without run-specific text, which would make the
	// report differ between runs).
	var unlimited string
	if withLimits {
		if ok, why := limitsUsable(mode); !ok {
			if s.LimitsRequired {
				return nil, false, &RuntimeError{Runtime: rt.Name, Err: fmt.Errorf("%w: memory and pids limits cannot be applied (%s), and builder.limits.required is set", ErrRuntimeUnusable, why)}
			}
			withLimits, unlimited = false, why
			notes = append(notes, "memory and pids limits not applied: "+why)
		}
	}
	res, started, err := attempt(ctx, rt, s, hide, withLimits)
	if !started && withLimits && ctx.Err() == nil {
		first := err
		if s.LimitsRequired {
			return res, false, fmt.Errorf("%s did not start the container with the memory and pids limits, and builder.limits.required is set: %w", rt, first)
		}
		res, started, err = attempt(ctx, rt, s, hide, false)
		if started {
			unlimited = fmt.Sprintf("%s did not start the container with them", rt)
			notes = append(notes, fmt.Sprintf("memory and pids limits not applied: %s did not start the container with them (%v)", rt, first))
		}
	}
	if res == nil {
		res = &Result{}
	}
	if res.Sandbox != nil && unlimited != "" {
		res.Sandbox.Limits.Reason = "cgroups could not be used (" + unlimited + "), so rlimits stand in"
	}
	res.Notes = append(notes, res.Notes...)
	return res, started, err
}

// attempt runs the container once.
func attempt(ctx context.Context, rt *Runtime, s *Step, hide, withLimits bool) (*Result, bool, error) {
	flags := uintptr(lockedRootFlags)
	if rt.Name == RuntimeRunsc {
		flags = 0
	}
	sb, err := newSandbox(sandboxOptions{rootfs: s.Rootfs, hideUnified: hide, rootFlags: flags,
		uid: int(s.IDs.HostUID(0)), gid: int(s.IDs.HostGID(0)),
		mountpoints: []string{"/proc", "/dev", "/sys", "/tmp", OutDir, Home, s.workdir()}})
	if err != nil {
		if ns := NoSpace(err, os.TempDir(), "the run directories", "TMPDIR"); ns != nil {
			return nil, false, ns
		}
		return nil, false, err
	}
	defer sb.close()
	res := &Result{Runtime: rt.String(), ExitCode: -1, Log: s.Log, Notes: sb.notes}
	view, err := s.privateCopies(sb.dir)
	if err != nil {
		// The source (or a writable input) cannot be copied: no runtime
		// would do better.
		if ns := NoSpace(err, os.TempDir(), "the run directories", "TMPDIR"); ns != nil {
			// Give the space back, then say what is free and what the
			// copies need.
			_ = removeTree(sb.writable())
			ns.Free, ns.Need = freeOrUnknown(ns.Dir), s.copiesSize()
			return res, false, ns
		}
		return res, false, &StepError{Field: "Source", Err: err}
	}
	if view.Out, err = sb.bind(s.Out, "out"); err != nil {
		return res, false, err
	}
	for i, in := range view.Inputs {
		if !in.Writable {
			if view.Inputs[i].Source, err = sb.bind(in.Source, fmt.Sprintf("input-%d", i)); err != nil {
				return res, false, err
			}
		}
	}
	for i, in := range view.Inputs {
		if in.Writable {
			view.Inputs[i].Source = sb.seen(in.Source)
		}
	}
	sp, err := view.Spec(sb.seen(sb.root), sb.seen(filepath.Join(sb.writable(), "source")), withLimits)
	if err != nil {
		return res, false, err
	}
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return res, false, err
	}
	if err := os.WriteFile(filepath.Join(sb.dir, "config.json"), b, 0o600); err != nil {
		return res, false, fmt.Errorf("writing config.json: %w", err)
	}
	sink := &logSink{stream: s.Stream, prefix: []byte(s.Prefix), max: s.MaxLog}
	if sink.max == 0 {
		sink.max = DefaultMaxLog
	}
	if s.Log != "" {
		f, err := os.OpenFile(s.Log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return res, false, fmt.Errorf("creating the build log: %w", err)
		}
		defer f.Close()
		sink.file = f
	}
	id := containerID()
	rc := &runtimeCmd{rt: rt, sb: sb, id: id, cgroups: withLimits}
	pidFile := filepath.Join(sb.dir, "pid")
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, false, err
	}
	cmd := rc.command("run", "--bundle", sb.dir, "--pid-file", pidFile, id)
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := sb.start(cmd); err != nil {
		_, _ = pw.Close(), pr.Close()
		return res, false, fmt.Errorf("starting %s: %w", rt.Path, err)
	}
	_ = pw.Close() // the runtime holds its own copy
	pumped := make(chan struct{})
	go func() { sink.pump(pr); close(pumped) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var timeout <-chan time.Time
	if s.Timeout > 0 {
		t := time.NewTimer(s.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	full := make(chan struct{})
	watch := watchScratch(sb.writable(), s.scratch(), scratchInterval, func() { close(full) })
	var waitErr, stopErr error
	beforeStart := false // the timeout ran out before the runtime wrote the pid file
	select {
	case waitErr = <-done:
	case <-timeout:
		res.TimedOut = true
		_, perr := os.Stat(pidFile)
		beforeStart = perr != nil
		waitErr, stopErr = rc.stop(cmd, done)
	case <-full:
		waitErr, stopErr = rc.stop(cmd, done)
	case <-ctx.Done():
		waitErr, stopErr = rc.stop(cmd, done)
	}
	res.ScratchExceeded = watch.close()
	res.ScratchBytes = watch.peak.Load()
	delErr := rc.run(30*time.Second, "delete", "--force", id)
	removeCgroups(id)
	select {
	case <-pumped:
	case <-time.After(10 * time.Second):
		_ = pr.Close() // a process outside the container held the pipe open
		<-pumped
	}
	res.Duration = time.Since(start)
	res.LogBytes, res.LogTruncated = sink.kept, sink.dropped > 0
	if res.LogTruncated {
		res.Notes = append(res.Notes, fmt.Sprintf("the build log was cut at %d bytes (raise with %s)", sink.max, limitSettings["MaxLog"]))
	}
	_, perr := os.Stat(pidFile)
	started := perr == nil
	if !started {
		if res.TimedOut {
			// The timeout ran out while the runtime was still making the
			// container: the build's own bound, not a runtime to fall
			// back from (another would start the clock again).
			return res, true, errors.Join(&TimeoutError{Timeout: s.Timeout, BeforeStart: beforeStart}, stopErr, delErr)
		}
		return res, false, rc.failure(waitErr)
	}
	if withLimits {
		res.Memory, res.Pids = s.Memory, s.Pids
	}
	res.Sandbox = s.record(rt, res)
	switch {
	case ctx.Err() != nil:
		return res, true, errors.Join(ctx.Err(), stopErr, delErr)
	case res.TimedOut:
		return res, true, errors.Join(&TimeoutError{Timeout: s.Timeout, BeforeStart: beforeStart}, stopErr, delErr)
	case res.ScratchExceeded:
		// A build that broke its bound: a failed build (recorded, and
		// decided by policy), whose log ends with why it was stopped.
		se := &ScratchError{Max: s.scratch(), Used: res.ScratchBytes}
		if sink.file != nil {
			_, _ = fmt.Fprintf(sink.file, "\nbuildguard: the build was killed: %v\n", se)
		}
		res.Notes = append(res.Notes, se.Error())
		return res, true, errors.Join(&BuildError{Status: res.ExitCode, Log: s.Log}, se, stopErr, delErr)
	}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		res.ExitCode = 0
	case errors.As(waitErr, &ee) && ee.ExitCode() >= 0:
		res.ExitCode = ee.ExitCode()
	default:
		return res, true, &RuntimeError{Runtime: rt.Name, Err: fmt.Errorf("waiting for %s: %w", rt.Path, waitErr)}
	}
	if delErr != nil {
		return res, true, &RuntimeError{Runtime: rt.Name, Err: delErr}
	}
	if sink.err != nil {
		return res, true, sink.err
	}
	if res.ExitCode != 0 {
		return res, true, &BuildError{Status: res.ExitCode, Log: s.Log}
	}
	m, err := HashTreeMax(ctx, s.Out, s.MaxOutputEntries)
	if err != nil {
		return res, true, fmt.Errorf("collecting the output: %w", err)
	}
	res.Output = m
	if sp := m.Special(); len(sp) > 0 {
		return res, true, &OutputError{Paths: sp}
	}
	return res, true, nil
}

// containerID returns a fresh container name: buildguard-<pid>-<random>,
// so that what a process left behind can be told from another's.
func containerID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return fmt.Sprintf("buildguard-%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// envValue returns the value of name in env ("NAME=value" entries).
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// invokingUser names the user buildguard runs as on the host (for a fix
// to print), or its uid when it has no name.
func invokingUser() string {
	uid := os.Getuid()
	if r := RootlessMode(); r != nil {
		uid = int(r.UID)
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The build has no capabilities, cannot gain privileges, runs in its own
// pid namespace (it is pid 1 there) and UTS namespace, and its open-files
// limit is within the host's hard limit.
func TestRunPrivileges(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status
echo pid=$$; echo host=$(cat /proc/sys/kernel/hostname); ulimit -n; ulimit -c`)...)
		res := mustRun(t, s)
		log := logText(t, res)
		caps, wants := []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}, []string{"NoNewPrivs:\t1", "pid=1\n", "host=" + Hostname + "\n", "\n0\n"}
		if rt == RuntimeRunsc {
			// gVisor's kernel shows no CapAmb or NoNewPrivs line.
			caps, wants = caps[:4], wants[1:]
		}
		for _, c := range caps {
			if !strings.Contains(log, c+":\t0000000000000000") {
				t.Errorf("%s is not empty:\n%s", c, log)
			}
		}
		for _, want := range wants {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
	})
}

// The pids limit holds where the host's cgroups allow it, and when it is
// not applied, a note says why.
func TestRunPidsLimit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo forked $i`)...)
		s.Pids, s.Memory = 16, 256<<20
		s.Timeout = time.Minute
		res, err := Run(context.Background(), s)
		if res == nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Pids == 0 {
			if !strings.Contains(strings.Join(res.Notes, "\n"), "not applied") {
				t.Fatalf("limits not applied and no note says why: %q", res.Notes)
			}
			t.Skipf("limits not applied on this host: %q", res.Notes)
		}
		if res.Memory != s.Memory {
			t.Errorf("Memory = %d, want %d", res.Memory, s.Memory)
		}
		if !errors.Is(err, ErrBuildFailed) || strings.Contains(logText(t, res), "forked 40") {
			t.Errorf("40 processes under a pids limit of 16: %v\n%s", err, logText(t, res))
		}
		if !strings.Contains(logText(t, res), "can't fork") {
			t.Errorf("no fork failed under a pids limit of 16:\n%s", logText(t, res))
		}
	})
}

// Memory beyond the limit gets the build killed.
func TestRunMemoryLimit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1")
		s.Memory = 32 << 20
		res, err := Run(context.Background(), s)
		if res != nil && res.Memory == 0 {
			t.Skipf("memory limit not applied on this host: %q", res.Notes)
		}
		if !errors.Is(err, ErrBuildFailed) {
			t.Fatalf("a 200 MiB buffer under a 32 MiB limit: got %v, want a failed build", err)
		}
	})
}

// The log is capped with a note, and streamed with a prefix on every line.
func TestRunLogCapAndStream(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`echo first; echo second >&2; sleep 0.2; yes line | head -n 5000`)...)
		var stream bytes.Buffer
		s.Stream, s.Prefix, s.MaxLog = &stream, "build | ", 1000
		res := mustRun(t, s)
		log := logText(t, res)
		if !res.LogTruncated || res.LogBytes != 1000 {
			t.Errorf("LogTruncated %v, LogBytes %d; want true, 1000", res.LogTruncated, res.LogBytes)
		}
		// runc copies stdout and stderr through separate pipes, so their
		// relative order is not kept (the sleep lets both arrive before the
		// flood of lines).
		if head := log[:min(len(log), 13)]; head != "first\nsecond\n" && head != "second\nfirst\n" {
			t.Errorf("log does not start with stdout and stderr: %q", log[:min(len(log), 40)])
		}
		wantNote := fmt.Sprintf("[buildguard: log truncated: %d more bytes", 6+7+5000*5-1000)
		if !strings.Contains(log, wantNote) {
			t.Errorf("log lacks the truncation note %q: ...%q", wantNote, log[max(0, len(log)-120):])
		}
		for i, l := range strings.Split(strings.TrimSuffix(stream.String(), "\n"), "\n") {
			if !strings.HasPrefix(l, "build | ") {
				t.Fatalf("streamed line %d lacks the prefix: %q", i, l)
			}
		}
		if !strings.Contains(stream.String(), "build | [buildguard: log truncated") {
			t.Error("the stream lacks the truncation note")
		}
	})
}

// The output manifest is collected after the build; a fifo in the output
// is refused.
func TestRunOutputManifest(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`mkdir /out/bin && echo app > /out/bin/app && chmod 755 /out/bin/app && ln -s bin/app /out/app`)...)
		res := mustRun(t, s)
		want, err := HashTree(context.Background(), s.Out)
		if err != nil {
			t.Fatal(err)
		}
		if res.Output == nil || res.Output.Digest() != want.Digest() || len(want.Entries) != 3 {
			t.Fatalf("Output = %+v, want %s", res.Output, want.Canonical())
		}
		s = busyboxStep(t, rt, sh(`mkfifo /out/pipe; echo x > /out/file`)...)
		if rt == RuntimeRunsc {
			// gVisor keeps a fifo made on a host mount in its own kernel:
			// nothing special reaches the host's output.
			res = mustRun(t, s)
			if _, err := os.Lstat(filepath.Join(s.Out, "pipe")); !errors.Is(err, fs.ErrNotExist) || len(res.Output.Entries) != 1 {
				t.Errorf("the fifo reached the host (%v), or the output is not just the file: %s", err, res.Output.Canonical())
			}
			return
		}
		res, err = mustFail(t, s, ErrSpecialOutput)
		var oe *OutputError
		if !errors.As(err, &oe) || len(oe.Paths) != 1 || oe.Paths[0] != "pipe (fifo)" || res.Output == nil {
			t.Errorf("err = %v, want an OutputError naming pipe", err)
		}
	})
}

// Cancelling the context kills the build and still cleans up.
func TestRunCancel(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`echo started; sleep 986`)...)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Cancel once the build runs (its log says so), not at a fixed
		// time: on a loaded machine the runtime may not have started the
		// container (runsc takes about half a second idle) when a fixed
		// timer fires, and a cancel before the start is not this test.
		go func() {
			defer cancel()
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if b, _ := os.ReadFile(s.Log); bytes.Contains(b, []byte("started")) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		_, err := Run(ctx, s)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if p := findProcess(t, "986"); p != "" {
			t.Errorf("the build's sleep is still running: pid %s", p)
		}
	})
}

// A command the image does not have is a step error (exit 2) before any
// runtime starts, naming the PATH searched.
func TestRunCommandNotInImage(t *testing.T) {
	requireRoot(t)
	s := busyboxStep(t, RuntimeAuto, "go", "build")
	_, err := Run(context.Background(), s)
	var se *StepError
	if !errors.As(err, &se) || se.Field != "Command" || se.ExitCode() != exitUsage || !strings.Contains(err.Error(), "/bin") {
		t.Fatalf("err = %v, want a Command StepError naming PATH /bin", err)
	}
	for _, argv := range [][]string{{"/bin/sh", "-c", "true"}, {"./build.sh"}, {"/src/build.sh"}} {
		if err := lookCommand(s.Rootfs, argv[0], "/bin", DefaultWorkdir); err != nil {
			t.Errorf("lookCommand(%q): %v", argv[0], err)
		}
	}
}

// An explicit runtime that is not installed is a RuntimeError (exit 3)
// that says what to install; auto with none installed names both.
func TestRuntimeMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, rt := range []string{RuntimeCrun, RuntimeRunc} {
		_, err := LookupRuntime(context.Background(), rt)
		var re *RuntimeError
		if !errors.As(err, &re) || !errors.Is(err, ErrRuntimeMissing) || re.ExitCode() != exitIncomplete ||
			!strings.Contains(err.Error(), "apt-get install -y "+rt) {
			t.Errorf("LookupRuntime(%s) = %v, want a RuntimeError with the install line", rt, err)
		}
	}
	_, _, err := candidates(context.Background(), RuntimeAuto)
	if !errors.Is(err, ErrRuntimeMissing) || !strings.Contains(err.Error(), "apt-get install -y crun") ||
		!strings.Contains(err.Error(), "apt-get install -y runc") {
		t.Errorf("auto with no runtime: %v", err)
	}
	if _, err := LookupRuntime(context.Background(), "bwrap"); !errors.Is(err, ErrRuntimeUnsupported) {
		t.Errorf("LookupRuntime(bwrap) = %v, want ErrRuntimeUnsupported", err)
	}
}

// auto picks crun first; on a hybrid-cgroup host the result explains how
// crun was made to start.
func TestRunAutoOrderAndHybridNote(t *testing.T) {
	requireRoot(t)
	rts, _, err := candidates(context.Background(), RuntimeAuto)
	if err != nil {
		t.Skip(err)
	}
	res := mustRun(t, busyboxStep(t, RuntimeAuto, "true"))
	if !strings.Contains(res.Runtime, rts[0].Name) {
		t.Errorf("auto ran %q, want %s first", res.Runtime, rts[0].Name)
	}
	if rts[0].Name == RuntimeCrun && detectCgroups() == cgroupHybrid &&
		!strings.Contains(strings.Join(res.Notes, "\n"), "hybrid cgroups") {
		t.Errorf("crun on a hybrid host, but no note says so: %q", res.Notes)
	}
}

// When a runtime cannot start the container, auto falls back to the next
// one and says why. A fake crun that always fails stands in for a broken
// one, ahead of the real runc on PATH.
func TestRunAutoFallsBack(t *testing.T) {
	requireRoot(t)
	runc := harnessPathOrSkip(t, RuntimeRunc)
	bin := t.TempDir()
	fake := "#!/bin/sh\ncase \"$1\" in --version) echo 'crun version 0.0-broken';; *) echo 'crun: this host is broken' >&2; exit 1;; esac\n"
	if err := os.WriteFile(filepath.Join(bin, "crun"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(runc, filepath.Join(bin, "runc")); err != nil {
		t.Fatal(err)
	}
	auto, explicit := busyboxStep(t, RuntimeAuto, "true"), busyboxStep(t, RuntimeCrun, "true")
	t.Setenv("PATH", bin)
	versionCache.Clear()
	defer versionCache.Clear()
	res := mustRun(t, auto)
	if !strings.Contains(res.Runtime, "runc") {
		t.Errorf("ran with %q, want runc after crun failed", res.Runtime)
	}
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "crun version 0.0-broken could not start the build") {
		t.Errorf("no note explains the fallback: %q", res.Notes)
	}
	if _, err := Run(context.Background(), explicit); !errors.Is(err, ErrRuntimeUnusable) || !strings.Contains(err.Error(), "try another runtime") {
		t.Errorf("explicit broken crun: %v, want ErrRuntimeUnusable", err)
	}
}

func harnessPathOrSkip(t *testing.T, rt string) string {
	t.Helper()
	r, err := LookupRuntime(context.Background(), rt)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return r.Path
}

// Builds run side by side over one cached rootfs, each in its own sandbox.
func TestRunConcurrent(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		const n = 4
		steps := make([]Step, n)
		errs := make([]error, n)
		for i := range steps {
			steps[i] = busyboxStep(t, rt, sh(`echo %d > /out/n; sleep 0.3`, i)...)
		}
		done := make(chan struct{})
		for i := range steps {
			go func() {
				defer func() { done <- struct{}{} }()
				_, errs[i] = Run(context.Background(), steps[i])
			}()
		}
		for range steps {
			<-done
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("build %d: %v", i, err)
			} else if got := readFile(t, steps[i].Out, "n"); got != fmt.Sprintf("%d\n", i) {
				t.Errorf("build %d wrote %q", i, got)
			}
		}
	})
}

// When the runtime cannot start the container with the limits, the build
// runs with the rlimits that stand in (RLIMIT_NPROC for pids), and the
// result and its sandbox record say so; with LimitsRequired it does not run
// at all. A wrapper around the real runc that refuses any config.json with
// a pids limit stands in for a host whose cgroups lack the controller.
func TestRunLimitsDegrade(t *testing.T) {
	requireRoot(t)
	runc := harnessPathOrSkip(t, RuntimeRunc)
	bin := t.TempDir()
	// It finds the bundle and the runtime's JSON log among the arguments.
	wrapper := `#!/bin/sh
prev=
for a in "$@"; do
  [ "$prev" = --log ] && log=$a
  if [ "$prev" = --bundle ] && grep -q '"pids"' "$a/config.json"; then
    echo '{"level":"error","msg":"pids cgroup controller not available"}' >> "$log"
    exit 1
  fi
  prev=$a
done
exec ` + runc + ` "$@"
`
	if err := os.WriteFile(filepath.Join(bin, "runc"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	versionCache.Clear()
	defer versionCache.Clear()
	s := busyboxStep(t, RuntimeRunc, "sh", "-c", "ulimit -u")
	s.Pids = 64
	res := mustRun(t, s)
	if res.Pids != 0 {
		t.Errorf("Pids = %d, want 0 (not applied)", res.Pids)
	}
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "limits not applied") {
		t.Errorf("no note says the limits were not applied: %q", res.Notes)
	}
	if got := strings.TrimSpace(logText(t, res)); got != "64" {
		t.Errorf("ulimit -u in the build = %q, want 64 (RLIMIT_NPROC standing in for the pids limit)", got)
	}
	if l := res.Sandbox.Limits; !slices.Contains(l.Applied, "pids=64 (RLIMIT_NPROC)") || !strings.Contains(l.Reason, "rlimits stand in") ||
		!strings.Contains(l.Reason, "did not start the container with them") {
		t.Errorf("sandbox limits %+v, want pids=64 by RLIMIT_NPROC and the reason, saying why cgroups could not be used", l)
	}
	s = busyboxStep(t, RuntimeRunc, "true")
	s.Pids, s.LimitsRequired = 64, true
	var re *RuntimeError
	if _, err := Run(context.Background(), s); !errors.As(err, &re) || !strings.Contains(err.Error(), "builder.limits.required") {
		t.Errorf("with LimitsRequired: %v, want a RuntimeError naming builder.limits.required", err)
	}
}

package builder

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// plainStep is a valid step over temporary directories; no runtime needed.
func plainStep(t *testing.T) Step {
	t.Helper()
	tmp := t.TempDir()
	for _, d := range []string{"root", "src", "out"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Step{Rootfs: filepath.Join(tmp, "root"), Source: filepath.Join(tmp, "src"), Out: filepath.Join(tmp, "out"),
		Command: []string{"make"}, ImagePath: "/usr/bin:/bin", SourceDateEpoch: 42,
		Env: map[string]string{"Z": "last", "A": "first"}}
}

// The generated config holds every promise of the sandbox.
func TestSpec(t *testing.T) {
	s := plainStep(t)
	s.Memory, s.Pids = 1<<30, 100
	sp, err := s.Spec("/run/x/rootfs", "/run/x/src", true)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Root.Path != "/run/x/rootfs" || !sp.Root.Readonly {
		t.Errorf("root = %+v, want read-only", sp.Root)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range sp.Linux.Namespaces {
		if n.Path != "" {
			t.Errorf("namespace %s joins %s; want a fresh one", n.Type, n.Path)
		}
		ns = append(ns, n.Type)
	}
	for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace} {
		if !slices.Contains(ns, want) {
			t.Errorf("namespaces %v lack %s", ns, want)
		}
	}
	p := sp.Process
	c := p.Capabilities
	if c == nil || len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Errorf("capabilities = %+v, want a non-nil, empty set", c)
	}
	if !p.NoNewPrivileges || p.User.UID != 0 || p.Terminal || p.Cwd != DefaultWorkdir {
		t.Errorf("process = %+v", p)
	}
	want := []string{"A=first", "HOME=" + Home, "PATH=/usr/bin:/bin", "SOURCE_DATE_EPOCH=42", "Z=last"}
	if !slices.Equal(p.Env, want) {
		t.Errorf("env = %q, want %q", p.Env, want)
	}
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Rlimits {
		if r.Type == "RLIMIT_NOFILE" && (r.Hard > hard.Max || r.Soft > r.Hard) {
			t.Errorf("RLIMIT_NOFILE %+v exceeds the host's hard limit %d", r, hard.Max)
		}
	}
	mounts := map[string]specs.Mount{}
	for _, m := range sp.Mounts {
		mounts[m.Destination] = m
	}
	checks := []struct {
		dest, typ, source, opt string
	}{
		{DefaultWorkdir, "bind", "/run/x/src", "rw"},
		{OutDir, "bind", s.Out, "rw"},
		{"/tmp", "tmpfs", "tmpfs", "nodev"},
		{Home, "tmpfs", "tmpfs", "mode=700"},
		{"/proc", "proc", "proc", "nosuid"},
	}
	for _, c := range checks {
		m, ok := mounts[c.dest]
		if !ok || m.Type != c.typ || m.Source != c.source || !slices.Contains(m.Options, c.opt) {
			t.Errorf("mount %s = %+v, want %s from %s with %s", c.dest, m, c.typ, c.source, c.opt)
		}
	}
	r := sp.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != 1<<30 || r.Pids == nil || *r.Pids.Limit != 100 {
		t.Errorf("resources = %+v, want memory and pids limits", r)
	}
	sp, _ = s.Spec("/r", "/run/x/src", false)
	if sp.Linux.Resources.Memory != nil || sp.Linux.Resources.Pids != nil {
		t.Error("limits set although withLimits is false")
	}
}

func TestStepValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(s *Step)
		field string
	}{
		{"no command", func(s *Step) { s.Command = nil }, "Command"},
		{"relative rootfs", func(s *Step) { s.Rootfs = "root" }, "Rootfs"},
		{"relative workdir", func(s *Step) { s.Workdir = "src" }, "Workdir"},
		{"workdir /", func(s *Step) { s.Workdir = "/" }, "Workdir"},
		{"workdir /out", func(s *Step) { s.Workdir = OutDir }, "Workdir"},
		{"workdir under /tmp", func(s *Step) { s.Workdir = "/tmp/src" }, "Workdir"},
		{"workdir above home", func(s *Step) { s.Workdir = "/home" }, "Workdir"},
		{"workdir unclean", func(s *Step) { s.Workdir = "/src/../etc" }, "Workdir"},
		{"missing source", func(s *Step) { s.Source = "/nonexistent-buildguard" }, "Source"},
		{"env HOME", func(s *Step) { s.Env = map[string]string{"HOME": "/root"} }, "Env"},
		{"env SOURCE_DATE_EPOCH", func(s *Step) { s.Env = map[string]string{"SOURCE_DATE_EPOCH": "1"} }, "Env"},
		{"env name with =", func(s *Step) { s.Env = map[string]string{"A=B": "1"} }, "Env"},
		{"negative timeout", func(s *Step) { s.Timeout = -1 }, "Timeout"},
		{"tiny memory", func(s *Step) { s.Memory = 1000 }, "Memory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := plainStep(t)
			c.edit(&s)
			var se *StepError
			if err := s.Validate(); !errors.As(err, &se) || se.Field != c.field || se.ExitCode() != exitUsage {
				t.Errorf("Validate() = %v, want a StepError on %s", err, c.field)
			}
		})
	}
	s := plainStep(t)
	if err := s.Validate(); err != nil {
		t.Fatalf("valid step: %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.Out, "stale"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty Out: %v", err)
	}
}

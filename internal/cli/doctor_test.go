package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/doctor"
	"github.com/buildguard/buildguard/internal/exitcode"
)

// TestDoctorJSON runs the real checks on this machine: the JSON holds every
// check in order, and the exit code follows ready.
func TestDoctorJSON(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out, stderr, code := run(t, "doctor", "--json")
	var r struct {
		Ready  *bool `json:"ready"`
		Checks []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Detail string `json:"detail"`
			Fix    string `json:"fix"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Ready == nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	names := []string{"root", "runtime", "cgroups", "overlayfs", "userns", "subids", "uidmap", "libfaketime", "seccomp", "cache", "registries", "git"}
	if len(r.Checks) != len(names) {
		t.Fatalf("%d checks, want %d", len(r.Checks), len(names))
	}
	for i, c := range r.Checks {
		if c.Name != names[i] || c.Detail == "" {
			t.Errorf("check %d: %+v, want %s with a detail", i, c, names[i])
		}
		switch c.Status {
		case "ok", "warn", "missing":
		default:
			t.Errorf("%s: status %q", c.Name, c.Status)
		}
	}
	if want := map[bool]int{true: 0, false: 3}[*r.Ready]; code != want {
		t.Errorf("ready %v: exit %d, want %d; stderr %s", *r.Ready, code, want, stderr)
	}
}

func TestDoctorText(t *testing.T) {
	r := &doctor.Report{Checks: []doctor.Check{
		{Name: "subids", Status: doctor.StatusMissing, Detail: "root has no usable subordinate id range", Fix: "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root"},
		{Name: "runtime", Status: doctor.StatusOK, Detail: "crun version 1.8.1 (/usr/bin/crun)"},
		{Name: "libfaketime", Status: doctor.StatusWarn, Detail: "not installed", Fix: "apt-get install -y faketime libfaketime"},
	}}
	var out bytes.Buffer
	err := printDoctor(&out, r, false)
	want := `missing  subids: root has no usable subordinate id range — fix: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root
ok       runtime: crun version 1.8.1 (/usr/bin/crun)
warn     libfaketime: not installed — fix: apt-get install -y faketime libfaketime
not ready: missing subids (1 warning)
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if exitcode.Of(err) != exitcode.Incomplete || !strings.Contains(err.Error(), "missing subids") {
		t.Errorf("not ready: exit %d (%v), want 3", exitcode.Of(err), err)
	}

	r.Checks = r.Checks[1:]
	r.Ready = true
	out.Reset()
	if err := printDoctor(&out, r, false); err != nil || !strings.HasSuffix(out.String(), "ready: a guarded build can run on this machine (1 warning)\n") {
		t.Errorf("ready: %v\n%s", err, out.String())
	}
}

func TestDoctorUsage(t *testing.T) {
	_, stderr, code := run(t, "doctor", "now")
	if code != exitcode.Usage || !strings.Contains(stderr, "doctor takes no arguments") {
		t.Errorf("doctor now: exit %d, %s", code, stderr)
	}
}

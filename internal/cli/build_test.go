package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// busyboxBuilder pushes a busybox builder image (Debian's busybox-static,
// PATH=/bin) to a registry on loopback and returns its pinned reference.
func busyboxBuilder(t *testing.T) string {
	t.Helper()
	bbPath := harness.Require(t, "busybox")
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // never the user's credentials
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/team/busybox:1"
	d, err := testimage.PushBusybox(t.Context(), ref, bbPath, []string{"sh", "cat", "echo", "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	return ref + "@" + d
}

// buildProject writes a source directory and a buildguard.yaml for image
// and command, and returns the file's path.
func buildProject(t *testing.T, image, command, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "apiVersion: buildguard/v1\nsource: src\nsourceDateEpoch: \"1700000000\"\nbuilder:\n  image: " + image +
		"\n  command: [\"sh\", \"-c\", " + strconvQuote(command) + "]\n  timeout: 1m\n" + extra
	f := filepath.Join(dir, "buildguard.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// waiveUnbuilt lets a test's build pass without trust material, so that
// what it checks is the build itself.
const waiveUnbuilt = "policy:\n  waive: [verified]\n"

func readReport(t *testing.T, dir string) *evidence.Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := evidence.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildCommand(t *testing.T) {
	harness.RequireRoot(t, "buildguard build needs root for crun and runc")
	ref := busyboxBuilder(t)
	for _, rt := range []string{builder.RuntimeCrun, builder.RuntimeRunc} {
		t.Run(rt, func(t *testing.T) {
			harness.Require(t, rt)
			f := buildProject(t, ref, "cat hello.txt > /out/copy; echo built $SOURCE_DATE_EPOCH", waiveUnbuilt)
			out := filepath.Join(t.TempDir(), "evidence")
			cache := t.TempDir()
			_, stderr, code := run(t, "build", "-f", f, "--out", out, "--runtime", rt, "--cache", cache)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			r := readReport(t, out)
			if r.Decision != evidence.Pass || len(r.Runs) != 2 || r.Runs[0].OutputDigest == "" || r.Runs[0].OutputDigest != r.Runs[1].OutputDigest {
				t.Fatalf("report: %+v", r)
			}
			if r.SBOM == nil || len(r.SBOM.Files) != 2 {
				t.Errorf("SBOM summary %+v", r.SBOM)
			}
			for _, f := range []string{"sbom.spdx.json", "sbom.cdx.json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			if got, err := os.ReadFile(filepath.Join(out, "runs", "run-1", "out", "copy")); err != nil || string(got) != "hello\n" {
				t.Errorf("output copy = %q, %v", got, err)
			}
			logText, err := os.ReadFile(filepath.Join(out, "logs", "run-1.log"))
			if err != nil || string(logText) != "built 1700000000\n" {
				t.Errorf("log = %q, %v", logText, err)
			}
			if !strings.Contains(stderr, "run-1 | built 1700000000") || !strings.Contains(stderr, "PASS") || !strings.Contains(stderr, "not proven against a compromised builder") {
				t.Errorf("stderr lacks the streamed output, the verdict or the note:\n%s", stderr)
			}
			// The same inputs give a byte-identical report and SBOMs; --json
			// prints the report.
			first, _ := os.ReadFile(filepath.Join(out, "report.json"))
			firstSBOM, _ := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
			stdout, stderr, code := run(t, "build", "-f", f, "--out", out, "--runtime", rt, "--cache", cache, "--json")
			again, _ := os.ReadFile(filepath.Join(out, "report.json"))
			againSBOM, _ := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
			if !bytes.Equal(firstSBOM, againSBOM) {
				t.Errorf("sbom.spdx.json changed between identical runs")
			}
			if code != 0 || !bytes.Equal(first, again) || stdout != string(again) {
				t.Errorf("second run: exit %d, report changed %v, stdout is the report %v\n%s", code, !bytes.Equal(first, again), stdout == string(again), stderr)
			}
		})
	}
}

func TestBuildCommandFailures(t *testing.T) {
	harness.RequireRoot(t, "buildguard build needs root for crun and runc")
	ref := busyboxBuilder(t)
	cache := t.TempDir()
	cases := []struct {
		name, image, command string
		extra                []string
		code                 int
		msg                  string
		decision             evidence.Decision
	}{
		{"unpinned builder", "registry.example/team/busybox:1", "true", nil, exitcode.Fail, `builder image registry.example/team/busybox:1 is not pinned`, evidence.Fail},
		{"build fails", ref, "exit 4", nil, exitcode.Fail, "exited 4", evidence.Fail},
		{"nondeterministic", ref, "cat /proc/sys/kernel/random/uuid > /out/r", nil, exitcode.Fail, "not reproducible", evidence.Fail},
		{"timeout", ref, "sleep 30", nil, exitcode.Incomplete, "timeout", evidence.Error},
		{"bad runtime flag", ref, "true", []string{"--runtime", "docker"}, exitcode.Usage, `--runtime "docker"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := buildProject(t, c.image, c.command, waiveUnbuilt)
			if c.name == "timeout" {
				// The timer starts with the runtime, before the container
				// exists: it must outlast the container's start on a loaded
				// machine, or the build is stopped before it ran at all.
				b, _ := os.ReadFile(f)
				if err := os.WriteFile(f, bytes.Replace(b, []byte("timeout: 1m"), []byte("timeout: 3s"), 1), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "evidence")
			args := append([]string{"build", "-f", f, "--out", out, "--cache", cache}, c.extra...)
			_, stderr, code := run(t, args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, c.code, c.msg, stderr)
			}
			if c.decision == "" {
				if _, err := os.Stat(out); err == nil {
					t.Error("a usage error created the evidence directory")
				}
				return
			}
			if r := readReport(t, out); r.Decision != c.decision {
				t.Errorf("report decision %s, want %s", r.Decision, c.decision)
			}
		})
	}
}

func TestBuildHelpNamesRuntimeOrder(t *testing.T) {
	out, _, code := run(t, "build", "--help")
	if code != 0 || !strings.Contains(out, "auto tries crun, then runc") {
		t.Errorf("exit %d, help does not give the runtime order:\n%s", code, out)
	}
}

func TestStepSummary(t *testing.T) {
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "decision.md"), []byte("🟢 **buildguard: pass**\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(t.TempDir(), "summary.md")
	if err := os.WriteFile(summary, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	appendStepSummary(out)
	got, _ := os.ReadFile(summary)
	if string(got) != "earlier step\n🟢 **buildguard: pass**\n\n" {
		t.Errorf("summary = %q", got)
	}
}

func TestTTYProgressKeepsTheLastLine(t *testing.T) {
	var buf bytes.Buffer
	p := newTTYProgress(&buf)
	p.Start("build")
	fmt.Fprint(p, "compiling a\ncompiling b\npartial")
	p.mu.Lock()
	tail := p.tail
	p.mu.Unlock()
	p.Done("build", time.Second, nil)
	if tail != "compiling b" || !strings.Contains(buf.String(), "✓ build") {
		t.Errorf("tail %q, output %q", tail, buf.String())
	}
}

// The verdict line never claims a check the policy waived.
func TestPrintVerdictWaived(t *testing.T) {
	for _, tc := range []struct {
		waived []string
		want   string
	}{
		{nil, "PASS: pinned, verified, reproducible and agreed by every builder\n"},
		{[]string{"reproducible", "verified"}, "PASS with waived checks (reproducible, verified): every other check held\n"},
	} {
		var out bytes.Buffer
		printVerdict(IO{Out: io.Discard, Err: &out}, &BuildOptions{Out: "ev", Quiet: true}, &evidence.Report{Decision: evidence.Pass, Waived: tc.waived})
		if first, _, _ := strings.Cut(out.String(), "evidence:"); first != tc.want {
			t.Errorf("waived %v: %q, want %q", tc.waived, first, tc.want)
		}
	}
}

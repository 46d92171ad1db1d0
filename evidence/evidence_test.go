package evidence

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample(reverse bool) *Report {
	r := New()
	r.Decision = Fail
	imgs := []Image{
		{Role: "base", Ref: "gcr.io/distroless/static@sha256:aa", Pinned: true},
		{Role: "diverse", Ref: "other/go@sha256:bb", Pinned: true, Verified: true},
		{Role: "builder", Ref: "golang:1.26", Pinned: false},
	}
	viols := []Violation{
		{Rule: "pinned", Message: "golang:1.26 is not pinned"},
		{Rule: "diverse-agree", Message: "builders disagree"},
	}
	if reverse {
		for i, j := 0, len(imgs)-1; i < j; i, j = i+1, j-1 {
			imgs[i], imgs[j] = imgs[j], imgs[i]
		}
		viols[0], viols[1] = viols[1], viols[0]
	}
	r.Images = imgs
	r.Violations = viols
	r.Runs = []Run{{Index: 2, Builder: "sha256:x"}, {Index: 1, Builder: "sha256:x"}}
	if reverse {
		r.Runs[0], r.Runs[1] = r.Runs[1], r.Runs[0]
	}
	return r
}

func TestMarshalIsCanonical(t *testing.T) {
	a, err := sample(false).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sample(true).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("the order stages appended in reached the report:\n%s\n%s", a, b)
	}
	if !bytes.HasSuffix(a, []byte("}\n")) || !strings.Contains(string(a), `"apiVersion": "buildguard/v1"`) {
		t.Errorf("report:\n%s", a)
	}
	if i, j := strings.Index(string(a), `"role": "builder"`), strings.Index(string(a), `"role": "base"`); i > j {
		t.Errorf("builder is not listed before base")
	}
}

func TestRoundTrip(t *testing.T) {
	a, _ := sample(false).Marshal()
	r, err := Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Marshal()
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the report:\n%s\n%s", a, b)
	}
}

func TestParseRejects(t *testing.T) {
	for name, data := range map[string]string{
		"unknown field":   `{"apiVersion":"buildguard/v1","decision":"pass","violations":[],"images":[],"surprise":1}`,
		"newer version":   `{"apiVersion":"buildguard/v2","decision":"pass","violations":[],"images":[]}`,
		"unknown verdict": `{"apiVersion":"buildguard/v1","decision":"maybe","violations":[],"images":[]}`,
		"trailing data":   `{"apiVersion":"buildguard/v1","decision":"pass","violations":[],"images":[]} {}`,
		"not json":        `decision: pass`,
	} {
		if _, err := Parse([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestWriteKeepsTimingsOutOfTheReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "evidence")
	r := sample(false)
	if err := Write(dir, r, &Timings{Stages: []Stage{{Name: "build", Seconds: 1.25}}}); err != nil {
		t.Fatal(err)
	}
	report, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	timings, _ := os.ReadFile(filepath.Join(dir, "timings.json"))
	md, _ := os.ReadFile(filepath.Join(dir, "decision.md"))
	if strings.Contains(string(report), "seconds") || !strings.Contains(string(timings), `"seconds": 1.25`) {
		t.Errorf("report.json:\n%s\ntimings.json:\n%s", report, timings)
	}
	if !strings.HasPrefix(string(md), "🔴 **buildguard: fail** — 2 violation(s)") || !strings.Contains(string(md), "| pinned | golang:1.26 is not pinned |") {
		t.Errorf("decision.md:\n%s", md)
	}
	// Writing the same report again gives the same bytes.
	if err := Write(dir, sample(true), &Timings{Stages: []Stage{{Name: "build", Seconds: 9}}}); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if !bytes.Equal(report, again) {
		t.Errorf("report.json changed between identical runs")
	}
}

func TestNewReportIsNotAPass(t *testing.T) {
	if New().Decision != Error {
		t.Fatal("an undecided report must read as error, never pass")
	}
}

package releasekit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportChecks(t *testing.T) {
	dir := t.TempDir()
	data := `{"decision":"pass","runs":[
		{"index":1,"builder":"sha256:a","outputDigest":"sha256:o"},
		{"index":2,"builder":"sha256:a","outputDigest":"sha256:o"},
		{"index":3,"builder":"sha256:b","diverse":true,"outputDigest":"sha256:x"}]}`
	if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckRuns("sha256:a", "sha256:b"); err != nil {
		t.Errorf("CheckRuns: %v", err)
	}
	if err := r.CheckRuns("sha256:b", "sha256:a"); err == nil {
		t.Error("CheckRuns with the builders swapped: no error")
	}
	if err := r.CheckSameOutput(); err == nil || !strings.Contains(err.Error(), "run 3") {
		t.Errorf("CheckSameOutput: %v, want an error naming run 3", err)
	}
	if got := DigestOf("127.0.0.1:5000/a/b:1@sha256:d"); got != "sha256:d" {
		t.Errorf("DigestOf: %q", got)
	}
}

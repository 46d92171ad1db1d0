package releasekit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Report is the part of a guarded build's report.json that the programs
// check.
type Report struct {
	Decision   string `json:"decision"`
	Violations []struct {
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"violations"`
	Images []struct {
		Role       string            `json:"role"`
		Ref        string            `json:"ref"`
		Verified   bool              `json:"verified"`
		Signers    []json.RawMessage `json:"signers"`
		LogEntries []json.RawMessage `json:"logEntries"`
		Provenance []struct {
			BuilderID string `json:"builderID"`
			SourceURI string `json:"sourceURI"`
		} `json:"provenance"`
	} `json:"images"`
	Runs []struct {
		Index        int    `json:"index"`
		Builder      string `json:"builder"`
		Diverse      bool   `json:"diverse"`
		OutputDigest string `json:"outputDigest"`
	} `json:"runs"`
}

// ReadReport reads report.json in the evidence directory dir.
func ReadReport(dir string) (*Report, error) {
	path := filepath.Join(dir, "report.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &r, nil
}

// CheckRuns checks that the report has the two runs in the builder with
// the digest builder and then one in the diverse builder, in that order.
func (r *Report) CheckRuns(builder, diverse string) error {
	want := []string{builder, builder, diverse}
	if len(r.Runs) != len(want) {
		return fmt.Errorf("report.json has %d runs, want %d", len(r.Runs), len(want))
	}
	for i, run := range r.Runs {
		if run.Builder != want[i] || run.Diverse != (i == 2) {
			return fmt.Errorf("report.json: run %d was built by %s (diverse %t), want %s", run.Index, run.Builder, run.Diverse, want[i])
		}
	}
	return nil
}

// CheckSameOutput checks that every run made the same output.
func (r *Report) CheckSameOutput() error {
	for _, run := range r.Runs {
		if run.OutputDigest == "" || run.OutputDigest != r.Runs[0].OutputDigest {
			return fmt.Errorf("report.json: run %d made %q, run 1 %q", run.Index, run.OutputDigest, r.Runs[0].OutputDigest)
		}
	}
	return nil
}

// DigestOf returns the digest of a ref@digest.
func DigestOf(ref string) string {
	return ref[strings.LastIndexByte(ref, '@')+1:]
}

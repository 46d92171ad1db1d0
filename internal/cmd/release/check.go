package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/buildguard/buildguard/internal/releasekit"
)

// provenance is the part of provenance.json the release checks.
type provenance struct {
	Predicate struct {
		BuildDefinition struct {
			ExternalParameters struct {
				Env             map[string]string `json:"env"`
				SourceDateEpoch int64             `json:"sourceDateEpoch"`
			} `json:"externalParameters"`
			ResolvedDependencies []struct {
				Name   string            `json:"name"`
				Digest map[string]string `json:"digest"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
	} `json:"predicate"`
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// checkEvidence checks a guarded build's evidence: decision pass without
// violations, both builders verified, runs 1 and 2 in the clean builder
// and run 3 in the independent one, all with the same output; and a
// provenance that records the source tree and the vendored dependencies.
// It returns the output digest and sets t.digest.
func checkEvidence(dir, clean, independent string, t *tree) (string, error) {
	r, err := releasekit.ReadReport(dir)
	if err != nil {
		return "", err
	}
	if r.Decision != "pass" || len(r.Violations) != 0 {
		return "", fmt.Errorf("report.json says %s with %d violation(s) (%v), want pass with none", r.Decision, len(r.Violations), r.Violations)
	}
	if len(r.Images) != 2 {
		return "", fmt.Errorf("report.json has %d images, want the builder and the independent builder", len(r.Images))
	}
	for _, im := range r.Images {
		if !im.Verified {
			return "", fmt.Errorf("report.json: %s image %s is not verified", im.Role, im.Ref)
		}
	}
	if err := r.CheckRuns(releasekit.DigestOf(clean), releasekit.DigestOf(independent)); err != nil {
		return "", err
	}
	if err := r.CheckSameOutput(); err != nil {
		return "", err
	}
	var p provenance
	if err := readJSON(filepath.Join(dir, "provenance.json"), &p); err != nil {
		return "", err
	}
	bd := p.Predicate.BuildDefinition
	if got := bd.ExternalParameters.Env[envModulesTxt]; got != t.modulesTxt {
		return "", fmt.Errorf("provenance.json: externalParameters.env.%s is %q, want vendor/modules.txt's %s", envModulesTxt, got, t.modulesTxt)
	}
	for _, d := range bd.ResolvedDependencies {
		if d.Name == "source" && d.Digest["sha256"] != "" {
			t.digest = "sha256:" + d.Digest["sha256"]
		}
	}
	if t.digest == "" {
		return "", fmt.Errorf("provenance.json: no source among the resolved dependencies")
	}
	return r.Runs[0].OutputDigest, nil
}

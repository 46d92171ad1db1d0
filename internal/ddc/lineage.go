package ddc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/buildguard/buildguard/attest"
)

// The names the chain's evidence and the lineage attestation use.
const (
	// ChainAPIVersion is chain.json's and comparison.json's apiVersion.
	ChainAPIVersion = "buildguard/ddc/v1"
	// LineageBuildType names how a builder image holding the chain's
	// toolchain was made: its externalParameters (root, release, stages)
	// and resolvedDependencies (each stage's source zip and builder
	// image) are Lineage's.
	LineageBuildType = "https://github.com/buildguard/buildguard/buildtypes/ddc-chain/v1"
	// LineageBuilderID is the builder of that provenance: internal/cmd/ddc
	// running the chain, each stage a guarded build.
	LineageBuilderID = "https://github.com/buildguard/buildguard/ddc/v1"
	// ChainMediaType is chain.json's media type in the byproducts.
	ChainMediaType = "application/vnd.buildguard.ddc-chain.v1+json"
	// ComparisonMediaType is comparison.json's.
	ComparisonMediaType = "application/vnd.buildguard.ddc-comparison.v1+json"
)

// ChainRecord is chain.json: the stages the chain built.
type ChainRecord struct {
	APIVersion string        `json:"apiVersion"`
	Root       string        `json:"root"`
	Stages     []StageRecord `json:"stages"`
}

// StageRecord is one stage of chain.json.
type StageRecord struct {
	Index     int    `json:"index"`
	Version   string `json:"version"`
	Bootstrap string `json:"bootstrap"`
	// Key is the stage's cache key (Stage.Key).
	Key string `json:"key"`
	// Builder is the builder image: its digest and what it holds.
	Builder      string   `json:"builder"`
	BuilderParts []string `json:"builderParts"`
	// Source is the toolchain module zip and its sha256.
	Source       string `json:"source"`
	SourceSHA256 string `json:"sourceSHA256"`
	// Decision is the guarded build's, from its report.json.
	Decision string `json:"decision"`
	// Evidence is the stage's evidence directory below the chain's
	// evidence directory.
	Evidence string `json:"evidence"`
}

// Lineage reads the chain's evidence directory (chain.json,
// comparison.json and each stage's provenance.json) and returns the SLSA
// Provenance v1 predicate of a builder image that holds the chain's final
// toolchain: its source (the final release's zip, first, so verifiers
// read it as the source), every stage's source zip and builder image, and
// parts, further resolved dependencies of the image (what else it holds).
// Its byproducts are chain.json, comparison.json and each stage's
// provenance, by digest. cosign attest puts the image as its subject.
//
// The evidence must be of the whole chain, every stage passed: a partial
// chain (internal/cmd/ddc --stages) has no comparison and made no
// toolchain to put in a builder.
func Lineage(dir string, parts ...attest.ResourceDescriptor) (map[string]any, error) {
	chainJSON, err := os.ReadFile(filepath.Join(dir, "chain.json"))
	if err != nil {
		return nil, err
	}
	var ch ChainRecord
	if err := json.Unmarshal(chainJSON, &ch); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "chain.json"), err)
	}
	if ch.APIVersion != ChainAPIVersion || len(ch.Stages) == 0 {
		return nil, fmt.Errorf("%s is not a chain record (apiVersion %s with stages)", filepath.Join(dir, "chain.json"), ChainAPIVersion)
	}
	cmpJSON, err := os.ReadFile(filepath.Join(dir, "comparison.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no comparison.json: the chain was not built to its end (internal/cmd/ddc without --stages)", dir)
	}
	if err != nil {
		return nil, err
	}
	var cmp Comparison
	if err := json.Unmarshal(cmpJSON, &cmp); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "comparison.json"), err)
	}
	final := ch.Stages[len(ch.Stages)-1]
	if cmp.Release != final.Version {
		return nil, fmt.Errorf("comparison.json compares %s, and the chain ends at %s", cmp.Release, final.Version)
	}

	source := func(s StageRecord) attest.ResourceDescriptor {
		return attest.ResourceDescriptor{Name: s.Version + " source", URI: s.Source, Digest: map[string]string{"sha256": s.SourceSHA256}}
	}
	deps := []attest.ResourceDescriptor{source(final)}
	versions := make([]string, len(ch.Stages))
	byproducts := []attest.ResourceDescriptor{
		{Name: "chain.json", Digest: attest.SHA256(chainJSON), MediaType: ChainMediaType},
		{Name: "comparison.json", Digest: attest.SHA256(cmpJSON), MediaType: ComparisonMediaType,
			Annotations: map[string]any{"release": cmp.Release, "identical": cmp.Identical}},
	}
	for i, s := range ch.Stages {
		if s.Decision != "pass" {
			return nil, fmt.Errorf("stage %d (%s) says %s: a chain with a failed stage is no lineage", s.Index, s.Version, s.Decision)
		}
		versions[i] = s.Version
		if i < len(ch.Stages)-1 {
			deps = append(deps, source(s))
		}
		deps = append(deps, attest.ResourceDescriptor{Name: fmt.Sprintf("stage %d builder", s.Index), Digest: attest.DigestSet(s.Builder),
			Annotations: map[string]any{"role": "stage-builder", "stage": s.Index, "bootstrap": s.Bootstrap, "parts": s.BuilderParts}})
		prov, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.Evidence), attest.ProvenanceFile))
		if err != nil {
			return nil, fmt.Errorf("stage %d's provenance: %w", s.Index, err)
		}
		byproducts = append(byproducts, attest.ResourceDescriptor{Name: "stage-" + strconv.Itoa(s.Index) + " provenance", Digest: attest.SHA256(prov),
			MediaType: attest.PayloadType, Annotations: map[string]any{"version": s.Version, "key": s.Key, "decision": s.Decision}})
	}
	deps = append(deps, parts...)
	return map[string]any{
		"buildDefinition": map[string]any{
			"buildType":            LineageBuildType,
			"externalParameters":   map[string]any{"root": ch.Root, "release": final.Version, "stages": versions},
			"internalParameters":   map[string]any{},
			"resolvedDependencies": deps,
		},
		"runDetails": map[string]any{
			"builder":    map[string]any{"id": LineageBuilderID},
			"byproducts": byproducts,
		},
	}, nil
}

package trust

import (
	"encoding/json"
	"fmt"
	"strings"

	in_toto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// The SLSA provenance predicate types that are understood.
const (
	SLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	SLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
)

// Provenance is what a verified SLSA provenance statement says built the
// artifact.
type Provenance struct {
	PredicateType string `json:"predicateType"`
	BuilderID     string `json:"builderID"`
	// SourceURI is the source repository as the predicate names it: v0.2's
	// invocation.configSource.uri, v1's externalParameters.workflow
	// repository, or else its first resolved dependency.
	SourceURI string `json:"sourceURI,omitempty"`
	BuildType string `json:"buildType,omitempty"`
	// The recipe of a buildguard guarded build (BuildType
	// GuardedBuildType), for a person or a rebuild: the source as
	// configured and its tree digest, and the builder image's reference
	// and digest.
	Source        string `json:"source,omitempty"`
	SourceDigest  string `json:"sourceDigest,omitempty"`
	Builder       string `json:"builder,omitempty"`
	BuilderDigest string `json:"builderDigest,omitempty"`
}

// GuardedBuildType is the buildType of buildguard's provenance, whose
// recipe is read into Provenance.
const GuardedBuildType = "https://github.com/buildguard/buildguard/buildtypes/guarded-build/v1"

// resolvedDependency is a resolvedDependencies entry of SLSA provenance
// v1, as far as the recipe needs it.
type resolvedDependency struct {
	Name        string            `json:"name"`
	URI         string            `json:"uri"`
	Digest      map[string]string `json:"digest"`
	Annotations struct {
		Role string `json:"role"`
	} `json:"annotations"`
}

// recipe reads the source and the builder image of a guarded build's
// provenance into p.
func (p *Provenance) recipe(source json.RawMessage, deps []resolvedDependency) {
	var s string
	if json.Unmarshal(source, &s) == nil {
		p.Source = s
	}
	for _, d := range deps {
		h, ok := d.Digest["sha256"]
		switch {
		case !ok:
		case d.Name == "source" && p.SourceDigest == "":
			p.SourceDigest = "sha256:" + h
			if d.URI != "" {
				p.Source = d.URI
			}
		case d.Annotations.Role == "builder" && p.BuilderDigest == "":
			p.Builder, p.BuilderDigest = d.Name, "sha256:"+h
		}
	}
}

func isProvenance(predicateType string) bool {
	return predicateType == SLSAProvenanceV02 || predicateType == SLSAProvenanceV1
}

// parseProvenance reads the builder and source of a verified provenance
// statement.
func parseProvenance(st *in_toto.Statement) (*Provenance, error) {
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("provenance predicate: %w", err)
	}
	p := &Provenance{PredicateType: st.GetPredicateType()}
	switch p.PredicateType {
	case SLSAProvenanceV02:
		var pred struct {
			BuildType string `json:"buildType"`
			Builder   struct {
				ID string `json:"id"`
			} `json:"builder"`
			Invocation struct {
				ConfigSource struct {
					URI string `json:"uri"`
				} `json:"configSource"`
			} `json:"invocation"`
		}
		if err := json.Unmarshal(raw, &pred); err != nil {
			return nil, fmt.Errorf("provenance v0.2 predicate: %w", err)
		}
		p.BuilderID, p.BuildType, p.SourceURI = pred.Builder.ID, pred.BuildType, pred.Invocation.ConfigSource.URI
	case SLSAProvenanceV1:
		var pred struct {
			BuildDefinition struct {
				BuildType          string `json:"buildType"`
				ExternalParameters struct {
					Workflow struct {
						Repository string `json:"repository"`
					} `json:"workflow"`
					Source json.RawMessage `json:"source"`
				} `json:"externalParameters"`
				ResolvedDependencies []resolvedDependency `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if err := json.Unmarshal(raw, &pred); err != nil {
			return nil, fmt.Errorf("provenance v1 predicate: %w", err)
		}
		bd := pred.BuildDefinition
		p.BuilderID, p.BuildType, p.SourceURI = pred.RunDetails.Builder.ID, bd.BuildType, bd.ExternalParameters.Workflow.Repository
		if p.SourceURI == "" && len(bd.ResolvedDependencies) > 0 {
			p.SourceURI = bd.ResolvedDependencies[0].URI
		}
		if p.BuildType == GuardedBuildType {
			p.recipe(bd.ExternalParameters.Source, bd.ResolvedDependencies)
		}
	default:
		return nil, fmt.Errorf("predicate type %q is not SLSA provenance", p.PredicateType)
	}
	if p.BuilderID == "" {
		return nil, fmt.Errorf("%s provenance names no builder id", p.PredicateType)
	}
	return p, nil
}

// NormalizeSourceURI reduces a source repository URI to host and path:
// "git+https://github.com/org/repo.git@refs/heads/main" and
// "github.com/org/repo" are both "github.com/org/repo".
func NormalizeSourceURI(uri string) string {
	u := strings.TrimPrefix(uri, "git+")
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '@'); i >= 0 {
		u = u[:i]
	}
	u = strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git")
	return strings.ToLower(u)
}

// provenanceProblem says why no verified provenance meets the policy's
// builder and source requirements, or nil when one does or none are set.
func (v *Verifier) provenanceProblem(cands []Candidate) *Refusal {
	if len(v.policy.BuilderIDs) == 0 && len(v.policy.SourceURIs) == 0 {
		return nil
	}
	var seen []string
	for _, c := range cands {
		if !c.Verified || c.Provenance == nil {
			continue
		}
		p := c.Provenance
		okBuilder := len(v.policy.BuilderIDs) == 0 || contains(v.policy.BuilderIDs, p.BuilderID)
		okSource := len(v.policy.SourceURIs) == 0 || containsFunc(v.policy.SourceURIs, func(s string) bool {
			return NormalizeSourceURI(s) == NormalizeSourceURI(p.SourceURI)
		})
		if okBuilder && okSource {
			return nil
		}
		seen = append(seen, fmt.Sprintf("builder %q from source %q", p.BuilderID, p.SourceURI))
	}
	if len(seen) == 0 {
		return refuse(ReasonNoProvenance, "no verified SLSA provenance, and the policy requires one (builder %s, source %s)", orAny(v.policy.BuilderIDs), orAny(v.policy.SourceURIs))
	}
	return refuse(ReasonProvenanceMismatch, "verified provenance says %s; the policy requires builder %s and source %s", strings.Join(seen, "; "), orAny(v.policy.BuilderIDs), orAny(v.policy.SourceURIs))
}

func contains(list []string, s string) bool {
	return containsFunc(list, func(x string) bool { return x == s })
}

func containsFunc(list []string, f func(string) bool) bool {
	for _, x := range list {
		if f(x) {
			return true
		}
	}
	return false
}

func orAny(list []string) string {
	if len(list) == 0 {
		return "(any)"
	}
	return fmt.Sprintf("%q", list)
}

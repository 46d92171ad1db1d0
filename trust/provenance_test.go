package trust_test

import (
	"fmt"
	"testing"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

const (
	trustedBuilder = "https://github.com/actions/runner/github-hosted"
	trustedSource  = "git+https://github.com/org/tool@refs/heads/main"
)

// TestProvenanceProduction reads builder and source from the production
// provenance bundles (SLSA v0.2 and v1).
func TestProvenanceProduction(t *testing.T) {
	want := map[string]trust.Provenance{
		productionBundles[0].name: {PredicateType: trust.SLSAProvenanceV02, BuilderID: "https://github.com/actions/runner", SourceURI: "git+https://github.com/sigstore/sigstore-js@refs/heads/main", BuildType: "https://github.com/npm/cli/gha/v2"},
		productionBundles[1].name: {PredicateType: trust.SLSAProvenanceV1, BuilderID: "https://github.com/actions/runner/github-hosted", SourceURI: "https://github.com/sigstore/sigstore-js", BuildType: "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"},
	}
	for _, pb := range productionBundles[:2] {
		c, err := productionVerifier(t, pb).VerifyBundle(production(t, pb.bundle), pb.digest)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Verified || c.Kind != trust.KindProvenance || c.Provenance == nil || *c.Provenance != want[pb.name] {
			t.Errorf("%s: verified %v, kind %q, provenance %+v; want %+v", pb.name, c.Verified, c.Kind, c.Provenance, want[pb.name])
		}
	}
}

// TestProvenancePolicy requires provenance from a builder and a source.
func TestProvenancePolicy(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, false)
	other, _ := trusttest.NewKey(t)
	images := map[string]func(d trust.Digest) [][]byte{
		"v0.2": func(d trust.Digest) [][]byte {
			return [][]byte{trusttest.JSON(t, f.Keyed(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d)))}
		},
		"v1": func(d trust.Digest) [][]byte {
			return [][]byte{trusttest.JSON(t, f.Keyless(t, trusttest.ProvenanceV1(t, trustedBuilder, "https://github.com/org/tool", d)))}
		},
		"none": func(d trust.Digest) [][]byte { return nil },
		"other builder": func(d trust.Digest) [][]byte {
			return [][]byte{trusttest.JSON(t, f.Keyed(t, trusttest.ProvenanceV1(t, "https://ci.evil.example", "https://github.com/org/tool", d)))}
		},
		"about another image": func(d trust.Digest) [][]byte {
			return [][]byte{trusttest.JSON(t, f.Keyed(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, trusttest.RandomDigest(t))))}
		},
		"by an untrusted key": func(d trust.Digest) [][]byte {
			return [][]byte{trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), Key: other, Logs: []*trusttest.Log{f.Log}}))}
		},
	}
	refs := map[string]string{}
	for name, bundles := range images {
		repo := "prov/" + fmt.Sprint(len(refs))
		ref, desc := reg.image(t, repo)
		d := imageDigest(t, ref)
		reg.attachBundle(t, repo, desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
		for _, b := range bundles(d) {
			reg.attachBundle(t, repo, desc, b)
		}
		refs[name] = ref
	}
	tests := []struct {
		image            string
		builders, source []string
		want             trust.Reason // "" for verified
	}{
		{"v0.2", []string{trustedBuilder}, nil, ""},
		{"v1", []string{trustedBuilder}, nil, ""},
		{"v0.2", nil, []string{"github.com/org/tool"}, ""},
		{"v1", []string{"https://other.example", trustedBuilder}, []string{"https://github.com/org/tool.git"}, ""},
		{"none", nil, nil, ""},
		{"none", []string{trustedBuilder}, nil, trust.ReasonNoProvenance},
		{"other builder", []string{trustedBuilder}, nil, trust.ReasonProvenanceMismatch},
		{"v1", nil, []string{"github.com/org/other"}, trust.ReasonProvenanceMismatch},
		{"about another image", []string{trustedBuilder}, nil, trust.ReasonNoProvenance},
		{"by an untrusted key", []string{trustedBuilder}, nil, trust.ReasonNoProvenance},
	}
	for _, tt := range tests {
		p := f.Policy()
		p.BuilderIDs, p.SourceURIs = tt.builders, tt.source
		res, err := trusttest.Verifier(t, p, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), refs[tt.image])
		if err != nil {
			t.Fatal(err)
		}
		if tt.want == "" {
			if !res.Verified {
				t.Errorf("%s, builders %q, sources %q: refused %q", tt.image, tt.builders, tt.source, res.Reasons())
			}
			continue
		}
		if res.Verified || len(res.Problems) == 0 || res.Problems[0].Reason != tt.want {
			t.Errorf("%s, builders %q, sources %q: verified %v, problems %v; want %s", tt.image, tt.builders, tt.source, res.Verified, res.Problems, tt.want)
		}
	}
	p := f.Policy()
	p.BuilderIDs = []string{trustedBuilder}
	res, err := trusttest.Verifier(t, p, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), refs["v0.2"])
	if err != nil {
		t.Fatal(err)
	}
	ev := res.Evidence("builder")
	if len(ev.Provenance) != 1 || ev.Provenance[0].BuilderID != trustedBuilder || ev.Provenance[0].SourceURI != trustedSource {
		t.Errorf("evidence provenance = %+v", ev.Provenance)
	}
}

func TestNormalizeSourceURI(t *testing.T) {
	for _, uri := range []string{
		"github.com/org/tool", "https://github.com/org/tool", "git+https://github.com/org/tool@refs/heads/main",
		"https://github.com/org/tool.git", "https://GitHub.com/org/tool/", "git+https://github.com/org/tool.git@v1.2.3",
	} {
		if got := trust.NormalizeSourceURI(uri); got != "github.com/org/tool" {
			t.Errorf("NormalizeSourceURI(%q) = %q", uri, got)
		}
	}
	if trust.NormalizeSourceURI("https://github.com/org/tool-fork") == "github.com/org/tool" {
		t.Error("a fork normalizes to the original")
	}
}

package ddc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/attest"
)

// writeEvidence writes a chain's evidence directory as internal/cmd/ddc
// does: chain.json for every stage of Chain, each stage's provenance.json
// and comparison.json.
func writeEvidence(t *testing.T, decision string, withComparison bool) string {
	t.Helper()
	dir := t.TempDir()
	var ch ChainRecord
	ch.APIVersion, ch.Root = ChainAPIVersion, Gccgo
	for _, s := range Plan(Chain) {
		ev := "stages/" + s.Release.Version
		ch.Stages = append(ch.Stages, StageRecord{Index: s.Index, Version: s.Release.Version, Bootstrap: s.Bootstrap,
			Key: strings.Repeat("k", 64), Builder: "sha256:" + strings.Repeat(string(rune('0'+s.Index)), 64),
			BuilderParts: []string{"debian bookworm"}, Source: ZipURL(s.Release.Version), SourceSHA256: s.Release.SHA256,
			Decision: decision, Evidence: ev})
		if err := os.MkdirAll(filepath.Join(dir, ev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ev, attest.ProvenanceFile), []byte("provenance of "+s.Release.Version), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("chain.json", ch)
	if withComparison {
		write("comparison.json", Comparison{APIVersion: ChainAPIVersion, Release: Chain[len(Chain)-1].Version, Identical: true})
	}
	return dir
}

// The lineage is SLSA provenance a verifier reads as the chain's: its
// builder, the final release's zip as the source (the first resolved
// dependency), every stage's zip and builder image by digest, the image's
// other parts, and the evidence files by digest.
func TestLineage(t *testing.T) {
	dir := writeEvidence(t, "pass", true)
	part := attest.ResourceDescriptor{Name: "busybox", Digest: map[string]string{"sha256": strings.Repeat("b", 64)}}
	pred, err := Lineage(dir, part)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(pred)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		BuildDefinition struct {
			BuildType          string `json:"buildType"`
			ExternalParameters struct {
				Root, Release string
				Stages        []string
			} `json:"externalParameters"`
			ResolvedDependencies []attest.ResourceDescriptor `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Byproducts []attest.ResourceDescriptor `json:"byproducts"`
		} `json:"runDetails"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	final := Chain[len(Chain)-1]
	bd := p.BuildDefinition
	if bd.BuildType != LineageBuildType || p.RunDetails.Builder.ID != LineageBuilderID {
		t.Errorf("buildType %q, builder %q", bd.BuildType, p.RunDetails.Builder.ID)
	}
	if bd.ExternalParameters.Root != Gccgo || bd.ExternalParameters.Release != final.Version || len(bd.ExternalParameters.Stages) != len(Chain) {
		t.Errorf("externalParameters %+v", bd.ExternalParameters)
	}
	deps := bd.ResolvedDependencies
	if len(deps) == 0 || deps[0].URI != ZipURL(final.Version) || deps[0].Digest["sha256"] != final.SHA256 {
		t.Fatalf("the first resolved dependency is %+v, want %s's zip (the source a verifier reads)", deps, final.Version)
	}
	zips, builders := map[string]bool{}, 0
	for _, d := range deps {
		if d.URI != "" {
			zips[d.URI+"@"+d.Digest["sha256"]] = true
		}
		if d.Annotations["role"] == "stage-builder" {
			builders++
		}
	}
	for _, r := range Chain {
		if !zips[ZipURL(r.Version)+"@"+r.SHA256] {
			t.Errorf("%s's source zip is not a resolved dependency", r.Version)
		}
	}
	if builders != len(Chain) || deps[len(deps)-1].Name != "busybox" {
		t.Errorf("%d stage builders (want %d) and last dependency %q (want the part busybox)", builders, len(Chain), deps[len(deps)-1].Name)
	}
	chainJSON, err := os.ReadFile(filepath.Join(dir, "chain.json"))
	if err != nil {
		t.Fatal(err)
	}
	by := p.RunDetails.Byproducts
	if len(by) != 2+len(Chain) || by[0].Digest["sha256"] != attest.SHA256(chainJSON)["sha256"] || by[1].Annotations["identical"] != true {
		t.Errorf("byproducts %+v: want chain.json by digest, comparison.json (identical) and every stage's provenance", by)
	}
	if want := attest.SHA256([]byte("provenance of " + final.Version)); by[len(by)-1].Digest["sha256"] != want["sha256"] {
		t.Errorf("the last stage's provenance is %v, want %v", by[len(by)-1].Digest, want)
	}
}

// Evidence that is no whole, passed chain gives no lineage, and says why.
func TestLineageRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  string
		want string
	}{
		{"partial chain", writeEvidence(t, "pass", false), "no comparison.json"},
		{"failed stage", writeEvidence(t, "fail", true), "says fail"},
		{"not evidence", t.TempDir(), "chain.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Lineage(tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Lineage = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	dir := writeEvidence(t, "pass", true)
	if err := os.Remove(filepath.Join(dir, "stages", Chain[1].Version, attest.ProvenanceFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Lineage(dir); err == nil || !strings.Contains(err.Error(), "stage 2's provenance") {
		t.Errorf("Lineage without stage 2's provenance = %v", err)
	}
}

package attest_test

import (
	"bytes"
	"testing"

	provenancev1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	vsav1 "github.com/in-toto/attestation/go/predicates/vsa/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/buildguard/buildguard/attest"
)

const (
	hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hexB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hexC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func sampleBuild() *attest.Build {
	return &attest.Build{
		Files:        []attest.File{{Path: "bin/z", SHA256: hexA}, {Path: "app", SHA256: hexB}},
		OutputDigest: "sha256:" + hexC, Source: ".", SourceDigest: "sha256:" + hexB, SourceDateEpoch: 1700000000,
		Command: []string{"go", "build", "-o", "/out/app"}, Workdir: "/src", Env: map[string]string{"B": "2", "A": "1"},
		Images: []attest.Image{
			{Role: "diverse", Ref: "r.example/other@sha256:" + hexA, Digest: "sha256:" + hexA},
			{Role: "builder", Ref: "r.example/go@sha256:" + hexB, Digest: "sha256:" + hexB},
		},
		Runs: []attest.Run{
			{Index: 2, Builder: "sha256:" + hexB, Variations: []string{"path"}, OutputDigest: "sha256:" + hexC},
			{Index: 1, Builder: "sha256:" + hexB, OutputDigest: "sha256:" + hexC},
		},
		Reproducible: true,
	}
}

func statements(t *testing.T, b *attest.Build, passed bool) (prov, vsa []byte) {
	t.Helper()
	p, err := attest.Provenance(b)
	if err != nil {
		t.Fatal(err)
	}
	if prov, err = attest.Marshal(p); err != nil {
		t.Fatal(err)
	}
	v, err := attest.VSA(b, attest.Decision{Passed: passed, PolicyDigest: attest.SHA256([]byte("policy")), Provenance: prov})
	if err != nil {
		t.Fatal(err)
	}
	if vsa, err = attest.Marshal(v); err != nil {
		t.Fatal(err)
	}
	return prov, vsa
}

// TestStatementsByteStable: the same build, given with its lists and maps
// in another order, gives byte-identical statements.
func TestStatementsByteStable(t *testing.T) {
	p1, v1 := statements(t, sampleBuild(), true)
	b := sampleBuild()
	b.Files[0], b.Files[1] = b.Files[1], b.Files[0]
	b.Images[0], b.Images[1] = b.Images[1], b.Images[0]
	b.Runs[0], b.Runs[1] = b.Runs[1], b.Runs[0]
	p2, v2 := statements(t, b, true)
	if !bytes.Equal(p1, p2) || !bytes.Equal(v1, v2) {
		t.Fatalf("statements differ:\n%s\n%s", p1, p2)
	}
	if bytes.Contains(p1, []byte("/work")) || bytes.Contains(p1, []byte("/tmp")) {
		t.Errorf("provenance names a host path:\n%s", p1)
	}
}

// TestProvenanceIsSLSA: the provenance parses as an in-toto Statement v1
// with a SLSA Provenance v1 predicate, and both validate, with the
// expected subjects, buildType and dependencies.
func TestProvenanceIsSLSA(t *testing.T) {
	prov, _ := statements(t, sampleBuild(), true)
	st, pred := parseStatement(t, prov)
	if st.GetPredicateType() != attest.ProvenancePredicateType || len(st.GetSubject()) != 2 || st.GetSubject()[0].GetName() != "app" {
		t.Fatalf("statement: %v", st)
	}
	var p provenancev1.Provenance
	if err := decode(pred, &p); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("provenance does not validate: %v", err)
	}
	bd := p.GetBuildDefinition()
	if bd.GetBuildType() != attest.BuildType || p.GetRunDetails().GetBuilder().GetId() != attest.BuilderID {
		t.Errorf("buildType %q builder %q", bd.GetBuildType(), p.GetRunDetails().GetBuilder().GetId())
	}
	deps := bd.GetResolvedDependencies()
	if len(deps) != 3 || deps[0].GetName() != "source" || deps[1].GetDigest()["sha256"] != hexB || deps[2].GetDigest()["sha256"] != hexA {
		t.Errorf("resolvedDependencies: %v", deps)
	}
	cmd := bd.GetExternalParameters().GetFields()["command"].GetListValue().GetValues()
	if len(cmd) != 4 || cmd[0].GetStringValue() != "go" {
		t.Errorf("externalParameters.command: %v", cmd)
	}
	bp := p.GetRunDetails().GetByproducts()
	last := bp[len(bp)-1]
	if last.GetName() != "reproducibility" || !last.GetAnnotations().GetFields()["reproducible"].GetBoolValue() {
		t.Errorf("byproducts: %v", bp)
	}
}

// TestVSA: the VSA parses as a VSA v1, says PASSED or FAILED with the
// decision, names the verifier and the policy digest, and links the
// provenance by its digest.
func TestVSA(t *testing.T) {
	for _, passed := range []bool{true, false} {
		prov, vsa := statements(t, sampleBuild(), passed)
		st, pred := parseStatement(t, vsa)
		var v vsav1.VerificationSummary
		if err := decode(pred, &v); err != nil {
			t.Fatal(err)
		}
		want := "FAILED"
		if passed {
			want = "PASSED"
		}
		if v.GetVerificationResult() != want || v.GetVerifier().GetId() != attest.VerifierID || st.GetPredicateType() != attest.VSAPredicateType {
			t.Errorf("vsa: %v", &v)
		}
		if v.GetPolicy().GetDigest()["sha256"] != attest.SHA256([]byte("policy"))["sha256"] || v.GetResourceUri() != attest.OutputURI {
			t.Errorf("policy or resourceUri: %v", &v)
		}
		if in := v.GetInputAttestations(); len(in) != 1 || in[0].GetDigest()["sha256"] != attest.SHA256(prov)["sha256"] {
			t.Errorf("inputAttestations: %v", in)
		}
		if v.GetTimeVerified().AsTime().Unix() != 1700000000 {
			t.Errorf("timeVerified %v is not SOURCE_DATE_EPOCH", v.GetTimeVerified().AsTime())
		}
	}
}

// TestSubjectsFallback: without output files the tree, and without output
// the source, is the subject; with neither there is no statement.
func TestSubjectsFallback(t *testing.T) {
	b := sampleBuild()
	b.Files = nil
	if s, err := b.Subjects(); err != nil || len(s) != 1 || s[0].Name != attest.OutputName || s[0].Digest["sha256"] != hexC {
		t.Errorf("tree subject: %v %v", s, err)
	}
	b.OutputDigest = ""
	if s, err := b.Subjects(); err != nil || len(s) != 1 || s[0].Name != "source" {
		t.Errorf("source subject: %v %v", s, err)
	}
	b.SourceDigest = ""
	if _, err := attest.Provenance(b); err == nil {
		t.Error("a statement without a subject was made")
	}
}

func parseStatement(t *testing.T, data []byte) (*intoto.Statement, []byte) {
	t.Helper()
	var st intoto.Statement
	if err := protojson.Unmarshal(data, &st); err != nil {
		t.Fatalf("not an in-toto statement: %v", err)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("statement does not validate: %v", err)
	}
	pred, err := st.GetPredicate().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return &st, pred
}

func decode(pred []byte, m proto.Message) error {
	return protojson.Unmarshal(pred, m)
}

// TestProvenanceGitSource: a git source is a resolved dependency beside
// the tree digest, by repository URI and commit, in a valid SLSA
// provenance; without one nothing is added.
func TestProvenanceGitSource(t *testing.T) {
	b := sampleBuild()
	commit := "0123456789abcdef0123456789abcdef01234567"
	b.Git = &attest.GitSource{URI: "git+https://github.com/org/repo.git", Commit: commit}
	prov, _ := statements(t, b, true)
	var st intoto.Statement
	if err := protojson.Unmarshal(prov, &st); err != nil {
		t.Fatal(err)
	}
	var pred provenancev1.Provenance
	if err := protojson.Unmarshal(mustJSON(t, st.GetPredicate()), &pred); err != nil {
		t.Fatal(err)
	}
	deps := pred.GetBuildDefinition().GetResolvedDependencies()
	if len(deps) < 2 || deps[0].GetName() != "source" || deps[0].GetDigest()["sha256"] != hexB {
		t.Fatalf("first dependency is not the source tree: %v", deps)
	}
	if deps[1].GetName() != attest.GitSourceName || deps[1].GetUri() != "git+https://github.com/org/repo.git" || deps[1].GetDigest()["gitCommit"] != commit {
		t.Errorf("second dependency is not the git source: %v", deps[1])
	}
	again, _ := statements(t, b, true)
	if !bytes.Equal(prov, again) {
		t.Error("not byte-stable")
	}
	b.Git = nil
	plain, _ := statements(t, b, true)
	if bytes.Contains(plain, []byte("gitCommit")) {
		t.Error("a non-git source names a commit")
	}
}

func mustJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	data, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

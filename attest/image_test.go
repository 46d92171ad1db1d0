package attest_test

import (
	"bytes"
	"testing"

	vsav1 "github.com/in-toto/attestation/go/predicates/vsa/v1"

	"github.com/buildguard/buildguard/attest"
)

// TestImageStatements: the statements about a pushed image validate as
// in-toto statements whose only subject is the image; the VSA parses as a
// VSA v1 naming the image by digest as its resource and linking the image
// provenance; the signature is cosign v3's sign statement with an empty
// predicate. The same inputs give the same bytes.
func TestImageStatements(t *testing.T) {
	const name, digest = "r.example/app", "sha256:" + hexA
	prov, err := attest.Provenance(sampleBuild())
	if err != nil {
		t.Fatal(err)
	}
	provJSON, err := attest.Marshal(attest.About(prov, name, digest))
	if err != nil {
		t.Fatal(err)
	}
	vsa := func() []byte {
		data, err := attest.Marshal(attest.ImageVSA(sampleBuild(), attest.Decision{
			Passed: true, PolicyDigest: attest.SHA256([]byte("policy")), Provenance: provJSON, ProvenanceName: attest.ImageProvenanceFile,
			ResourceURI: "oci://r.example/app:v1", // replaced: the image is named by digest
		}, name, digest))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	data := vsa()
	if !bytes.Equal(data, vsa()) {
		t.Error("the image VSA is not byte-stable")
	}
	st, pred := parseStatement(t, data)
	if s := st.GetSubject(); len(s) != 1 || s[0].GetName() != name || s[0].GetDigest()["sha256"] != hexA {
		t.Errorf("subject: %v", s)
	}
	var v vsav1.VerificationSummary
	if err := decode(pred, &v); err != nil {
		t.Fatal(err)
	}
	if v.GetResourceUri() != "oci://"+name+"@"+digest || v.GetVerificationResult() != "PASSED" || len(v.GetVerifiedLevels()) != 1 || v.GetVerifiedLevels()[0] != attest.VerifiedLevel {
		t.Errorf("vsa: %v", &v)
	}
	if in := v.GetInputAttestations(); len(in) != 1 || in[0].GetUri() != attest.ImageProvenanceFile || in[0].GetDigest()["sha256"] != attest.SHA256(provJSON)["sha256"] {
		t.Errorf("inputAttestations: %v", in)
	}

	sig, err := attest.Marshal(attest.ImageSignature(name, digest))
	if err != nil {
		t.Fatal(err)
	}
	st, pred = parseStatement(t, sig)
	if st.GetPredicateType() != "https://sigstore.dev/cosign/sign/v1" || string(bytes.TrimSpace(pred)) != "{}" {
		t.Errorf("signature statement: %s", sig)
	}
	if s := st.GetSubject(); len(s) != 1 || s[0].GetDigest()["sha256"] != hexA {
		t.Errorf("signature subject: %v", s)
	}
}

package trust

import (
	"strings"
	"testing"

	in_toto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestParseVSA: a VSA is read with the in-toto types; a result other than
// PASSED or FAILED is malformed; resourceUri must end in "@" and the
// digest to be about it.
func TestParseVSA(t *testing.T) {
	h := strings.Repeat("ab", 32)
	d, err := ParseDigest("sha256:" + h)
	if err != nil {
		t.Fatal(err)
	}
	stmt := func(result, uri string) *in_toto.Statement {
		var st in_toto.Statement
		js := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + h + `"}}],"predicateType":"` + SLSAVSAV1 + `",
			"predicate":{"verifier":{"id":"v"},"resourceUri":"` + uri + `","policy":{"uri":"p","digest":{"sha256":"00"}},"verificationResult":"` + result + `","verifiedLevels":["L1","L2"],"timeVerified":"2023-11-14T22:13:20Z"}}`
		if err := protojson.Unmarshal([]byte(js), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	s, err := parseVSA(stmt(VSAPassed, "oci://r.example/app@sha256:"+h))
	if err != nil {
		t.Fatal(err)
	}
	if *s != (VSA{VerifierID: "v", ResourceURI: "oci://r.example/app@sha256:" + h, Result: VSAPassed, Levels: "L1,L2", PolicyURI: "p", PolicyDigest: "sha256:00"}) || !s.about(d) {
		t.Errorf("parsed %+v, about %v", s, s.about(d))
	}
	for _, uri := range []string{"oci://r.example/app:v1", "oci://r.example/app@sha256:" + strings.Repeat("cd", 32), "sha256:" + h} {
		if s, err := parseVSA(stmt(VSAFailed, uri)); err != nil || s.about(d) {
			t.Errorf("%s: about %s (err %v)", uri, d, err)
		}
	}
	if _, err := parseVSA(stmt("MAYBE", "oci://r.example/app@sha256:"+h)); err == nil {
		t.Error("a verificationResult of MAYBE was accepted")
	}
}

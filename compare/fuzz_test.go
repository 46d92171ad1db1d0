package compare_test

import (
	"testing"

	"github.com/buildguard/buildguard/compare"
)

// FuzzCompare feeds arbitrary bytes as a signed build result beside a
// good one: Compare must not panic, must never count an attestation
// without a verified signer, and the arbitrary one can only count if it is
// a valid signature by the trusted key (which the fuzzer cannot forge).
func FuzzCompare(f *testing.F) {
	a := newRunner(f, "a")
	good := a.attest(f, good)
	f.Add(good.Bundle)
	f.Add(tamperBytes(f, good.Bundle))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := compare.Compare([]compare.Input{{Name: "fuzz", Bundle: data}}, compare.Options{Keys: keys(a)})
		if err != nil {
			t.Fatal(err)
		}
		r := res.Runners[0]
		if r.Counted && (r.Signer == nil || r.Signer.KeyID != a.key.Key.ID || r.Refusal != nil) {
			t.Fatalf("counted without a verified signer: %+v", r)
		}
		if !r.Counted && r.Refusal == nil {
			t.Fatalf("not counted and no reason: %+v", r)
		}
		if res.Agreed != r.Counted {
			t.Fatalf("1-of-1 agreement %v, but counted %v", res.Agreed, r.Counted)
		}
	})
}

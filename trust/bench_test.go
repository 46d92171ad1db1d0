package trust_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// BenchmarkVerifyImages verifies 20 signed images (a keyed and a keyless
// bundle each) in the in-process registry: cold, with a new verifier each
// time, and cached, with one verifier whose per-digest cache is warm.
func BenchmarkVerifyImages(b *testing.B) {
	f := trusttest.New(b)
	reg := newTestRegistry(b, true)
	var refs []string
	for i := range 20 {
		repo := fmt.Sprintf("bench/img%d", i)
		ref, desc := reg.image(b, repo)
		d, err := trust.ParseDigest(desc.Digest.String())
		if err != nil {
			b.Fatal(err)
		}
		reg.attachBundle(b, repo, desc, trusttest.JSON(b, f.Keyed(b, trusttest.Statement(b, trust.CosignSignPredicate, d))))
		reg.attachBundle(b, repo, desc, trusttest.JSON(b, f.Keyless(b, trusttest.Statement(b, trust.CosignSignPredicate, d))))
		refs = append(refs, ref)
	}
	verify := func(b *testing.B, v *trust.Verifier) {
		results, errs := v.VerifyImages(b.Context(), refs, 0)
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if !r.Verified {
				b.Fatalf("%s refused: %q", r.Ref, r.Reasons())
			}
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			verify(b, trusttest.Verifier(b, f.Policy(), trust.WithKeychain(anonymous)))
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := trusttest.Verifier(b, f.Policy(), trust.WithKeychain(anonymous))
		verify(b, v)
		for b.Loop() {
			verify(b, v)
		}
	})
}

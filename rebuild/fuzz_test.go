package rebuild_test

import (
	"errors"
	"testing"

	"github.com/buildguard/buildguard/rebuild"
)

// FuzzParseRecipe: any predicate gives a recipe or ErrNoRecipe, never a
// panic; a recipe always names a pinned builder, a source digest, a
// command and an output.
func FuzzParseRecipe(f *testing.F) {
	f.Add(predicate(f, build(), nil))
	f.Add([]byte(`{"buildDefinition":{"buildType":"https://github.com/buildguard/buildguard/buildtypes/guarded-build/v1"},"runDetails":{"builder":{"id":"https://github.com/buildguard/buildguard/builder/v1"}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := rebuild.ParseRecipe(data)
		if err != nil {
			if !errors.Is(err, rebuild.ErrNoRecipe) {
				t.Fatalf("error %v is not ErrNoRecipe", err)
			}
			return
		}
		if r.BuilderDigest() == "" || r.SourceDigest == "" || len(r.Command) == 0 || r.OutputDigest == "" {
			t.Fatalf("incomplete recipe %+v", r)
		}
	})
}

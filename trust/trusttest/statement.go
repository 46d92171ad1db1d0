package trusttest

import (
	"testing"

	"github.com/buildguard/buildguard/trust"
)

// Statement is an in-toto statement of predicateType, with an empty
// predicate, about digests.
func Statement(t testing.TB, predicateType string, digests ...trust.Digest) []byte {
	t.Helper()
	return StatementWith(t, predicateType, map[string]any{}, digests...)
}

// StatementWith is an in-toto statement of predicateType and predicate
// about digests.
func StatementWith(t testing.TB, predicateType string, predicate any, digests ...trust.Digest) []byte {
	t.Helper()
	var subjects []map[string]any
	for _, d := range digests {
		subjects = append(subjects, map[string]any{"name": "image", "digest": map[string]string{d.Algorithm: d.Hex}})
	}
	return MustJSON(t, map[string]any{"_type": "https://in-toto.io/Statement/v1", "subject": subjects, "predicateType": predicateType, "predicate": predicate})
}

// ProvenanceV02 is an SLSA v0.2 provenance statement: builder built the
// digests from source (a URI such as git+https://github.com/org/repo@ref).
func ProvenanceV02(t testing.TB, builder, source string, digests ...trust.Digest) []byte {
	t.Helper()
	return StatementWith(t, trust.SLSAProvenanceV02, map[string]any{
		"buildType":  "https://example.com/build/v1",
		"builder":    map[string]any{"id": builder},
		"invocation": map[string]any{"configSource": map[string]any{"uri": source, "entryPoint": "build.yml"}},
	}, digests...)
}

// ProvenanceV1 is an SLSA v1 provenance statement in the GitHub Actions
// build type: builder built the digests from repository.
func ProvenanceV1(t testing.TB, builder, repository string, digests ...trust.Digest) []byte {
	t.Helper()
	return StatementWith(t, trust.SLSAProvenanceV1, map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{"repository": repository, "ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
		},
		"runDetails": map[string]any{"builder": map[string]any{"id": builder}},
	}, digests...)
}

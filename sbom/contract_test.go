package sbom

import (
	"testing"

	"github.com/buildguard/buildguard/policy"
)

// TestPackageIsPolicyPackage keeps Package convertible to policy.Package,
// what CEL rules see: the same fields, in the same order, of the same types.
func TestPackageIsPolicyPackage(t *testing.T) {
	p := policy.Package(Package{Name: "n", Version: "v", PURL: "pkg:golang/n@v", Licenses: []string{"MIT"}})
	if p.Name != "n" || p.PURL != "pkg:golang/n@v" || p.Licenses[0] != "MIT" {
		t.Errorf("%+v", p)
	}
}

package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
)

func TestGoVendorDependencies(t *testing.T) {
	txt := []byte(`# example.com/a v1.0.0
## explicit; go 1.22
example.com/a
example.com/a/sub
# example.com/nopkgs v0.1.0
## explicit
# example.com/old v1.2.0 => example.com/new v1.3.0
## explicit
example.com/old
# example.com/local => ../local
example.com/local
`)
	sum := []byte(`example.com/a v1.0.0 h1:AAA=
example.com/a v1.0.0/go.mod h1:MOD=
example.com/new v1.3.0 h1:NEW=
`)
	h := sha256.Sum256(txt)
	want := []ResourceDescriptor{
		{Name: GoModulesTxt, Digest: map[string]string{"sha256": hex.EncodeToString(h[:])}, MediaType: "text/plain"},
		{Name: "example.com/a@v1.0.0", URI: "pkg:golang/example.com/a@v1.0.0", Digest: map[string]string{"dirHash": "h1:AAA="}, MediaType: GoModuleMediaType},
		{Name: "example.com/new@v1.3.0", URI: "pkg:golang/example.com/new@v1.3.0", Digest: map[string]string{"dirHash": "h1:NEW="}, MediaType: GoModuleMediaType},
		{Name: "example.com/local", MediaType: GoModuleMediaType, Annotations: map[string]any{"replace": "../local"}},
	}
	if got := GoVendorDependencies(txt, sum); !reflect.DeepEqual(got, want) {
		t.Errorf("GoVendorDependencies =\n%+v\nwant\n%+v", got, want)
	}
	if got := GoVendorDependencies(nil, sum); got != nil {
		t.Errorf("without modules.txt: %v, want nil", got)
	}
}

func FuzzGoVendorDependencies(f *testing.F) {
	f.Add([]byte("# a v1\na\n# b => c\nb\n# x v => y\n"), []byte("a v1 h1:x\n"))
	f.Fuzz(func(t *testing.T, txt, sum []byte) {
		GoVendorDependencies(txt, sum)
	})
}

package sbom

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	syftsbom "github.com/anchore/syft/syft/sbom"
)

// scanModel is Generate up to the encoding: syft's model of dir.
func scanModel(t *testing.T, dir string) *sbomModel {
	t.Helper()
	target, err := ParseTarget(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{}
	src, err := target.open(t.Context(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s, err := scan(t.Context(), src, &opts)
	if err != nil {
		t.Fatal(err)
	}
	target.sanitize(s)
	return s
}

// TestSameAsSyftEncoders proves our documents are what syft's own
// encoders (spdxjson 2.3, cyclonedxjson 1.6) write for the same model,
// except for exactly the fields we replace: the creation time and the
// random namespace UUID or serial number.
func TestSameAsSyftEncoders(t *testing.T) {
	s := scanModel(t, fixtureTree(t, t.TempDir(), "out"))
	spdxEnc, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.EncoderConfig{Version: "2.3"})
	if err != nil {
		t.Fatal(err)
	}
	cdxEnc, err := cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.EncoderConfig{Version: "1.6"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format   Format
		enc      syftsbom.FormatEncoder
		replaced []string
	}{
		{SPDXJSON, spdxEnc, []string{"creationInfo.created", "documentNamespace"}},
		{CycloneDXJSON, cdxEnc, []string{"metadata.timestamp", "serialNumber"}},
	}
	for _, tt := range tests {
		ours, err := encode(tt.format, s, epoch)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := format.Encode(*s, tt.enc)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(ours, theirs) {
			t.Fatalf("%s: identical to syft's output, so nothing was made deterministic", tt.format)
		}
		a, b := decode(t, ours), decode(t, theirs)
		if ns, nt := a["documentNamespace"], b["documentNamespace"]; ns != nil {
			// the same URI up to the UUID
			if s, t2 := ns.(string), nt.(string); s[:len(s)-36] != t2[:len(t2)-36] {
				t.Errorf("namespace %q, syft's %q", s, t2)
			}
		}
		for _, path := range tt.replaced {
			drop(a, path)
			drop(b, path)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: beyond %v, our document differs from syft's encoder's", tt.format, tt.replaced)
		}
	}
}

func decode(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// drop deletes the value at a dotted path.
func drop(m map[string]any, path string) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		m, _ = m[k].(map[string]any)
	}
	delete(m, keys[len(keys)-1])
}

// TestSyftVersionMatchesGoMod keeps SyftVersion, which the documents name,
// equal to the syft the module builds with.
func TestSyftVersionMatchesGoMod(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/anchore/syft").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != SyftVersion {
		t.Errorf("go.mod has syft %s, SyftVersion is %s", got, SyftVersion)
	}
}

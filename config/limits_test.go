package config_test

import (
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
)

// TestLimitsLoad reads every field of the limits section of the full
// example, sizes in the quantity syntax.
func TestLimitsLoad(t *testing.T) {
	c := mustLoad(t, "testdata/full.yaml")
	want := config.InputLimits{
		ImageBytes: 16 << 30, Layers: 512, TarEntries: 2_000_000, PathLength: 8192, PathDepth: 512,
		BuildLogBytes: 64 << 20, OutputEntries: 2_000_000,
		Referrers: 256, SignatureManifestBytes: 128 << 10, BundleBytes: 8 << 20, BundleLogEntries: 32,
		DiffFiles: 100, DiffLines: 1000, DiffFileBytes: 1 << 30,
	}
	if c.Limits != want {
		t.Errorf("Limits = %+v\nwant     %+v", c.Limits, want)
	}
	if got := c.Line("limits.diffLines"); got == 0 {
		t.Error(`Line("limits.diffLines") = 0: the field's line is not recorded`)
	}
}

// TestLimitsDefault: a file without a limits section, or with zeros, leaves
// every limit at zero, which the packages that apply them read as their
// default.
func TestLimitsDefault(t *testing.T) {
	for _, yml := range [][]byte{
		doc(head),
		doc(head, "limits: {}"),
		doc(head, "limits:"),
		doc(head, "limits: {imageBytes: 0, tarEntries: 0, diffLines: 0}"),
	} {
		c, err := config.Parse(yml, "buildguard.yaml")
		if err != nil {
			t.Fatalf("%s: %v", yml, err)
		}
		if c.Limits != (config.InputLimits{}) {
			t.Errorf("%s: Limits = %+v, want all zero (the defaults)", yml, c.Limits)
		}
	}
}

// TestLimitsProblems: each problem is reported at its line, with the field
// path and what to write instead.
func TestLimitsProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml []byte
		want []string
	}{
		{"unknown field", doc(head, "limits:", "  cpus: 4"),
			[]string{"buildguard.yaml:6: limits.cpus: unknown field; known fields here: imageBytes, layers, tarEntries, pathLength, pathDepth, buildLogBytes, outputEntries, referrers, signatureManifestBytes, bundleBytes, bundleLogEntries, diffFiles, diffLines, diffFileBytes"}},
		{"did you mean", doc(head, "limits:", "  tar_entries: 5"),
			[]string{`buildguard.yaml:6: limits.tar_entries: unknown field; did you mean "tarEntries"?`}},
		{"did you mean, typo", doc(head, "limits:", "  layers: 3", "  imageByte: 1Gi"),
			[]string{`buildguard.yaml:7: limits.imageByte: unknown field; did you mean "imageBytes"?`}},
		{"negative count", doc(head, "limits:", "  diffLines: 10", "  tarEntries: -1"),
			[]string{"buildguard.yaml:7: limits.tarEntries: must not be negative, got -1 (leave it out or 0 for the default)"}},
		{"negative size", doc(head, "limits:", "  bundleBytes: -4Mi"),
			[]string{"buildguard.yaml:6: limits.bundleBytes: must not be negative, got -4194304"}},
		{"count too large", doc(head, "limits: {layers: 4294967296}"),
			[]string{"buildguard.yaml:5: limits.layers: must be at most 2147483647, got 4294967296"}},
		{"size with B", doc(head, "limits: {imageBytes: 8GB}"),
			[]string{`buildguard.yaml:5: limits.imageBytes: want a quantity such as 512Mi, 4Gi, 1G or a number of bytes, got "8GB": units take no B`}},
		{"quantity for a count", doc(head, "limits: {tarEntries: 2M}"),
			[]string{"buildguard.yaml:5: limits.tarEntries: want an integer, got a string"}},
		{"limits not a mapping", doc(head, "limits: 8Gi"),
			[]string{"buildguard.yaml:5: limits: want a mapping, got a string"}},
		{"builder.limits is another section", doc(head, "  limits: {tarEntries: 5}"),
			[]string{"buildguard.yaml:5: builder.limits.tarEntries: unknown field; known fields here: memory, pids"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse(tc.yaml, "buildguard.yaml")
			assertConfigError(t, err)
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

// TestLimitsValidateProgrammatic: a Config changed after loading (as the
// CLI does with --max-... flags) is checked again by Validate.
func TestLimitsValidateProgrammatic(t *testing.T) {
	c, err := config.Parse(doc(head, "limits:", "  referrers: 10"), "buildguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Limits.Referrers = -5
	err = c.Validate()
	assertConfigError(t, err)
	if want := "buildguard.yaml:6: limits.referrers: must not be negative, got -5"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Validate() = %q, want %q...", err, want)
	}
}

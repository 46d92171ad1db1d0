package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/buildguard/buildguard/config"
	yaml "go.yaml.in/yaml/v3"
)

// FuzzParse checks properties of Parse on any input: it does not panic;
// every error is a configuration error (ErrInvalid, exit code 2, each
// problem too); and a config it accepts validates again, marshals to JSON,
// and survives a YAML round trip unchanged.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(doc(head))
	for _, tc := range problemCases {
		f.Add(tc.yaml)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, "/fuzz/buildguard.yaml")
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error is not ErrInvalid: %v", err)
			}
			var es config.Errors
			if !errors.As(err, &es) || len(es) == 0 || es.ExitCode() != 2 {
				t.Fatalf("error is not a non-empty config.Errors: %T %v", err, err)
			}
			for _, e := range es {
				if e.ExitCode() != 2 || e.Msg == "" {
					t.Fatalf("bad problem %#v", e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not re-validate: %v", err)
		}
		j1, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		c2, err := config.Parse(out, "/fuzz/buildguard.yaml")
		if err != nil {
			t.Fatalf("re-parsing the marshalled config: %v\n%s", err, out)
		}
		j2, err := json.Marshal(c2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(j1, j2) {
			t.Fatalf("YAML round trip changed the config:\n%s\n%s", j1, j2)
		}
	})
}

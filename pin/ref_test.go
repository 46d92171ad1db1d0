package pin

import (
	"errors"
	"strings"
	"testing"
)

const testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func TestParseRef(t *testing.T) {
	tests := []struct {
		text, repo, tag, digest, key, pinned string
	}{
		{"golang:1.26", "docker.io/library/golang", "1.26", "", "docker.io/library/golang:1.26", "golang:1.26@" + testDigest},
		{"golang", "docker.io/library/golang", "", "", "docker.io/library/golang:latest", "golang:latest@" + testDigest},
		{"docker.io/library/golang:1.26", "docker.io/library/golang", "1.26", "", "docker.io/library/golang:1.26", "docker.io/library/golang:1.26@" + testDigest},
		{"org/app:v1", "docker.io/org/app", "v1", "", "docker.io/org/app:v1", "org/app:v1@" + testDigest},
		{"localhost:5000/app", "localhost:5000/app", "", "", "localhost:5000/app:latest", "localhost:5000/app:latest@" + testDigest},
		{"127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b", "c", "", "127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c@" + testDigest},
		{"ghcr.io/o/i:v2@" + strings.ReplaceAll(testDigest, "1", "2"), "ghcr.io/o/i", "v2", strings.ReplaceAll(testDigest, "1", "2"), "ghcr.io/o/i:v2", "ghcr.io/o/i:v2@" + testDigest},
		{"alpine@" + testDigest, "docker.io/library/alpine", "", testDigest, "docker.io/library/alpine@" + testDigest, "alpine@" + testDigest},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			r, err := ParseRef(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if r.Text != tt.text || r.Repo != tt.repo || r.Tag != tt.tag || r.Digest != tt.digest {
				t.Errorf("ParseRef(%q) = {Text %q Repo %q Tag %q Digest %q}, want {%q %q %q %q}", tt.text, r.Text, r.Repo, r.Tag, r.Digest, tt.text, tt.repo, tt.tag, tt.digest)
			}
			if r.Key() != tt.key {
				t.Errorf("Key() = %q, want %q", r.Key(), tt.key)
			}
			if got := r.WithDigest(testDigest); got != tt.pinned {
				t.Errorf("WithDigest() = %q, want %q", got, tt.pinned)
			}
		})
	}
}

func TestParseRefMalformed(t *testing.T) {
	for _, text := range []string{
		"",
		"Golang:1.26",            // upper case repository
		"golang:1.26@sha256:abc", // short digest
		"golang@md5:" + strings.Repeat("a", 32),
		"golang:1.26 ",
		"golang:bad tag",
		"golang::1",
		"-leading/dash",
		strings.Repeat("a", 2000),
		strings.Repeat("0", 248), // "library/" makes it 256: over the spec's 255, pinned or not
		"\xe5\xfd.example/a:1",   // not a host name
		"reg_istry.example/a:1",
		"registry.example/" + strings.Repeat("a/", 480) + "a", // fits as written, too long once pinned
	} {
		_, err := ParseRef(text)
		if err == nil {
			t.Errorf("ParseRef(%q) succeeded, want an error", text)
			continue
		}
		if !errors.Is(err, ErrMalformedReference) {
			t.Errorf("ParseRef(%q) error %v does not match ErrMalformedReference", text, err)
		}
		var re *RefError
		if !errors.As(err, &re) || re.ExitCode() != 2 {
			t.Errorf("ParseRef(%q) error %v is not a usage error", text, err)
		}
	}
}

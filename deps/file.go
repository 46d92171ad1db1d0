package deps

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// fileDep is one file entry: fetched from its URL, pinned by its sha256,
// shown to the build read-only at its dest.
type fileDep struct {
	dep  Dependency
	dest string
	a    *artifact
}

// planFile checks a file entry: an http(s) URL, a sha256 of 64 lowercase
// hex digits (the only pin a file can have: an unpinned file is refused,
// not fetched), and a dest inside the workdir.
func planFile(spec Spec) (*fileDep, error) {
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("file %q: url %q: %w: not an http or https URL", spec.Dest, spec.URL, ErrConfig)
	}
	if !isHex(spec.SHA256, 32) {
		return nil, fmt.Errorf("file %q: sha256 %q: %w: want 64 lowercase hex digits", spec.Dest, spec.SHA256, ErrConfig)
	}
	dest := filepath.ToSlash(filepath.Clean(filepath.FromSlash(spec.Dest)))
	if spec.Dest == "" || strings.Contains(spec.Dest, "\\") || !filepath.IsLocal(filepath.FromSlash(spec.Dest)) || dest == "." {
		return nil, fmt.Errorf("file dest %q: %w: want a path inside the workdir", spec.Dest, ErrConfig)
	}
	sum, err := hex.DecodeString(spec.SHA256)
	if err != nil {
		return nil, fmt.Errorf("file %q: sha256: %w: %w", spec.Dest, ErrConfig, err)
	}
	d := Dependency{Type: TypeFile, Name: dest, PURL: spec.URL, Pinned: true, Source: dest}
	return &fileDep{
		dep:  d,
		dest: dest,
		a: &artifact{
			dep:  d,
			what: "file",
			urls: []proxy{{url: spec.URL}},
			pin:  pin{kind: pinHash, algo: "sha256", sum: sum, text: spec.SHA256},
		},
	}, nil
}

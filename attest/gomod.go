package attest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// GoModulesTxt is the list of a vendored Go source tree's modules, relative
// to the source.
const GoModulesTxt = "vendor/modules.txt"

// MaxGoVendorFile bounds vendor/modules.txt and go.sum when they are read
// for the provenance.
const MaxGoVendorFile = 16 << 20

// GoModuleMediaType is the media type of a vendored Go module dependency.
const GoModuleMediaType = "application/vnd.buildguard.go-module.v1"

// GoVendorDependencies are the resolved dependencies of a vendored Go
// source tree (the tree's manifest digest covers vendor/ already): its
// vendor/modules.txt by SHA-256, then each module with packages in vendor/,
// in modules.txt's order, as pkg:golang/PATH@VERSION with go.sum's h1:
// hash as digest dirHash when go.sum holds it. A module replaced by a
// directory is named with the directory in the annotation "replace" and
// has no digest. Nothing is returned for an empty modulesTxt.
func GoVendorDependencies(modulesTxt, goSum []byte) []ResourceDescriptor {
	if len(modulesTxt) == 0 {
		return nil
	}
	sum := sha256.Sum256(modulesTxt)
	out := []ResourceDescriptor{{Name: GoModulesTxt, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}, MediaType: "text/plain"}}
	h1 := goSumHashes(goSum)
	var cur *ResourceDescriptor
	s := bufio.NewScanner(bytes.NewReader(modulesTxt))
	s.Buffer(nil, MaxGoVendorFile)
	for s.Scan() {
		line := s.Text()
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "#":
			cur = goModule(f[1:], h1)
		case len(f) == 1 && !strings.HasPrefix(line, "#") && cur != nil:
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

// goModule describes the module of a modules.txt header's fields: PATH
// VERSION, PATH [VERSION] => DIR, or PATH [VERSION] => NEWPATH NEWVERSION.
func goModule(f []string, h1 map[string]string) *ResourceDescriptor {
	path, version := f[0], f[1]
	if i := indexOf(f, "=>"); i >= 0 {
		if i == 1 {
			version = ""
		}
		switch rest := f[i+1:]; len(rest) {
		case 1:
			name := path
			if version != "" {
				name += "@" + version
			}
			return &ResourceDescriptor{Name: name, MediaType: GoModuleMediaType, Annotations: map[string]any{"replace": rest[0]}}
		case 2:
			path, version = rest[0], rest[1]
		default:
			return nil
		}
	}
	rd := &ResourceDescriptor{Name: path + "@" + version, URI: "pkg:golang/" + path + "@" + version, MediaType: GoModuleMediaType}
	if h, ok := h1[path+" "+version]; ok {
		rd.Digest = map[string]string{"dirHash": h}
	}
	return rd
}

// goSumHashes maps "PATH VERSION" to the module's h1: hash in go.sum (not
// its go.mod's).
func goSumHashes(goSum []byte) map[string]string {
	m := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(goSum))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 3 && !strings.HasSuffix(f[1], "/go.mod") && strings.HasPrefix(f[2], "h1:") {
			m[f[0]+" "+f[1]] = f[2]
		}
	}
	return m
}

func indexOf(f []string, s string) int {
	for i, v := range f {
		if v == s {
			return i
		}
	}
	return -1
}

package deps

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// maxLockfileBytes bounds a lockfile read (go.sum, package-lock.json).
const maxLockfileBytes = 256 << 20

// goSumLine is one line of go.sum: a module zip's h1 ("path version h1:")
// or, when goMod, its go.mod's ("path version/go.mod h1:").
type goSumLine struct {
	path, version string
	goMod         bool
	hash          string
}

// parseGoSum reads go.sum as the go command writes it. Every non-blank line
// must be three fields: a valid module path and version (module.Check,
// which refuses paths with "..", backslashes and the like), and an h1 hash
// of a sha256. Two different hashes for the same module and part are
// refused: which one pins it would be a guess. name is used in messages.
func parseGoSum(data []byte, name string) ([]goSumLine, error) {
	var out []goSumLine
	seen := map[goSumLine]string{}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("%s:%d: %w: malformed go.sum line: %s", name, i+1, ErrConfig, why)
		}
		if len(f) != 3 {
			return nil, bad("want three fields")
		}
		l := goSumLine{path: f[0], version: f[1], hash: f[2]}
		if v, ok := strings.CutSuffix(l.version, "/go.mod"); ok {
			l.version, l.goMod = v, true
		}
		if err := module.Check(l.path, l.version); err != nil {
			return nil, bad(err.Error())
		}
		if _, ok := parseH1(l.hash); !ok {
			return nil, bad("not an h1 hash")
		}
		k := l
		k.hash = ""
		if h, ok := seen[k]; ok {
			if h != l.hash {
				return nil, bad(fmt.Sprintf("a second, different hash for %s %s", l.path, f[1]))
			}
			continue
		}
		seen[k] = l.hash
		out = append(out, l)
	}
	return out, nil
}

// formatGoSum writes lines as go.sum does.
func formatGoSum(lines []goSumLine) []byte {
	var b strings.Builder
	for _, l := range lines {
		v := l.version
		if l.goMod {
			v += "/go.mod"
		}
		fmt.Fprintf(&b, "%s %s %s\n", l.path, v, l.hash)
	}
	return []byte(b.String())
}

// goModule is one module version a go.sum pins, with its parts.
type goModule struct {
	dep      Dependency
	zip, mod *artifact // either may be nil, not both
}

// planGoMod reads spec.Dir's go.sum and returns one goModule per module
// version, in go.sum order. A module go.sum pins only by its go.mod (the go
// command needs it for the module graph, compiles none of its code) is a
// dependency too, with only the go.mod fetched.
func planGoMod(spec Spec, proxies []proxy) ([]*goModule, error) {
	if _, err := os.Stat(filepath.Join(spec.Dir, "go.mod")); err != nil {
		return nil, fmt.Errorf("gomod %s: %w: %w", spec.Path, ErrConfig, err)
	}
	file := filepath.Join(spec.Dir, "go.sum")
	data, err := readLockfile(file)
	if err != nil {
		return nil, fmt.Errorf("gomod %s: %w", spec.Path, err)
	}
	lines, err := parseGoSum(data, file)
	if err != nil {
		return nil, err
	}
	byMod := map[module.Version]*goModule{}
	var out []*goModule
	for _, l := range lines {
		mv := module.Version{Path: l.path, Version: l.version}
		m := byMod[mv]
		if m == nil {
			m = &goModule{dep: Dependency{
				Type:    TypeGoMod,
				Name:    l.path,
				Version: l.version,
				PURL:    goPURL(l.path, l.version),
				Pinned:  true,
				Source:  spec.Path,
			}}
			byMod[mv] = m
			out = append(out, m)
		}
		sum, _ := parseH1(l.hash) // parseGoSum checked it
		ext, kind, what := ".zip", pinH1Zip, "module zip"
		if l.goMod {
			ext, kind, what = ".mod", pinH1Mod, "go.mod"
		}
		rel, err := goProxyPath(mv, ext)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", file, ErrConfig, err)
		}
		a := &artifact{
			dep:  m.dep,
			what: what,
			pin:  pin{kind: kind, algo: "h1", sum: sum, text: l.hash},
			mod:  mv,
		}
		for _, p := range proxies {
			a.urls = append(a.urls, proxy{url: p.url + "/" + rel, anyError: p.anyError})
		}
		if l.goMod {
			m.mod = a
		} else {
			m.zip = a
		}
	}
	return out, nil
}

// goProxyPath is the module proxy protocol's path of a module version's
// file (ext ".zip", ".mod", ".info"), relative to the proxy's root: the
// same path names the file in the proxy directory the build reads.
func goProxyPath(mv module.Version, ext string) (string, error) {
	p, err := module.EscapePath(mv.Path)
	if err != nil {
		return "", err
	}
	v, err := module.EscapeVersion(mv.Version)
	if err != nil {
		return "", err
	}
	return p + "/@v/" + v + ext, nil
}

// digest fills m.dep.Digest from its verified parts: the zip's sha256 and
// h1 ("dirHash"), and the go.mod's h1 ("goModDirHash"); for a module
// pinned only by its go.mod, sha256 is the go.mod's.
func (m *goModule) digest() {
	d := map[string]string{}
	if m.mod != nil && m.mod.sums != nil {
		d["goModDirHash"] = m.mod.pin.text
		d["sha256"] = hex.EncodeToString(m.mod.sums["sha256"])
	}
	if m.zip != nil && m.zip.sums != nil {
		d["dirHash"] = m.zip.pin.text
		d["sha256"] = hex.EncodeToString(m.zip.sums["sha256"])
	}
	m.dep.Digest = d
}

// goProxyView lays out a module proxy directory (GOPROXY=file://...) that
// holds exactly the verified parts: <escaped path>/@v/<version>.zip and
// .mod, an .info for each version (the go command reads it for some
// lookups) and a list of the versions.
func goProxyView(mods []*goModule) ([]viewFile, error) {
	var files []viewFile
	versions := map[string][]string{} // escaped path -> versions
	for _, m := range mods {
		mv := module.Version{Path: m.dep.Name, Version: m.dep.Version}
		for _, a := range []*artifact{m.zip, m.mod} {
			if a == nil {
				continue
			}
			ext := ".zip"
			if a == m.mod {
				ext = ".mod"
			}
			rel, err := goProxyPath(mv, ext)
			if err != nil {
				return nil, err
			}
			files = append(files, viewFile{rel: rel, blob: a.blob, sum: hex.EncodeToString(a.sums["sha256"])})
		}
		rel, err := goProxyPath(mv, ".info")
		if err != nil {
			return nil, err
		}
		info, err := json.Marshal(struct{ Version string }{mv.Version})
		if err != nil {
			return nil, err
		}
		files = append(files, dataFile(rel, append(info, '\n')))
		dir := strings.TrimSuffix(rel, ".info")
		dir = dir[:strings.LastIndex(dir, "/")]
		versions[dir] = append(versions[dir], mv.Version)
	}
	for dir, vs := range versions {
		semver.Sort(vs)
		vs = dedupeSorted(vs)
		files = append(files, dataFile(dir+"/list", []byte(strings.Join(vs, "\n")+"\n")))
	}
	return files, nil
}

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// goPURL is pkg:golang/<path>@<version>, each segment percent-encoded.
func goPURL(path, version string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = purlEscape(s)
	}
	return "pkg:golang/" + strings.Join(segs, "/") + "@" + purlEscape(version)
}

// purlEscape percent-encodes all but the unreserved characters.
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// readLockfile reads a lockfile, bounded; a missing one is ErrConfig.
func readLockfile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := readBounded(f, maxLockfileBytes)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return data, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

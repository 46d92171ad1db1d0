package deps

import (
	"crypto/sha1" //nolint:gosec // cacache names index lines by sha1; not a security use
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/mod/semver"
)

// npmName is a package name npm's registry accepts (validate-npm-package-
// name, old names' capitals included): an optional @scope/, then a name;
// neither starts with "." or "_", so "..", "." and "../x" are refused.
var npmName = regexp.MustCompile(`^(@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*$`)

// npmVersion is the characters of a semver version, nothing that could
// leave a URL path segment or a file name.
var npmVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+-]*$`)

const maxNPMName = 214

// packageLock is the part of package-lock.json prefetch reads.
type packageLock struct {
	LockfileVersion int                  `json:"lockfileVersion"`
	Packages        map[string]lockEntry `json:"packages"`
}

type lockEntry struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Resolved  string `json:"resolved"`
	Integrity string `json:"integrity"`
	Link      bool   `json:"link"`
	InBundle  bool   `json:"inBundle"`
}

// npmEntry is one package a lockfile pins, as parsed.
type npmEntry struct {
	key       string // the packages key (node_modules/.../name)
	name      string // the registry name
	version   string
	resolved  string // "" when the lockfile omits it
	integrity pin    // the strongest hash named, or pinNone
}

// parsePackageLock returns the packages a lockfileVersion 2 or 3
// package-lock.json pins, sorted by key. Skipped: the root (""), links
// (workspaces and file: dependencies: part of the source), entries inBundle
// (inside their parent's tarball), keys with no node_modules/ (workspace
// folders), and resolved file: tarballs. A name that is not an npm package
// name is refused, so that no name can lead outside the cache.
func parsePackageLock(data []byte, name string) ([]npmEntry, error) {
	var lock packageLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrConfig, err)
	}
	switch lock.LockfileVersion {
	case 2, 3:
	case 1:
		return nil, fmt.Errorf("%s: %w: lockfileVersion 1 has no packages section; run npm install with npm 7 or later to upgrade it", name, ErrConfig)
	default:
		return nil, fmt.Errorf("%s: %w: lockfileVersion %d is not supported (want 2 or 3)", name, ErrConfig, lock.LockfileVersion)
	}
	var out []npmEntry
	for _, key := range sortedKeys(lock.Packages) {
		e := lock.Packages[key]
		i := strings.LastIndex(key, "node_modules/")
		if key == "" || e.Link || e.InBundle || i < 0 || strings.HasPrefix(e.Resolved, "file:") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s: packages[%q]: %w: %s", name, key, ErrConfig, fmt.Sprintf(format, args...))
		}
		if i > 0 && key[i-1] != '/' {
			return nil, bad("not a node_modules path")
		}
		n := key[i+len("node_modules/"):]
		if !validNPMName(n) {
			return nil, bad("%q is not an npm package name", n)
		}
		if e.Name != "" {
			if !validNPMName(e.Name) {
				return nil, bad("name %q is not an npm package name", e.Name)
			}
			n = e.Name
		}
		if !npmVersion.MatchString(e.Version) {
			return nil, bad("version %q is not a registry version", e.Version)
		}
		if e.Resolved != "" {
			u, err := url.Parse(e.Resolved)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, bad("resolved %q: only registry (http or https) tarballs can be fetched", e.Resolved)
			}
		}
		p, err := parseIntegrity(e.Integrity)
		if err != nil {
			return nil, bad("integrity: %v", err)
		}
		out = append(out, npmEntry{key: key, name: n, version: e.Version, resolved: e.Resolved, integrity: p})
	}
	return out, nil
}

func validNPMName(n string) bool {
	return len(n) <= maxNPMName && npmName.MatchString(n)
}

// sriRank orders the algorithms as npm does: the strongest is checked.
var sriRank = map[string]int{"sha1": 1, "sha256": 2, "sha384": 3, "sha512": 4}

// parseIntegrity reads an SRI string ("sha512-<base64> sha1-<base64>...")
// and returns its strongest hash; "" is pinNone. Unknown algorithms are
// skipped, as ssri does; a known one with a digest of the wrong size, or a
// string with no usable hash at all, is an error.
func parseIntegrity(s string) (pin, error) {
	best := pin{}
	if strings.TrimSpace(s) == "" {
		return best, nil
	}
	for _, f := range strings.Fields(s) {
		algo, b64, ok := strings.Cut(f, "-")
		if !ok || sriRank[algo] == 0 {
			continue
		}
		b64, _, _ = strings.Cut(b64, "?") // SRI options
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sum) != newHash(algo).Size() {
			return pin{}, fmt.Errorf("%q is not a %s digest", f, algo)
		}
		if sriRank[algo] > sriRank[best.algo] {
			best = pin{kind: pinHash, algo: algo, sum: sum, text: algo + "-" + base64.StdEncoding.EncodeToString(sum)}
		}
	}
	if best.kind == pinNone {
		return pin{}, fmt.Errorf("%q names no sha1, sha256, sha384 or sha512 digest", s)
	}
	return best, nil
}

// npmPackage is one package to fetch and lay out.
type npmPackage struct {
	dep Dependency
	a   *artifact
	// url is what npm in the build requests for the tarball (and so the
	// cache key); regURL is the registry's own URL for it.
	url, regURL string
}

// planNPM reads spec.Dir's package-lock.json. The tarball is fetched from
// the URL npm itself would request, so that the cache answers exactly
// that request: the lockfile's resolved URL when there is one (a resolved
// URL on registry.npmjs.org is moved to the configured registry, as npm's
// replace-registry-host=npmjs default does), else
// <registry>/<name>/-/<basename>-<version>.tgz. A resolved URL on another
// host is fetched as it is: the integrity, not the host, decides whether
// the bytes are the pinned ones, and the report names the host.
func planNPM(spec Spec, registry string) ([]*npmPackage, error) {
	if _, err := os.Stat(filepath.Join(spec.Dir, "package.json")); err != nil {
		return nil, fmt.Errorf("npm %s: %w: %w", spec.Path, ErrConfig, err)
	}
	file := filepath.Join(spec.Dir, "package-lock.json")
	data, err := readLockfile(file)
	if err != nil {
		return nil, fmt.Errorf("npm %s: %w", spec.Path, err)
	}
	entries, err := parsePackageLock(data, file)
	if err != nil {
		return nil, err
	}
	out := make([]*npmPackage, 0, len(entries))
	for _, e := range entries {
		reg := npmTarballURL(registry, e.name, e.version)
		u := reg
		if e.resolved != "" {
			u = e.resolved
			if rest, ok := strings.CutPrefix(u, strings.TrimSuffix(DefaultNPMRegistry, "/")+"/"); ok {
				u = registry + rest
			}
		}
		d := Dependency{
			Type:    TypeNPM,
			Name:    e.name,
			Version: e.version,
			PURL:    npmPURL(e.name, e.version),
			Pinned:  e.integrity.kind != pinNone,
			Weak:    e.integrity.algo == "sha1",
			Source:  spec.Path,
		}
		out = append(out, &npmPackage{
			dep:    d,
			url:    u,
			regURL: reg,
			a:      &artifact{dep: d, what: "tarball", urls: []proxy{{url: u}}, pin: e.integrity},
		})
	}
	return out, nil
}

// npmTarballURL is the registry's tarball URL for name@version: the
// basename drops the scope (@s/n -> n-1.0.0.tgz).
func npmTarballURL(registry, name, version string) string {
	base := name[strings.LastIndex(name, "/")+1:]
	return registry + name + "/-/" + base + "-" + version + ".tgz"
}

// npmPackumentURL is where npm asks for a package's metadata: a scoped
// name's slash is escaped as npm-package-arg does.
func npmPackumentURL(registry, name string) string {
	return registry + strings.Replace(name, "/", "%2f", 1)
}

func npmPURL(name, version string) string {
	if scope, n, ok := strings.Cut(name, "/"); ok {
		return "pkg:npm/" + purlEscape(scope) + "/" + purlEscape(n) + "@" + purlEscape(version)
	}
	return "pkg:npm/" + purlEscape(name) + "@" + purlEscape(version)
}

func (n *npmPackage) digest() {
	d := map[string]string{}
	for algo, sum := range n.a.sums {
		d[algo] = hex.EncodeToString(sum)
	}
	n.dep.Digest = d
}

// integrity is what the npm cache records for the tarball: the sha512 of
// the verified bytes (cacache files content under its strongest hash),
// plus the lockfile's own hash when it is weaker, so that npm's check of
// the lockfile's integrity against the cache entry finds an algorithm in
// common.
func (n *npmPackage) integrity() string {
	s := "sha512-" + base64.StdEncoding.EncodeToString(n.a.sums["sha512"])
	if n.a.pin.kind == pinHash && n.a.pin.algo != "sha512" {
		s += " " + n.a.pin.text
	}
	return s
}

// npmEnv makes npm in the build read the prepared cache and nothing else:
// offline (a request the cache cannot answer fails instead of going out),
// the registry the cache keys were made for, and no audit, fund or update
// check (each one a request).
func npmEnv(registry string) map[string]string {
	return map[string]string{
		"npm_config_cache":           NPMCacheDir,
		"npm_config_offline":         "true",
		"npm_config_registry":        registry,
		"npm_config_audit":           "false",
		"npm_config_fund":            "false",
		"npm_config_update_notifier": "false",
	}
}

// Accept headers npm sends for a packument: the abbreviated ("corgi")
// document npm install asks for, and the full one; an entry answers only
// a request with the same Accept.
const (
	acceptCorgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
	acceptFull  = "application/json"
)

// cacheTime is the fixed time written in cache entries, so that the view
// is byte-stable. npm runs offline, where an entry's age does not matter.
const cacheTime = 315532800000 // 1980-01-01, in milliseconds

// npmCacheView lays out npm's cacache (npm_config_cache/_cacache) as npm
// writes it, for a request-cache hit on every tarball and packument:
//
//	_cacache/content-v2/sha512/<hex[0:2]>/<hex[2:4]>/<hex[4:]>
//	_cacache/index-v5/<sha256(key)[0:2]>/<[2:4]>/<[4:]>
//
// where an index file holds lines "\n<sha1(json)>\t<json>" and the key is
// "make-fetch-happen:request-cache:<url>". The packuments are made from
// the lockfiles (each version's tarball URL and integrity, and dist-tags
// latest), never fetched, so that npm resolves nothing the lockfile did
// not pin.
func npmCacheView(pkgs []*npmPackage, registry string) ([]viewFile, error) {
	var files []viewFile
	buckets := map[string][]string{}
	type version struct {
		Name    string            `json:"name"`
		Version string            `json:"version"`
		Dist    map[string]string `json:"dist"`
	}
	versions := map[string]map[string]version{}
	for _, p := range pkgs {
		integrity := p.integrity()
		sha512 := hex.EncodeToString(p.a.sums["sha512"])
		files = append(files, viewFile{rel: cacachePath(sha512), blob: p.a.blob, sum: hex.EncodeToString(p.a.sums["sha256"])})
		urls := []string{p.url}
		if p.regURL != p.url {
			urls = append(urls, p.regURL)
		}
		for _, u := range urls {
			if err := addIndexEntry(buckets, u, integrity, p.a.size, nil); err != nil {
				return nil, err
			}
		}
		if versions[p.dep.Name] == nil {
			versions[p.dep.Name] = map[string]version{}
		}
		if _, ok := versions[p.dep.Name][p.dep.Version]; !ok {
			versions[p.dep.Name][p.dep.Version] = version{
				Name: p.dep.Name, Version: p.dep.Version,
				Dist: map[string]string{"tarball": p.url, "integrity": integrity},
			}
		}
	}
	for _, name := range sortedKeys(versions) {
		vs := versions[name]
		latest := ""
		for _, v := range sortedKeys(vs) {
			if latest == "" || semver.Compare("v"+v, "v"+latest) > 0 {
				latest = v
			}
		}
		doc, err := json.Marshal(map[string]any{
			"name":      name,
			"dist-tags": map[string]string{"latest": latest},
			"versions":  vs,
		})
		if err != nil {
			return nil, fmt.Errorf("packument of %s: %w", name, err)
		}
		s := sha512.Sum512(doc)
		files = append(files, dataFile(cacachePath(hex.EncodeToString(s[:])), doc))
		integrity := "sha512-" + base64.StdEncoding.EncodeToString(s[:])
		u := npmPackumentURL(registry, name)
		for _, accept := range []string{acceptCorgi, acceptFull} {
			if err := addIndexEntry(buckets, u, integrity, int64(len(doc)), map[string]string{"accept": accept}); err != nil {
				return nil, err
			}
		}
	}
	for _, rel := range sortedKeys(buckets) {
		files = append(files, dataFile(rel, []byte(strings.Join(buckets[rel], ""))))
	}
	return files, nil
}

func cacachePath(sha512hex string) string {
	return "_cacache/content-v2/sha512/" + sha512hex[:2] + "/" + sha512hex[2:4] + "/" + sha512hex[4:]
}

// indexEntry is one line of a cacache index bucket, as make-fetch-happen
// writes it for a 200 response.
type indexEntry struct {
	Key       string        `json:"key"`
	Integrity string        `json:"integrity"`
	Time      int64         `json:"time"`
	Size      int64         `json:"size"`
	Metadata  indexMetadata `json:"metadata"`
}

type indexMetadata struct {
	Time       int64             `json:"time"`
	URL        string            `json:"url"`
	ReqHeaders map[string]string `json:"reqHeaders"`
	ResHeaders map[string]string `json:"resHeaders"`
	Options    struct {
		Compress bool `json:"compress"`
	} `json:"options"`
}

func addIndexEntry(buckets map[string][]string, u, integrity string, size int64, reqHeaders map[string]string) error {
	key := "make-fetch-happen:request-cache:" + u
	if reqHeaders == nil {
		reqHeaders = map[string]string{}
	}
	e := indexEntry{Key: key, Integrity: integrity, Time: cacheTime, Size: size, Metadata: indexMetadata{
		Time: cacheTime, URL: u, ReqHeaders: reqHeaders, ResHeaders: map[string]string{},
	}}
	e.Metadata.Options.Compress = true
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cache entry for %s: %w", u, err)
	}
	k := sha256.Sum256([]byte(key))
	kh := hex.EncodeToString(k[:])
	rel := "_cacache/index-v5/" + kh[:2] + "/" + kh[2:4] + "/" + kh[4:]
	h := sha1.Sum(line) //nolint:gosec // see the import
	buckets[rel] = append(buckets[rel], "\n"+hex.EncodeToString(h[:])+"\t"+string(line))
	return nil
}

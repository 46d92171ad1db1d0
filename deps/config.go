package deps

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// npmrcVar is an environment reference in an npmrc value.
var npmrcVar = regexp.MustCompile(`\$\{[^${}?]+\}`)

// Where the ecosystems' configuration is read from. It is read as the go
// command and npm read it, from Options.Environ rather than this process's
// environment, so that a caller (and a test) says exactly what is seen.

// DefaultGoProxy and DefaultNPMRegistry are used when nothing names another.
const (
	DefaultGoProxy     = "https://proxy.golang.org"
	DefaultNPMRegistry = "https://registry.npmjs.org/"
)

// maxConfigBytes bounds a configuration file read (GOENV's file, an npmrc).
const maxConfigBytes = 1 << 20

// environ is Options.Environ as a lookup; later entries win, as with
// os/exec.
type environ map[string]string

func parseEnviron(env []string) environ {
	m := environ{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// get returns the variable's value; like the go command and npm, an empty
// value counts as unset.
func (e environ) get(k string) string { return e[k] }

// proxy is one module proxy of GOPROXY's list.
type proxy struct {
	url string // without the trailing slash
	// anyError: the separator after it was "|", so that any error (not
	// only a 404 or 410) falls through to the next one.
	anyError bool
}

// goProxies resolves GOPROXY as the go command does without running it:
// the environment, else the GOENV file, else DefaultGoProxy. "direct" and
// "off" are dropped: buildguard does not fetch from version control, and a
// list that names no proxy once they are gone is an ErrConfig error.
func goProxies(env environ) ([]proxy, error) {
	v := env.get("GOPROXY")
	where := "GOPROXY"
	if v == "" {
		file, err := goEnvFile(env)
		if err != nil {
			return nil, err
		}
		if file != "" {
			v, err = goEnvValue(file, "GOPROXY")
			if err != nil {
				return nil, err
			}
			where = "GOPROXY in " + file
		}
	}
	if v == "" {
		v = DefaultGoProxy
	}
	return parseGoProxy(v, where)
}

// parseGoProxy parses the list syntax: entries separated by "," (fall
// through on 404 and 410 only) or "|" (fall through on any error). As in
// the go command, a word without "://" that is not an absolute path gets
// "https://".
func parseGoProxy(v, where string) ([]proxy, error) {
	var out []proxy
	dropped := false
	for v != "" {
		entry := v
		sep := ""
		if i := strings.IndexAny(v, ",|"); i >= 0 {
			entry, sep, v = v[:i], v[i:i+1], v[i+1:]
		} else {
			v = ""
		}
		entry = strings.TrimSpace(entry)
		switch entry {
		case "":
			continue
		case "direct", "off":
			dropped = true
			continue
		}
		if !strings.Contains(entry, ":/") && !filepath.IsAbs(entry) {
			entry = "https://" + entry
		}
		u, err := url.Parse(entry)
		if err != nil {
			return nil, fmt.Errorf("%s: proxy %q: %w: %w", where, entry, ErrConfig, err)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return nil, fmt.Errorf("%s: proxy %q: %w: only http and https proxies can be fetched from", where, entry, ErrConfig)
		}
		if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s: proxy %q: %w: not a proxy base URL", where, entry, ErrConfig)
		}
		out = append(out, proxy{url: strings.TrimRight(u.String(), "/"), anyError: sep == "|"})
	}
	if len(out) == 0 {
		why := "it is empty"
		if dropped {
			why = `buildguard does not fetch from version control ("direct") and "off" fetches nothing`
		}
		return nil, fmt.Errorf("%s names no module proxy buildguard can use (%s): %w", where, why, ErrConfig)
	}
	return out, nil
}

// goEnvFile is the go command's per-user configuration file: GOENV, else
// $XDG_CONFIG_HOME/go/env, else $HOME/.config/go/env; "" when there is
// none (GOENV=off, or no usable directory).
func goEnvFile(env environ) (string, error) {
	if f := env.get("GOENV"); f != "" {
		if f == "off" {
			return "", nil
		}
		if !filepath.IsAbs(f) {
			return "", fmt.Errorf("GOENV=%q: %w: not an absolute path", f, ErrConfig)
		}
		return f, nil
	}
	if d := env.get("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "go", "env"), nil
	}
	if h := env.get("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".config", "go", "env"), nil
	}
	return "", nil
}

// goEnvValue reads key from a go env file ("KEY=value" lines, as `go env
// -w` writes them). A missing file is no value.
func goEnvValue(file, key string) (string, error) {
	data, err := readConfig(file)
	if err != nil || data == nil {
		return "", err
	}
	val := ""
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			val = strings.TrimSpace(v)
		}
	}
	return val, nil
}

// readConfig reads a configuration file, bounded; nil when it is missing.
func readConfig(file string) ([]byte, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	defer f.Close()
	data, err := readBounded(f, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return data, nil
}

// npmRegistry resolves npm's registry as npm does for an install in a
// directory with no .npmrc of its own: npm_config_registry (any case) in
// the environment, else registry= in the user npmrc
// ($NPM_CONFIG_USERCONFIG, else $HOME/.npmrc), else DefaultNPMRegistry.
// The result ends in "/", as npm normalizes it. Scoped registries
// (@scope:registry=) are not read: every package comes from one registry.
func npmRegistry(env environ) (string, error) {
	v, where := "", ""
	for _, k := range []string{"npm_config_registry", "NPM_CONFIG_REGISTRY"} {
		if env.get(k) != "" {
			v, where = env.get(k), k
			break
		}
	}
	if v == "" {
		file := env.get("npm_config_userconfig")
		if file == "" {
			file = env.get("NPM_CONFIG_USERCONFIG")
		}
		if file == "" && filepath.IsAbs(env.get("HOME")) {
			file = filepath.Join(env.get("HOME"), ".npmrc")
		}
		if file != "" {
			data, err := readConfig(file)
			if err != nil {
				return "", err
			}
			v = npmrcValue(data, "registry", env)
			where = "registry in " + file
		}
	}
	if v == "" {
		return DefaultNPMRegistry, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s=%q: %w: not an http or https registry URL", where, v, ErrConfig)
	}
	u.User = nil
	s := u.String()
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// npmrcValue returns key's value in an npmrc (ini: "key = value", ";" and
// "#" comments, ${VAR} expanded from env); the last assignment wins, as in
// npm, and keys inside [sections] are not top-level keys.
func npmrcValue(data []byte, key string, env environ) string {
	val := ""
	section := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			section = true
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section || strings.TrimSpace(k) != key {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		// npm expands ${VAR} only; a lone $ stays.
		val = npmrcVar.ReplaceAllStringFunc(v, func(m string) string {
			return env.get(m[2 : len(m)-1])
		})
	}
	return val
}

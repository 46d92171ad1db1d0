package builder

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// missingLocales says, for LC_ALL and LANG as s.Env sets them, which name
// a locale the image has no data for: glibc then runs its programs in the
// C locale, so setting the variable changes only what reads it by name.
// The C and POSIX locales are built in and always present.
func (s *Step) missingLocales() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range []string{"LC_ALL", "LANG"} {
		v := s.Env[k]
		if v == "" || seen[v] || builtinLocale(v) {
			continue
		}
		seen[v] = true
		if !s.hasLocale(v) {
			out = append(out, fmt.Sprintf("the image has no locale data for %s=%s (neither /usr/lib/locale/%s nor /usr/lib/locale/locale-archive): its programs run in the C locale", k, v, localeDir(v)))
		}
	}
	return out
}

func builtinLocale(v string) bool {
	switch v {
	case "C", "POSIX", "C.UTF-8", "C.utf8":
		return true
	}
	return false
}

// localeDir is glibc's directory name for locale v: the codeset lower-cased
// with everything but letters and digits dropped (fr_FR.UTF-8 ->
// fr_FR.utf8).
func localeDir(v string) string {
	name, mod, _ := strings.Cut(v, "@")
	lang, cs, ok := strings.Cut(name, ".")
	if !ok {
		return v
	}
	var b strings.Builder
	for _, r := range strings.ToLower(cs) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	out := lang + "." + b.String()
	if mod != "" {
		out += "@" + mod
	}
	return out
}

// hasLocale reports whether the image may hold locale v: its directory
// under /usr/lib/locale, or a locale archive (which is not read: it may
// hold v).
func (s *Step) hasLocale(v string) bool {
	root, err := os.OpenRoot(s.Rootfs)
	if err != nil {
		return false
	}
	defer root.Close()
	a := newApplier(root, Limits{}.withDefaults(), nil)
	for _, p := range []string{path.Join("/usr/lib/locale", localeDir(v)), path.Join("/usr/lib/locale", v), "/usr/lib/locale/locale-archive"} {
		if _, _, ok := resolveFile(a, p); ok {
			return true
		}
	}
	return false
}

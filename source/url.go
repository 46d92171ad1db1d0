package source

import (
	"net/url"
	"strings"
)

// RepositoryURI turns a git remote URL into the URI the provenance records,
// in SPDX's VCS form "git+<transport>://host[:port]/path", or "" when the
// remote is not a network location (a local path, file://, a bundle) or
// cannot be parsed.
//
// Credentials never survive: the user and password of the URL (a token is
// often written as one), its query and its fragment are dropped. The scp-like
// form "user@host:path" is the ssh transport and becomes
// "git+ssh://host/path"; the ssh user is dropped as well (it is an account
// name, not part of where the repository is). The host is lower-cased, a
// default port and a trailing slash are dropped; the path is kept as
// written (with or without ".git": some servers need it).
func RepositoryURI(remote string) string {
	u := parseRemote(strings.TrimSpace(remote))
	if u == nil {
		return ""
	}
	return "git+" + u.String()
}

// SourceURL is the remote as a plain URL, for the OCI annotation
// org.opencontainers.image.source: RepositoryURI without "git+", or "".
func SourceURL(remote string) string {
	return strings.TrimPrefix(RepositoryURI(remote), "git+")
}

// defaultPorts are the ports a transport uses when none is written.
var defaultPorts = map[string]string{"https": "443", "http": "80", "ssh": "22", "git": "9418"}

// parseRemote parses a remote into a credential-free network URL, or nil.
func parseRemote(s string) *url.URL {
	if s == "" || strings.ContainsAny(s, " \t\r\n\x00") {
		return nil
	}
	var u *url.URL
	if i := strings.Index(s, "://"); i > 0 {
		var err error
		if u, err = url.Parse(s); err != nil {
			return nil
		}
		u.Scheme = strings.ToLower(u.Scheme)
		u.Scheme = strings.TrimPrefix(u.Scheme, "git+")
		if u.Scheme == "ssh+git" {
			u.Scheme = "ssh"
		}
	} else {
		// scp-like: [user@]host:path, where no slash comes before the colon
		// (git's own rule: "foo/bar:baz" is a local path); an IPv6 host is
		// written in brackets.
		rest := s
		if at := strings.Index(rest, "@"); at >= 0 && !strings.Contains(rest[:at], "/") {
			rest = rest[at+1:]
		}
		var host, path string
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]:")
			if end < 0 {
				return nil
			}
			host, path = rest[1:end], rest[end+2:]
		} else {
			colon := strings.Index(rest, ":")
			if colon <= 0 || strings.Contains(rest[:colon], "/") {
				return nil
			}
			host, path = rest[:colon], rest[colon+1:]
		}
		if host == "" || path == "" || strings.ContainsAny(host, "/@") {
			return nil
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u = &url.URL{Scheme: "ssh", Host: host, Path: path}
		if strings.Contains(host, ":") { // an IPv6 address
			u.Host = "[" + host + "]"
		}
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
	default:
		return nil // file://, a local path, or an unknown transport
	}
	if u.Hostname() == "" {
		return nil
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.Opaque = nil, "", false, "", "", ""
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == defaultPorts[u.Scheme] {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	if u.Path == "" {
		return nil // a host is not a repository
	}
	// A host no URL can carry (an scp-like "a#b:path") comes out escaped,
	// and the escape does not parse: such a remote names no repository.
	if back, err := url.Parse(u.String()); err != nil || back.Host != u.Host {
		return nil
	}
	return u
}

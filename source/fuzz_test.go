package source

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRepositoryURI: a remote URL is the checkout's (attacker-chosen)
// config. Whatever it is, the result is empty or a git+ URL without user
// information, query or fragment, and normalising it again changes nothing.
func FuzzRepositoryURI(f *testing.F) {
	for _, s := range []string{
		"https://x-access-token:SECRET@github.com/org/repo.git", "git@github.com:org/repo.git",
		"ssh://git:pw@host:2222/r", "git://h/p", "/local/path", "file:///x", "[::1]:x", "u@[::1]:p",
		"https://h/p?token=SECRET#f", "user:p@ss@host:path", "https://%zz", "git+ssh://a@b/c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		got := RepositoryURI(remote)
		if got == "" {
			return
		}
		if !strings.HasPrefix(got, "git+") {
			t.Fatalf("RepositoryURI(%q) = %q: no git+ prefix", remote, got)
		}
		u, err := url.Parse(strings.TrimPrefix(got, "git+"))
		if err != nil {
			t.Fatalf("RepositoryURI(%q) = %q does not parse: %v", remote, got, err)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("RepositoryURI(%q) = %q keeps user, query or fragment", remote, got)
		}
		if again := RepositoryURI(got); again != got {
			t.Fatalf("RepositoryURI(%q) = %q, but RepositoryURI(%q) = %q", remote, got, got, again)
		}
	})
}

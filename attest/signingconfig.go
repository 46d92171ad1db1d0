package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// maxSigningConfig bounds a signing config file.
const maxSigningConfig = 1 << 20

// SigningConfigMediaType is the one media type of a signing config that
// buildguard (like cosign v3) reads.
const SigningConfigMediaType = root.SigningConfigMediaType02

// ErrSigningConfig is the family of a signing config that cannot be used:
// missing, malformed, or naming no Rekor log buildguard can write to. It
// is a configuration error: nothing was attempted.
var ErrSigningConfig = errors.New("signing config")

// Log is a Rekor transparency log that signatures are logged in.
type Log struct {
	// URL is the log's base URL, as the signing config names it.
	URL string `json:"url"`
	// APIVersion is the major version of its write API: 1 or 2.
	APIVersion uint32 `json:"apiVersion"`
}

// SigningConfig is what buildguard takes from a Sigstore signing config
// (cosign v3's --signing-config, made by `cosign signing-config create`):
// the Rekor logs every signature is logged in. Key signing only: a
// Fulcio CA or OIDC provider it names is not used; nor, yet, are its
// timestamp authorities (key-signed bundles verify without a signed
// time: the log's inclusion proof is what a verifier requires).
type SigningConfig struct {
	// Path is the file it was read from.
	Path string
	// Logs are the selected logs: of the highest API version buildguard
	// supports that the config names valid now, one per operator; then,
	// as rekorTlogConfig says, all of them (ALL), the first (ANY, the
	// default) or the first N (EXACT), newest first.
	Logs []Log
	// Ignored says, one line each, what the config names that is not
	// used: certificate authorities, OIDC providers, timestamp
	// authorities.
	Ignored []string
}

// LoadSigningConfig reads and selects from a signing config file at time
// now (which of its services are valid).
func LoadSigningConfig(path string, now time.Time) (*SigningConfig, error) {
	f, err := os.Open(path) // #nosec G304 -- the file the user named
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSigningConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSigningConfig+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrSigningConfig, path, err)
	}
	if len(data) > maxSigningConfig {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrSigningConfig, path, maxSigningConfig)
	}
	sc, err := ParseSigningConfig(data, now)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrSigningConfig, path, err)
	}
	sc.Path = path
	return sc, nil
}

// ParseSigningConfig parses a signing config (JSON) and selects its logs
// at time now, as LoadSigningConfig does.
func ParseSigningConfig(data []byte, now time.Time) (*SigningConfig, error) {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a JSON signing config: %w", err)
	}
	switch {
	case head.MediaType == SigningConfigMediaType:
	case strings.Contains(head.MediaType, "trustedroot"):
		return nil, fmt.Errorf("media type %q is a trusted root (what --trusted-root takes), not a signing config (%q, as `cosign signing-config create` writes it)", head.MediaType, SigningConfigMediaType)
	default:
		return nil, fmt.Errorf("media type %q: want %q (as `cosign signing-config create` writes it)", head.MediaType, SigningConfigMediaType)
	}
	pb, err := root.NewSigningConfigProtobuf(data)
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	cfg, err := root.NewSigningConfigFromProtobuf(pb)
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	sc := &SigningConfig{}
	for _, x := range []struct {
		what     string
		services []root.Service
	}{
		{"certificate authority (Fulcio)", cfg.FulcioCertificateAuthorityURLs()},
		{"OIDC provider", cfg.OIDCProviderURLs()},
		{"timestamp authority", cfg.TimestampAuthorityURLs()},
	} {
		for _, s := range x.services {
			sc.Ignored = append(sc.Ignored, fmt.Sprintf("%s %s", x.what, s.URL))
		}
	}
	logs := cfg.RekorLogURLs()
	if len(logs) == 0 {
		return nil, errors.New("names no Rekor log (rekorTlogUrls): buildguard logs every signature in one; without --signing-config (and signing.config) signatures are made unlogged")
	}
	for _, s := range logs {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("rekorTlogUrls: %q is not an http(s) URL", s.URL)
		}
	}
	// Every candidate of the highest supported version, one per operator,
	// newest first; then the config's selector, without chance: a build
	// run twice logs in the same place and says so in the same words.
	candidates, err := root.SelectServices(logs, root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ALL}, sign.RekorAPIVersions, now)
	if err != nil {
		var named []string
		for _, s := range logs {
			named = append(named, fmt.Sprintf("%s (API v%d)", s.URL, s.MajorAPIVersion))
		}
		return nil, fmt.Errorf("no Rekor log of an API version buildguard writes to (%s) is valid at %s; it names %s", versions(), now.UTC().Format(time.RFC3339), strings.Join(named, ", "))
	}
	slices.SortStableFunc(candidates, func(a, b root.Service) int {
		if c := b.ValidityPeriodStart.Compare(a.ValidityPeriodStart); c != 0 {
			return c
		}
		return strings.Compare(a.URL, b.URL)
	})
	n := 1
	switch c := pb.GetRekorTlogConfig(); c.GetSelector() { // nil-safe: the member is optional
	case prototrustroot.ServiceSelector_ALL:
		n = len(candidates)
	case prototrustroot.ServiceSelector_EXACT:
		if c.GetCount() == 0 || int(c.GetCount()) > len(candidates) {
			return nil, fmt.Errorf("rekorTlogConfig asks for EXACT %d logs; %d usable log(s) of distinct operators are named", c.GetCount(), len(candidates))
		}
		n = int(c.GetCount())
	}
	for _, s := range candidates[:n] {
		sc.Logs = append(sc.Logs, Log{URL: s.URL, APIVersion: s.MajorAPIVersion})
	}
	return sc, nil
}

// versions lists the Rekor API versions buildguard writes to.
func versions() string {
	var v []string
	for _, n := range sign.RekorAPIVersions {
		v = append(v, fmt.Sprintf("v%d", n))
	}
	return strings.Join(v, ", ")
}

package trust

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Verifier checks images and bundles against one Policy. It is safe for
// concurrent use.
type Verifier struct {
	policy    Policy
	limits    Limits
	threshold int
	// keyless verifies certificate-signed bundles; nil without identities.
	keyless *verify.Verifier
	// keyed has one verifier per trusted key, in Policy.Keys order.
	keyed []keyedVerifier
	// identities are the sigstore-go forms of Policy.Identities.
	identities []verify.CertificateIdentity
	transport  http.RoundTripper
	keychain   authn.Keychain
	// cache holds one *cacheEntry per image digest.
	cache sync.Map
	// checkpointDir is the checkpoint store (WithCheckpoints); online is set
	// when Policy.RekorURL is.
	checkpointDir string
	online        *online
	// results is the on-disk result cache (WithResultCache); nil without.
	results *resultCache
	warn    func(string)
	// puller shares registry pings and tokens (see registryPuller).
	pullerOnce sync.Once
	puller     *remote.Puller
}

type keyedVerifier struct {
	key      Key
	verifier *verify.Verifier
	material root.TrustedMaterial
}

// Option configures how a Verifier reaches registries.
type Option func(*Verifier)

// WithTransport sets the HTTP transport for registry requests (default
// http.DefaultTransport). Every response read through it is size-bounded.
func WithTransport(rt http.RoundTripper) Option {
	return func(v *Verifier) { v.transport = rt }
}

// WithKeychain sets where registry credentials come from (default: the
// Docker config and credential helpers).
func WithKeychain(kc authn.Keychain) Option {
	return func(v *Verifier) { v.keychain = kc }
}

// WithWarnings sets where problems that do not change a result go, such
// as a result cache that cannot be written (default: nowhere).
func WithWarnings(warn func(string)) Option {
	return func(v *Verifier) { v.warn = warn }
}

func (v *Verifier) warnf(format string, args ...any) {
	if v.warn != nil {
		v.warn(fmt.Sprintf(format, args...))
	}
}

// New returns a Verifier for p. A policy that trusts nothing, or whose
// options contradict each other, is an error.
func New(p Policy, opts ...Option) (*Verifier, error) {
	if err := p.validate(); err != nil {
		return nil, &PolicyError{Err: err}
	}
	limits, err := p.Limits.withDefaults()
	if err != nil {
		return nil, &PolicyError{Err: err}
	}
	v := &Verifier{policy: p, limits: limits, threshold: p.TlogThreshold, transport: http.DefaultTransport, keychain: authn.DefaultKeychain}
	if v.threshold == 0 && !p.InsecureIgnoreTlog {
		v.threshold = 1
	}
	for _, o := range opts {
		o(v)
	}
	if len(p.Identities) > 0 {
		if err := v.setupKeyless(); err != nil {
			return nil, &PolicyError{Err: err}
		}
	}
	for _, k := range p.Keys {
		// The ID and hints are recomputed from the key itself.
		k, err := NewKey(k.Public)
		if err != nil {
			return nil, &PolicyError{Err: err}
		}
		kv, err := v.keyedVerifierFor(k)
		if err != nil {
			return nil, &PolicyError{Err: err}
		}
		v.keyed = append(v.keyed, kv)
	}
	if p.RekorURL != "" {
		if v.checkpointDir == "" {
			return nil, &PolicyError{Err: errors.New("an online log look-up needs a checkpoint store (WithCheckpoints) to catch a forked log")}
		}
		v.online = &online{url: p.RekorURL, store: checkpointStore{dir: v.checkpointDir}, hc: &http.Client{Transport: v.transport}, logs: v.logVerifiers, v1logs: v.v1Logs}
	}
	if v.results != nil {
		if err := v.results.setup(v); err != nil {
			return nil, &PolicyError{Err: err}
		}
	}
	return v, nil
}

// PolicyError is a policy that cannot be used; it is a usage error (exit 2).
type PolicyError struct{ Err error }

func (e *PolicyError) Error() string { return "trust policy: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PolicyError) Unwrap() error { return e.Err }

// ExitCode reports a usage error.
func (e *PolicyError) ExitCode() int { return 2 }

func (v *Verifier) setupKeyless() error {
	for _, id := range v.policy.Identities {
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, anchor(id.IssuerRegExp), id.Subject, anchor(id.SubjectRegExp))
		if err != nil {
			return fmt.Errorf("identity %s: %w", id, err)
		}
		v.identities = append(v.identities, ci)
	}
	// A certificate is short-lived: it needs a time from an observer (a
	// log's signed entry timestamp or an RFC 3161 timestamp).
	opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
	if !v.policy.InsecureIgnoreTlog {
		opts = append(opts, verify.WithTransparencyLog(v.threshold))
	}
	// A deployment that runs CT logs issues certificates with SCTs: require
	// one whenever the trusted root names a CT log.
	if len(v.policy.TrustedRoot.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	kv, err := verify.NewVerifier(v.policy.TrustedRoot, opts...)
	if err != nil {
		return fmt.Errorf("keyless verifier: %w", err)
	}
	v.keyless = kv
	return nil
}

func (v *Verifier) keyedVerifierFor(k Key) (keyedVerifier, error) {
	sv, err := signature.LoadDefaultVerifier(k.Public)
	if err != nil {
		return keyedVerifier{}, fmt.Errorf("key %s: %w", k.ID, err)
	}
	expiring := root.NewExpiringKey(sv, timeZero, timeZero)
	keyMaterial := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return expiring, nil
	})
	material := root.TrustedMaterialCollection{keyMaterial}
	if v.policy.TrustedRoot != nil {
		material = root.TrustedMaterialCollection{logsOnly{v.policy.TrustedRoot}, keyMaterial}
	}
	// A key is long-lived: no observer time is needed to check it.
	opts := []verify.VerifierOption{verify.WithNoObserverTimestamps()}
	if !v.policy.InsecureIgnoreTlog {
		opts = append(opts, verify.WithTransparencyLog(v.threshold))
	}
	sev, err := verify.NewVerifier(material, opts...)
	if err != nil {
		return keyedVerifier{}, fmt.Errorf("key %s: %w", k.ID, err)
	}
	return keyedVerifier{key: k, verifier: sev, material: material}, nil
}

// logsOnly is trusted material with the transparency logs of a trusted root
// and nothing else: a keyed signature must not be accepted because a
// trusted root happens to hold keys.
type logsOnly struct{ tm root.TrustedMaterial }

func (l logsOnly) RekorLogs() map[string]*root.TransparencyLog { return l.tm.RekorLogs() }
func (l logsOnly) TimestampingAuthorities() []root.TimestampingAuthority {
	return l.tm.TimestampingAuthorities()
}
func (logsOnly) FulcioCertificateAuthorities() []root.CertificateAuthority { return nil }
func (logsOnly) CTLogs() map[string]*root.TransparencyLog                  { return nil }
func (logsOnly) PublicKeyVerifier(string) (root.TimeConstrainedVerifier, error) {
	return nil, errNoKeyInRoot
}

// keyHints are the spellings of a key's SHA-256 that bundles use as a
// public-key hint: base64 (sigstore-go, cosign) and hex.
func keyHints(sum []byte) []string {
	return []string{base64.StdEncoding.EncodeToString(sum), base64.RawStdEncoding.EncodeToString(sum), hex.EncodeToString(sum)}
}

// trustedKey returns the trusted key equal to pub, if any.
func (v *Verifier) trustedKey(pub any) (Key, bool) {
	k, err := NewKey(pub)
	if err != nil {
		return Key{}, false
	}
	for _, kv := range v.keyed {
		if kv.key.ID == k.ID {
			return kv.key, true
		}
	}
	return Key{}, false
}

// keyByHint returns the trusted key a bundle's hint names, if any.
func (v *Verifier) keyByHint(hint string) (Key, bool) {
	for _, kv := range v.keyed {
		if hasHint(kv.key, hint) {
			return kv.key, true
		}
	}
	return Key{}, false
}

// hasHint reports whether hint names k.
func hasHint(k Key, hint string) bool {
	for _, h := range k.hints {
		if h == hint {
			return true
		}
	}
	return false
}

var (
	timeZero       time.Time
	errNoKeyInRoot = errors.New("keys come from the policy, not the trusted root")
)

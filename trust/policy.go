// Package trust decides whether a pinned image is trusted: it finds the
// Sigstore bundles attached to the image's digest (OCI 1.1 referrers, or the
// sha256-<hex> referrers tag on registries without the referrers API),
// verifies each with sigstore-go against the trusted material of a Policy
// (public keys, keyless identities, a Sigstore trusted root) and returns what
// was proven — which signer, which transparency-log entries — or every
// reason a bundle was refused.
//
// Verification is offline unless Policy.RekorURL is set: the only network
// requests go to the image's registry (and the token service it names, if
// any). Online, the log's checkpoint and tiles (Rekor v2), or its REST API
// (Rekor v1), are read from RekorURL too,
// and the newest checkpoint seen of each log is kept on disk so that a log
// presenting a forked (split) view is caught (see WithCheckpoints).
// Verified results can be kept on disk per image digest and trust
// configuration (see WithResultCache).
//
// A refusal is data in the result; an error means the verifier could not
// decide (registry or log down, malformed reference).
package trust

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Policy says what makes an image trusted. Its zero value trusts nothing, so
// New refuses it: at least one key or keyless identity is required, and
// every signature must be in a transparency log named by the trusted root.
type Policy struct {
	// TrustedRoot holds the certificate authorities, transparency logs,
	// timestamp authorities and CT logs of a Sigstore deployment (the
	// trusted_root.json format; see LoadTrustedRoot). It is required for
	// keyless identities and for verifying log entries. When it names CT
	// logs, a keyless certificate needs a verified SCT.
	TrustedRoot root.TrustedMaterial
	// Keys are trusted public keys; a signature by any of them counts.
	Keys []Key
	// Identities are trusted keyless signers: a certificate from the trusted
	// root's CAs matching any of them counts.
	Identities []Identity
	// TlogThreshold is how many distinct transparency logs must hold a
	// verified entry for a signature; 0 means 1.
	TlogThreshold int
	// InsecureIgnoreTlog waives the transparency-log requirement. Every
	// result verified under it says so (ImageResult.TlogWaived).
	InsecureIgnoreTlog bool
	// RekorURL, when set, adds an online look-up in a log named by the
	// trusted root: a Rekor v1 log whose REST API is at RekorURL (it
	// answers RekorURL/api/v1/log), else a tiled (Rekor v2, C2SP
	// tlog-tiles) log whose checkpoint and tiles are read there. The log's
	// current checkpoint must verify with the log's key, extend the newest
	// checkpoint seen before (see WithCheckpoints) and every checkpoint in
	// the bundles, and hold each verified entry in it by a fresh inclusion
	// proof (from a Rekor v1 log: served with the entry, which must be the
	// one verified, against a checkpoint of the same tree). Empty means
	// offline: nothing is read but the image's registry. It applies to
	// VerifyImage and VerifyImages; VerifyBundle stays offline.
	RekorURL string
	// BuilderIDs, when set, require a verified SLSA provenance (v0.2 or v1)
	// about the image whose builder id is one of them.
	BuilderIDs []string
	// SourceURIs, when set, require a verified SLSA provenance whose source
	// repository is one of them (compared by host and path, ignoring case,
	// scheme and ref: see NormalizeSourceURI). With BuilderIDs, one provenance must meet both.
	SourceURIs []string
	// RequireVSA requires a verified SLSA VSA v1 about the image whose
	// verificationResult is PASSED and whose resourceUri names the image
	// by its digest ("oci://NAME@sha256:..."), signed by a trusted signer.
	// Whatever it says, a verified FAILED VSA about the image refuses it.
	RequireVSA bool
	// Limits bound everything read from a registry; zero fields take the
	// defaults.
	Limits Limits
}

// Identity is a keyless signer: the OIDC issuer and the certificate subject
// (SAN), each given exactly or as a regular expression. A regular expression
// must match the whole value: it is anchored, unlike cosign's, so that
// "https://github.com/org/" cannot match a subject that merely contains it.
type Identity struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// String describes the identity for messages.
func (id Identity) String() string {
	iss, sub := id.Issuer, id.Subject
	if id.IssuerRegExp != "" {
		iss = "~" + id.IssuerRegExp
	}
	if id.SubjectRegExp != "" {
		sub = "~" + id.SubjectRegExp
	}
	return fmt.Sprintf("%s from %s", sub, iss)
}

func (id Identity) validate() error {
	if (id.Issuer == "") == (id.IssuerRegExp == "") {
		return fmt.Errorf("identity %s: give exactly one of issuer and issuer regexp", id)
	}
	if (id.Subject == "") == (id.SubjectRegExp == "") {
		return fmt.Errorf("identity %s: give exactly one of subject and subject regexp", id)
	}
	for _, re := range []string{id.IssuerRegExp, id.SubjectRegExp} {
		if re == "" {
			continue
		}
		if _, err := regexp.Compile(anchor(re)); err != nil {
			return fmt.Errorf("identity %s: %w", id, err)
		}
	}
	return nil
}

// anchor makes re match whole values only.
func anchor(re string) string {
	if re == "" {
		return ""
	}
	return `^(?:` + re + `)$`
}

// Key is a trusted public key.
type Key struct {
	// ID is "sha256:" and the hex SHA-256 of the key's PKIX DER encoding.
	ID     string
	Public crypto.PublicKey
	// hints are the spellings a bundle's public-key hint may use for it.
	hints []string
}

// NewKey returns the Key for pub.
func NewKey(pub crypto.PublicKey) (Key, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Key{}, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return Key{ID: "sha256:" + hex.EncodeToString(sum[:]), Public: pub, hints: keyHints(sum[:])}, nil
}

// maxKeyFile bounds a PEM key file.
const maxKeyFile = 1 << 20

// ParsePublicKeys parses every PEM "PUBLIC KEY" block in data.
func ParsePublicKeys(data []byte) ([]Key, error) {
	var keys []Key
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q is not a PUBLIC KEY", block.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key: %w", err)
		}
		k, err := NewKey(pub)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

// LoadKeyFile reads the PEM public keys in path.
func LoadKeyFile(path string) ([]Key, error) {
	data, err := readBounded(path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, nil
}

// maxTrustedRoot bounds a trusted_root.json file.
const maxTrustedRoot = 8 << 20

// LoadTrustedRoot reads a Sigstore trusted root (trusted_root.json).
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) {
	data, err := readBounded(path, maxTrustedRoot)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", path, err)
	}
	return tr, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// Limits bound what is read from a registry for one image. A zero field
// takes its default; a negative one is an error.
type Limits struct {
	// MaxReferrers is the most referrers an image may list (default 128);
	// an image with more is refused.
	MaxReferrers int
	// MaxManifestBytes bounds a referrer's manifest (default 64 KiB).
	MaxManifestBytes int64
	// MaxBundleBytes bounds one Sigstore bundle (default 4 MiB).
	MaxBundleBytes int64
	// MaxLogEntries is the most transparency-log entries a bundle may carry
	// (default 16).
	MaxLogEntries int
}

// limitSettings names, for each Limits field, the buildguard.yaml field and
// the flag that raise it.
var limitSettings = map[string]string{
	"MaxReferrers":     "limits.referrers, --max-referrers",
	"MaxManifestBytes": "limits.signatureManifestBytes, --max-signature-manifest-bytes",
	"MaxBundleBytes":   "limits.bundleBytes, --max-bundle-bytes",
	"MaxLogEntries":    "limits.bundleLogEntries, --max-bundle-log-entries",
}

// raise says how to raise the limit of a Limits field, for the refusals
// that one caused.
func raise(field string) string { return "(raise with " + limitSettings[field] + ")" }

// The default limits.
const (
	DefaultMaxReferrers     = 128
	DefaultMaxManifestBytes = 64 << 10
	DefaultMaxBundleBytes   = 4 << 20
	DefaultMaxLogEntries    = 16
)

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxReferrers < 0 || l.MaxManifestBytes < 0 || l.MaxBundleBytes < 0 || l.MaxLogEntries < 0 {
		return l, errors.New("limits must not be negative")
	}
	if l.MaxReferrers == 0 {
		l.MaxReferrers = DefaultMaxReferrers
	}
	if l.MaxManifestBytes == 0 {
		l.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if l.MaxBundleBytes == 0 {
		l.MaxBundleBytes = DefaultMaxBundleBytes
	}
	if l.MaxLogEntries == 0 {
		l.MaxLogEntries = DefaultMaxLogEntries
	}
	return l, nil
}

// validate rejects a policy that trusts nothing or contradicts itself.
func (p *Policy) validate() error {
	if len(p.Keys) == 0 && len(p.Identities) == 0 {
		return errors.New("policy trusts nothing: give a public key or a keyless identity")
	}
	for _, id := range p.Identities {
		if err := id.validate(); err != nil {
			return err
		}
	}
	for _, k := range p.Keys {
		if k.Public == nil || k.ID == "" {
			return errors.New("a key has no public key: make keys with NewKey or ParsePublicKeys")
		}
	}
	if len(p.Identities) > 0 && p.TrustedRoot == nil {
		return errors.New("keyless identities need a trusted root naming the certificate authorities")
	}
	for _, list := range [][]string{p.BuilderIDs, p.SourceURIs} {
		for _, s := range list {
			if strings.TrimSpace(s) == "" {
				return errors.New("an empty builder id or source URI matches nothing")
			}
		}
	}
	if p.TlogThreshold < 0 {
		return errors.New("transparency-log threshold must not be negative")
	}
	if p.InsecureIgnoreTlog && p.TlogThreshold > 0 {
		return fmt.Errorf("a transparency-log threshold of %d contradicts ignoring the log", p.TlogThreshold)
	}
	if p.RekorURL != "" {
		if p.InsecureIgnoreTlog {
			return errors.New("an online log look-up contradicts ignoring the log")
		}
		u, err := url.Parse(p.RekorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("rekor URL %q: want the http(s) URL of a Rekor v1 API or of a tiled log's checkpoint and tiles", p.RekorURL)
		}
	}
	if !p.InsecureIgnoreTlog && p.TrustedRoot == nil {
		return errors.New("verifying transparency-log entries needs a trusted root naming the logs (or ignore the log, insecurely)")
	}
	if !p.InsecureIgnoreTlog && len(p.TrustedRoot.RekorLogs()) == 0 {
		return errors.New("the trusted root names no transparency log, so no log entry can verify")
	}
	return nil
}

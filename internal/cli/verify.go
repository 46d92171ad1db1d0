package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/pin"
	"github.com/buildguard/buildguard/trust"
)

// TrustOptions are the trust flags, named as `cosign verify` names them.
// `buildguard verify` has them, and `buildguard build` takes the same.
type TrustOptions struct {
	Keys                 []string
	CertIdentity         string
	CertIdentityRegexp   string
	CertOIDCIssuer       string
	CertOIDCIssuerRegexp string
	TrustedRoot          string
	InsecureIgnoreTlog   bool
	BuilderIDs           []string
	SourceURIs           []string
	// RequireVSA requires a verified PASSED SLSA VSA about each image.
	RequireVSA bool
	// RekorURL turns on online look-ups in the Rekor v1 log whose REST API,
	// or the tiled log whose checkpoint and tiles, are there; empty is
	// offline.
	RekorURL string
	// Checkpoints is the checkpoint store; empty means the cache directory.
	Checkpoints string
	// VerifyCache is the result cache; empty means the cache directory.
	// NoVerifyCache turns it off.
	VerifyCache   string
	NoVerifyCache bool
	// Limits bound what is read from a registry; zero fields take trust's
	// defaults. The --max-... flags (LimitOptions), or buildguard.yaml's
	// limits section for build, set them.
	Limits trust.Limits

	// identities are keyless signers from buildguard.yaml, used when no
	// --certificate-* flag replaces them.
	identities []trust.Identity
}

// AddFlags registers the trust flags on fs.
func (o *TrustOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Keys, "key", nil, "trust the PEM public key(s) in `FILE` (repeatable)")
	fs.StringVar(&o.CertIdentity, "certificate-identity", "", "trust keyless signatures whose certificate subject is exactly `ID`")
	fs.StringVar(&o.CertIdentityRegexp, "certificate-identity-regexp", "", "trust keyless signatures whose certificate subject matches `RE` (whole value)")
	fs.StringVar(&o.CertOIDCIssuer, "certificate-oidc-issuer", "", "the OIDC `ISSUER` a keyless certificate must name exactly")
	fs.StringVar(&o.CertOIDCIssuerRegexp, "certificate-oidc-issuer-regexp", "", "the OIDC issuer a keyless certificate must match (`RE`, whole value)")
	fs.StringVar(&o.TrustedRoot, "trusted-root", "", "Sigstore trusted root (trusted_root.json `FILE`): CAs, transparency logs, timestamp authorities")
	fs.BoolVar(&o.InsecureIgnoreTlog, "insecure-ignore-tlog", false, "accept signatures that are not in a transparency log (insecure: reported on every image)")
	fs.StringArrayVar(&o.BuilderIDs, "builder-id", nil, "require verified SLSA provenance from builder `ID` (repeatable: any of them)")
	fs.StringArrayVar(&o.SourceURIs, "source-uri", nil, "require verified SLSA provenance built from source `URI`, e.g. github.com/org/repo (repeatable)")
	fs.BoolVar(&o.RequireVSA, "require-vsa", false, "require a verified SLSA verification summary (VSA) about the image whose result is PASSED, from a trusted signer")
	fs.StringVar(&o.RekorURL, "rekor-url", "", "look log entries up online in the Rekor v1 log whose API is at `URL`, or the Rekor v2 (tiled) log whose checkpoint and tiles are there (default: offline)")
	fs.StringVar(&o.Checkpoints, "checkpoints", "", "keep the newest verified checkpoint of each log in `DIR` (default $XDG_CACHE_HOME/buildguard/checkpoints)")
	fs.StringVar(&o.VerifyCache, "verify-cache", "", "keep verified results per digest and trust flags in `DIR` (default $XDG_CACHE_HOME/buildguard/verify)")
	fs.BoolVar(&o.NoVerifyCache, "no-verify-cache", false, "verify every image afresh and cache nothing")
}

// keyless reports whether any keyless identity flag is set.
func (o *TrustOptions) keyless() bool {
	return o.CertIdentity != "" || o.CertIdentityRegexp != "" || o.CertOIDCIssuer != "" || o.CertOIDCIssuerRegexp != ""
}

// Validate rejects trust flags that trust nothing or contradict each other.
func (o *TrustOptions) Validate() error {
	if o.keyless() {
		if (o.CertIdentity == "") == (o.CertIdentityRegexp == "") {
			return exitcode.UsageErrorf("keyless verification needs exactly one of --certificate-identity and --certificate-identity-regexp")
		}
		if (o.CertOIDCIssuer == "") == (o.CertOIDCIssuerRegexp == "") {
			return exitcode.UsageErrorf("keyless verification needs exactly one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp")
		}
		if o.TrustedRoot == "" {
			return exitcode.UsageErrorf("keyless verification needs --trusted-root FILE naming the certificate authorities")
		}
	}
	if len(o.Keys) == 0 && !o.keyless() {
		return exitcode.UsageErrorf("nothing to trust: give --key FILE, or --certificate-identity with --certificate-oidc-issuer")
	}
	if o.TrustedRoot == "" && !o.InsecureIgnoreTlog {
		return exitcode.UsageErrorf("--trusted-root FILE is needed to verify transparency-log entries (or waive them, insecurely, with --insecure-ignore-tlog)")
	}
	for _, k := range o.Keys {
		if k == "" {
			return exitcode.UsageErrorf("--key needs a file name")
		}
	}
	for _, list := range [][]string{o.BuilderIDs, o.SourceURIs} {
		for _, s := range list {
			if strings.TrimSpace(s) == "" {
				return exitcode.UsageErrorf("--builder-id and --source-uri need a value")
			}
		}
	}
	if o.RekorURL != "" {
		if u, err := url.Parse(o.RekorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return exitcode.UsageErrorf("--rekor-url %q: want the http(s) URL of a Rekor v1 API or of a tiled log's checkpoint and tiles", o.RekorURL)
		}
		if o.InsecureIgnoreTlog {
			return exitcode.UsageErrorf("--rekor-url contradicts --insecure-ignore-tlog: the log cannot be both consulted and ignored")
		}
	}
	if o.NoVerifyCache && o.VerifyCache != "" {
		return exitcode.UsageErrorf("--verify-cache contradicts --no-verify-cache")
	}
	return nil
}

// Policy reads the key and trusted-root files into a trust policy. A file
// that cannot be read or parsed is a usage error.
func (o *TrustOptions) Policy() (trust.Policy, error) {
	p := trust.Policy{InsecureIgnoreTlog: o.InsecureIgnoreTlog, BuilderIDs: o.BuilderIDs, SourceURIs: o.SourceURIs, RequireVSA: o.RequireVSA, RekorURL: o.RekorURL, Limits: o.Limits}
	for _, path := range o.Keys {
		keys, err := trust.LoadKeyFile(path)
		if err != nil {
			return p, exitcode.WithCode(exitcode.Usage, fmt.Errorf("--key: %w", err))
		}
		p.Keys = append(p.Keys, keys...)
	}
	if o.keyless() {
		p.Identities = []trust.Identity{{Issuer: o.CertOIDCIssuer, IssuerRegExp: o.CertOIDCIssuerRegexp, Subject: o.CertIdentity, SubjectRegExp: o.CertIdentityRegexp}}
	} else {
		p.Identities = o.identities
	}
	if o.TrustedRoot != "" {
		tr, err := trust.LoadTrustedRoot(o.TrustedRoot)
		if err != nil {
			return p, exitcode.WithCode(exitcode.Usage, fmt.Errorf("--trusted-root: %w", err))
		}
		p.TrustedRoot = tr
	}
	return p, nil
}

// Verifier returns the verifier the trust flags describe, with its
// checkpoint store and result cache (in the cache directory unless named);
// warn receives what does not change a result (a cache that cannot be
// written).
func (o *TrustOptions) Verifier(warn func(string)) (*trust.Verifier, error) {
	p, err := o.Policy()
	if err != nil {
		return nil, err
	}
	opts := []trust.Option{trust.WithWarnings(warn)}
	cacheDir, cacheErr := trust.DefaultCacheDir()
	if o.RekorURL != "" {
		dir := o.Checkpoints
		if dir == "" {
			if cacheErr != nil {
				return nil, exitcode.UsageErrorf("--rekor-url needs --checkpoints DIR: %v", cacheErr)
			}
			dir = filepath.Join(cacheDir, "checkpoints")
		}
		opts = append(opts, trust.WithCheckpoints(dir))
	}
	switch {
	case o.NoVerifyCache:
	case o.VerifyCache != "":
		opts = append(opts, trust.WithResultCache(o.VerifyCache))
	case cacheErr != nil:
		warn(fmt.Sprintf("verified results are not cached: %v", cacheErr))
	default:
		opts = append(opts, trust.WithResultCache(filepath.Join(cacheDir, "verify")))
	}
	return trust.New(p, opts...)
}

// VerifyOptions are the flags of `buildguard verify`.
type VerifyOptions struct {
	Trust TrustOptions
	// Limits are the --max-... flags of the trust limits, copied into
	// Trust.Limits before verifying.
	Limits LimitOptions
	JSON   bool
	Images []string
}

// Validate rejects missing or unpinned images and bad trust flags before
// anything is read.
func (o *VerifyOptions) Validate() error {
	if len(o.Images) == 0 {
		return exitcode.UsageErrorf("name at least one image as NAME@sha256:... (run: buildguard verify --help)")
	}
	var unpinned []string
	for _, img := range o.Images {
		r, err := pin.ParseRef(img)
		if err != nil {
			return err
		}
		if !r.Pinned() {
			unpinned = append(unpinned, fmt.Sprintf("%q", img))
		}
	}
	if len(unpinned) > 0 {
		return exitcode.UsageErrorf("%s: no digest; only a pinned image can be verified: run 'buildguard pin' and verify NAME@sha256:...", strings.Join(unpinned, ", "))
	}
	return o.Trust.Validate()
}

func verifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "verify the Sigstore signatures and transparency-log entries of pinned images",
		usage:   "[trust flags] [--max-... limits] [--json] IMAGE@DIGEST...",
		long: `Verify each image, which must be pinned by digest: find the Sigstore bundles
attached to the digest (OCI 1.1 referrers, or the sha256-<hex> referrers tag on
registries without the referrers API, as cosign v3 attaches them) and verify
each with sigstore-go against what the flags trust: public keys (--key), a
keyless identity (--certificate-identity and --certificate-oidc-issuer, or
their -regexp forms, matched against the whole value), and the certificate
authorities, transparency logs and timestamp authorities of a Sigstore
trusted root (--trusted-root).

A signature counts only if it is about the pinned digest and has a verified
transparency-log entry (inclusion proof against a checkpoint signed by a log
the trusted root names, and the signed entry timestamp of a Rekor v1 log);
--insecure-ignore-tlog waives the log, and every result says so.

--builder-id and --source-uri require, in addition, a verified SLSA
provenance attestation (v0.2 or v1, attached the same way) about the digest
from one of the builders and built from one of the sources. --require-vsa
requires a verified SLSA verification summary (VSA v1) about the digest
whose result is PASSED and whose resourceUri names the digest; a verified
VSA that says FAILED refuses the image, with or without the flag.

What buildguard build publishes with --signing-key and --signing-config
verifies this way, the log required: the image's signature (as cosign v3
signs an image), its provenance and its VSA, each logged in the Rekor of
the signing config, whose key the trusted root holds:
  buildguard verify --key signing.pub --trusted-root trusted_root.json \
    --builder-id https://github.com/buildguard/buildguard/builder/v1 \
    --require-vsa registry.example/app@sha256:...
Signed without a signing config, the bundles carry no log entry, and only
--insecure-ignore-tlog (instead of --trusted-root) accepts them.
The line of a verified image names its recipe: the source and its tree
digest, and the builder image's digest (see docs/trust.md).

Without --rekor-url, verification is offline: nothing is fetched but the
image's attachments from its registry (and its token service, if it has
one). --rekor-url URL adds an online look-up in a log of the trusted root:
a Rekor v1 log whose REST API is at URL (each entry fetched by index with a
fresh inclusion proof), or a Rekor v2 (tiled) log whose checkpoint and tiles
are at URL. The log's current checkpoint must verify with the log's key
and extend, by a consistency proof, the newest checkpoint seen before (kept
in --checkpoints DIR) and the one in each bundle, and a fresh inclusion
proof must place each entry in it. A log that does not extend what it showed
before may be presenting a forked (split) view: its images are refused.

Verified results are cached per digest and trust flags (--verify-cache DIR,
or --no-verify-cache); a cached result is still looked up online.

What is read from a registry is bounded: the referrers an image lists, the
size of each referrer's manifest and bundle, the log entries of a bundle.
An image over a bound is refused; --max-referrers, --max-signature-manifest-bytes,
--max-bundle-bytes and --max-bundle-log-entries raise them (see docs/limits.md).

Images are verified concurrently; one line per image is printed
in the order given: what was proven (signer, log entry), or every reason each
attached bundle was refused.`,
		examples: `  # keyless: signed on GitHub Actions by a release workflow of the org
  buildguard verify --trusted-root trusted_root.json \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com \
    --certificate-identity-regexp 'https://github.com/org/[^/]+/\.github/workflows/release\.yml@refs/tags/.*' \
    registry.example/golang:1.26@sha256:...

  # with a key (several --key are trusted alike)
  buildguard verify --trusted-root trusted_root.json --key cosign.pub registry.example/base@sha256:...

  # and built by GitHub Actions from the org's repository (SLSA provenance)
  buildguard verify --trusted-root trusted_root.json --key cosign.pub \
    --builder-id https://github.com/actions/runner/github-hosted \
    --source-uri github.com/org/tool registry.example/tool@sha256:...

  # online: the log's tiles are read, and its checkpoints remembered
  buildguard verify --trusted-root trusted_root.json --key cosign.pub \
    --rekor-url https://log2025-1.rekor.sigstore.dev registry.example/base@sha256:...

  # for a machine
  buildguard verify --json --trusted-root trusted_root.json --key cosign.pub IMAGE@sha256:...`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &VerifyOptions{}
			o.Trust.AddFlags(fs)
			o.Limits.AddFlags(fs, VerifyCommandLimits)
			fs.BoolVar(&o.JSON, "json", false, "print the results as JSON")
			return func(ctx context.Context, args []string, io IO) error {
				o.Images = args
				if err := o.Validate(); err != nil {
					return err
				}
				o.Trust.Limits = TrustLimitsOf(o.Limits.Values())
				return runVerify(ctx, o, io)
			}
		},
	}
}

// verifyReport is the --json output of `buildguard verify`.
type verifyReport struct {
	APIVersion string        `json:"apiVersion"`
	Images     []verifyImage `json:"images"`
	// Logs is what online look-ups found of the log (--rekor-url).
	Logs []trust.LogState `json:"logs,omitempty"`
}

// verifyImage is one image's result, or the error that kept it from one.
type verifyImage struct {
	Ref string `json:"ref"`
	*trust.ImageResult
	Error string `json:"error,omitempty"`
}

func runVerify(ctx context.Context, o *VerifyOptions, io IO) error {
	v, err := o.Trust.Verifier(func(msg string) { fmt.Fprintln(io.Err, "warning: "+msg) })
	if err != nil {
		return err
	}
	if o.Trust.InsecureIgnoreTlog {
		fmt.Fprintln(io.Err, "warning: --insecure-ignore-tlog: signatures are accepted without proof that they were ever logged publicly")
	}
	results, errs := v.VerifyImages(ctx, o.Images, 0)
	report := verifyReport{APIVersion: "buildguard/v1", Images: make([]verifyImage, len(results)), Logs: v.Logs()}
	var incomplete []error
	refused := 0
	for i, res := range results {
		report.Images[i] = verifyImage{Ref: o.Images[i], ImageResult: res}
		switch {
		case errs[i] != nil:
			report.Images[i].Error = errs[i].Error()
			incomplete = append(incomplete, errs[i])
		case !res.Verified:
			refused++
		}
	}
	if o.JSON {
		if err := writeJSON(io.Out, report); err != nil {
			return err
		}
	} else {
		for _, img := range report.Images {
			printVerified(io.Out, img)
		}
		for _, l := range report.Logs {
			printLog(io.Out, l)
		}
	}
	if len(incomplete) > 0 {
		return exitcode.WithCode(exitcode.Incomplete, fmt.Errorf("%d of %d image(s) could not be verified: %w", len(incomplete), len(o.Images), errors.Join(incomplete...)))
	}
	if refused > 0 {
		return exitcode.Failf("%d of %d image(s) refused", refused, len(o.Images))
	}
	return nil
}

// printVerified writes one image's line, and each reason under a refusal.
func printVerified(w io.Writer, img verifyImage) {
	switch {
	case img.Error != "":
		fmt.Fprintf(w, "error     %s: %s\n", img.Ref, img.Error)
	case img.Verified:
		var signers, entries []string
		for _, s := range img.Signers() {
			signers = append(signers, s.String())
		}
		for _, e := range img.LogEntries() {
			entry := fmt.Sprintf("index %d of log %.16s", e.Index, e.LogID)
			if e.Online != nil {
				entry += fmt.Sprintf(" (confirmed online in a tree of %d)", e.Online.TreeSize)
			}
			entries = append(entries, entry)
		}
		line := "signed by " + strings.Join(signers, " and ")
		if img.TlogWaived {
			line += "; transparency log NOT checked (--insecure-ignore-tlog)"
		} else {
			line += "; logged at " + strings.Join(entries, " and ")
		}
		for _, p := range img.Provenance() {
			line += "; built by " + p.BuilderID
			if p.SourceURI != "" {
				line += " from " + p.SourceURI
			}
			if p.SourceDigest != "" || p.BuilderDigest != "" {
				line += fmt.Sprintf("; recipe: source %q (%s), builder %s", p.Source, p.SourceDigest, p.BuilderDigest)
			}
		}
		for _, s := range img.VSAs() {
			line += fmt.Sprintf("; VSA %s by %s", s.Result, s.VerifierID)
			if s.Levels != "" {
				line += " (" + s.Levels + ")"
			}
		}
		fmt.Fprintf(w, "verified  %s: %s\n", img.Ref, line)
	default:
		fmt.Fprintf(w, "refused   %s\n", img.Ref)
		for _, r := range img.Reasons() {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
}

// printLog writes what the online look-up found of a log.
func printLog(w io.Writer, l trust.LogState) {
	head := fmt.Sprintf("log       %.16s (%s) at %s: ", l.LogID, l.Origin, l.URL)
	switch {
	case l.SplitView != "":
		fmt.Fprintf(w, "%sSPLIT VIEW: the log may be presenting a forked view; the checkpoint stored in %s was kept (see docs/trust.md)\n", head, l.StoreFile)
	case l.StoredSize == 0:
		fmt.Fprintf(w, "%stree of size %d (root %.16s), first seen: stored in %s\n", head, l.TreeSize, l.RootHash, l.StoreFile)
	case l.Advanced:
		fmt.Fprintf(w, "%stree of size %d (root %.16s) extends the stored tree of size %d (consistency proof verified): stored\n", head, l.TreeSize, l.RootHash, l.StoredSize)
	default:
		fmt.Fprintf(w, "%stree of size %d (root %.16s), as stored\n", head, l.TreeSize, l.RootHash)
	}
}

package trust

// sigstore-go decides; this file explains. When sigstore-go refuses a
// bundle, the checks below find which part failed so that each refusal
// carries its own reason instead of a wrapped error string. They never
// accept anything: a bundle is verified only when sigstore-go says so.

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 for Rekor v2 entries
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func (v *Verifier) diagnoseKeyless(b *bundle.Bundle, d Digest, err error) *Refusal {
	vc, _ := b.VerificationContent() // checked by the caller
	sc, scErr := b.SignatureContent()
	if scErr != nil {
		return refuse(ReasonMalformed, "signature content: %v", scErr)
	}
	tm := v.policy.TrustedRoot
	cert := vc.Certificate()
	sum, sumErr := certificate.SummarizeCertificate(cert)
	if sumErr != nil {
		return refuse(ReasonUntrustedCertificate, "certificate: %v", sumErr)
	}
	if r := v.matchIdentity(sum); r != nil {
		return r
	}
	if err := verify.VerifySignatureWithArtifactDigests(sc, vc, tm, []verify.ArtifactDigest{{Algorithm: d.Algorithm, Digest: d.raw}}); err != nil {
		return refuse(ReasonBadSignature, "signature does not verify with the certificate of %s: the payload or the signature was changed", sum.SubjectAlternativeName)
	}
	var times []time.Time
	if !v.policy.InsecureIgnoreTlog {
		if r := v.tlogProblem(b, sc, vc, tm); r != nil {
			return r
		}
		for _, e := range mustEntries(b) {
			if _, known := tm.RekorLogs()[hex.EncodeToString([]byte(e.LogKeyID()))]; known && e.HasInclusionPromise() && tlog.VerifySET(e, tm.RekorLogs()) == nil {
				times = append(times, e.IntegratedTime())
			}
		}
	}
	tsa, _, _ := verify.VerifySignedTimestamp(b, tm)
	for _, ts := range tsa {
		times = append(times, ts.Time)
	}
	if len(times) == 0 {
		return refuse(ReasonNoTimestamp, "no verified time for the certificate: no signed entry timestamp and no RFC 3161 timestamp from a trusted authority")
	}
	for _, t := range times {
		chains, err := verify.VerifyLeafCertificate(t, cert, tm)
		if err != nil {
			return refuse(ReasonUntrustedCertificate, "certificate of %s does not chain to a trusted CA at %s: %v", sum.SubjectAlternativeName, t.UTC().Format(time.RFC3339), err)
		}
		if len(tm.CTLogs()) > 0 {
			if err := verify.VerifySignedCertificateTimestamp(chains, 1, tm); err != nil {
				return refuse(ReasonMissingSCT, "certificate of %s has no verified signed certificate timestamp: %v", sum.SubjectAlternativeName, err)
			}
		}
	}
	return refuse(ReasonVerification, "%v", err)
}

// matchIdentity explains why no trusted identity matches the certificate:
// the issuer, or else the subject.
func (v *Verifier) matchIdentity(sum certificate.Summary) *Refusal {
	issuerOK := false
	for _, id := range v.policy.Identities {
		if !matches(id.Issuer, id.IssuerRegExp, sum.Issuer) {
			continue
		}
		issuerOK = true
		if matches(id.Subject, id.SubjectRegExp, sum.SubjectAlternativeName) {
			return nil
		}
	}
	if !issuerOK {
		return refuse(ReasonIssuerMismatch, "certificate issuer %q is not trusted (trusted: %s)", sum.Issuer, v.identityList())
	}
	return refuse(ReasonIdentityMismatch, "certificate subject %q from %q is not trusted (trusted: %s)", sum.SubjectAlternativeName, sum.Issuer, v.identityList())
}

func (v *Verifier) identityList() string {
	var s []string
	for _, id := range v.policy.Identities {
		s = append(s, id.String())
	}
	return strings.Join(s, "; ")
}

func matches(exact, re, value string) bool {
	if re != "" {
		ok, err := regexp.MatchString(anchor(re), value)
		return err == nil && ok
	}
	return exact == value
}

func (v *Verifier) diagnoseKeyed(b *bundle.Bundle, d Digest, hint string, err error) *Refusal {
	vc, _ := b.VerificationContent()
	sc, scErr := b.SignatureContent()
	if scErr != nil {
		return refuse(ReasonMalformed, "signature content: %v", scErr)
	}
	digests := []verify.ArtifactDigest{{Algorithm: d.Algorithm, Digest: d.raw}}
	for _, kv := range v.keyed {
		if verify.VerifySignatureWithArtifactDigests(sc, vc, kv.material, digests) != nil {
			continue
		}
		// The signature is good with this key: the problem is elsewhere.
		if !v.policy.InsecureIgnoreTlog {
			if r := v.tlogProblem(b, sc, vc, kv.material); r != nil {
				return r
			}
		}
		return refuse(ReasonVerification, "%v", err)
	}
	if k, ok := v.keyByHint(hint); ok {
		return refuse(ReasonBadSignature, "signature does not verify with key %s: the payload or the signature was changed", k.ID)
	}
	// Without a hint, a log entry may name the key that signed.
	for _, e := range mustEntries(b) {
		if k, ok := v.trustedKey(e.PublicKey()); ok {
			return refuse(ReasonBadSignature, "signature does not verify with key %s, which its log entry names: the payload or the signature was changed", k.ID)
		}
	}
	return refuse(ReasonUntrustedKey, "signature verifies with none of the %d trusted key(s) (bundle names key %q)", len(v.keyed), hint)
}

func mustEntries(b *bundle.Bundle) []*tlog.Entry {
	entries, _ := b.TlogEntries() // checked by the caller
	return entries
}

// tlogProblem finds the first reason the bundle's log entries do not meet
// the policy, in the order sigstore-go checks them.
func (v *Verifier) tlogProblem(b *bundle.Bundle, sc verify.SignatureContent, vc verify.VerificationContent, tm root.TrustedMaterial) *Refusal {
	entries := mustEntries(b)
	if len(entries) == 0 {
		return refuse(ReasonTlogMissing, "no transparency-log entry: the signature was never logged publicly")
	}
	for i := range entries {
		for j := i + 1; j < len(entries); j++ {
			if entries[i].LogKeyID() == entries[j].LogKeyID() && entries[i].LogIndex() == entries[j].LogIndex() {
				return refuse(ReasonTlogDuplicate, "entry %d of log %s appears twice", entries[i].LogIndex(), logID(entries[i]))
			}
		}
	}
	logs := tm.RekorLogs()
	good := map[string]bool{}
	var skipped *Refusal
	for _, e := range entries {
		tl, ok := logs[logID(e)]
		if !ok {
			if skipped == nil {
				skipped = refuse(ReasonTlogUnknownLog, "entry %d is in log %s, which the trusted root does not name", e.LogIndex(), logID(e))
			}
			continue
		}
		if e.HasInclusionPromise() {
			if err := tlog.VerifySET(e, logs); err != nil {
				if skipped == nil {
					skipped = refuse(ReasonTlogInvalidSET, "signed entry timestamp of entry %d in log %s does not verify: %v", e.LogIndex(), logID(e), err)
				}
				continue
			}
		}
		if e.HasInclusionProof() {
			if r := checkInclusion(e, tl); r != nil {
				return r
			}
		}
		if r := entryMatches(e, sc, vc, tm); r != nil {
			return r
		}
		if it := e.IntegratedTime(); !it.IsZero() && vc.Certificate() != nil && !vc.ValidAtTime(it, tm) {
			c := vc.Certificate()
			return refuse(ReasonCertificateExpired, "logged at %s, outside the certificate's validity %s to %s", it.UTC().Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
		good[logID(e)] = true
	}
	if len(good) < v.threshold {
		if skipped != nil {
			return skipped
		}
		return refuse(ReasonTlogThreshold, "entries verified in %d distinct log(s), %d required", len(good), v.threshold)
	}
	return nil
}

func logID(e *tlog.Entry) string { return hex.EncodeToString([]byte(e.LogKeyID())) }

// checkInclusion checks the Merkle inclusion proof, then the checkpoint
// signature, of an entry.
func checkInclusion(e *tlog.Entry, tl *root.TransparencyLog) *Refusal {
	tle := e.TransparencyLogEntry()
	p := tle.GetInclusionProof()
	leaf := rfc6962.DefaultHasher.HashLeaf(tle.GetCanonicalizedBody())
	index, size := p.GetLogIndex(), p.GetTreeSize()
	if index < 0 || size < 0 {
		return refuse(ReasonTlogInclusion, "inclusion proof of entry %d has a negative index or size", e.LogIndex())
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(index), uint64(size), leaf, p.GetHashes(), p.GetRootHash()); err != nil { //nolint:gosec // both checked non-negative above
		return refuse(ReasonTlogInclusion, "inclusion proof of entry %d in log %s does not lead to root %x of a tree of size %d", e.LogIndex(), logID(e), p.GetRootHash(), p.GetTreeSize())
	}
	verifier, err := signature.LoadVerifier(tl.PublicKey, tl.SignatureHashFunc)
	if err != nil {
		return refuse(ReasonTlogCheckpoint, "key of log %s: %v", logID(e), err)
	}
	if rekorV1Checkpoint(p.GetCheckpoint().GetEnvelope()) {
		err = tlog.VerifyInclusion(e, verifier)
	} else {
		u, perr := url.Parse(tl.BaseURL)
		if perr != nil || u.Hostname() == "" {
			return refuse(ReasonTlogCheckpoint, "log %s has no base URL in the trusted root, so its checkpoint origin is unknown", logID(e))
		}
		err = tlog.VerifyCheckpointAndInclusion(e, verifier, u.Hostname())
	}
	if err != nil {
		return refuse(ReasonTlogCheckpoint, "checkpoint for entry %d is not signed by log %s: %v", e.LogIndex(), logID(e), err)
	}
	return nil
}

// v1Origin is the origin line of a Rekor v1 checkpoint: "host - treeID".
var v1Origin = regexp.MustCompile(`^.* - [0-9]+$`)

func rekorV1Checkpoint(envelope string) bool {
	lines := strings.Split(envelope, "\n")
	return len(lines) >= 4 && v1Origin.MatchString(lines[0])
}

// entryMatches checks that the entry logs this bundle's signature, key and
// payload.
func entryMatches(e *tlog.Entry, sc verify.SignatureContent, vc verify.VerificationContent, tm root.TrustedMaterial) *Refusal {
	if !bytes.Equal(e.Signature(), sc.Signature()) {
		return refuse(ReasonTlogEntryMismatch, "entry %d in log %s logs another signature", e.LogIndex(), logID(e))
	}
	if !vc.CompareKey(e.PublicKey(), tm) {
		return refuse(ReasonTlogEntryMismatch, "entry %d in log %s logs another key or certificate", e.LogIndex(), logID(e))
	}
	var want []byte
	switch {
	case sc.MessageSignatureContent() != nil:
		want = sc.MessageSignatureContent().Digest()
		if got, _, ok := e.GetHashedRekordDigest(); !ok || !bytes.Equal(got, want) {
			return refuse(ReasonTlogEntryMismatch, "entry %d in log %s logs another artifact digest", e.LogIndex(), logID(e))
		}
	case sc.EnvelopeContent() != nil:
		env := sc.EnvelopeContent().RawEnvelope()
		payload, err := env.DecodeB64Payload()
		if err != nil {
			return refuse(ReasonMalformed, "envelope payload: %v", err)
		}
		var got []byte
		var ok bool
		if e.IsRekorV2() {
			var alg string
			got, alg, ok = e.GetHashedRekordDigest()
			want = pae(alg, env.PayloadType, payload)
		} else {
			got, ok = e.GetDssePayloadHash()
			sum := sha256.Sum256(payload)
			want = sum[:]
		}
		if !ok || want == nil || !bytes.Equal(got, want) {
			return refuse(ReasonTlogEntryMismatch, "entry %d in log %s logs another payload", e.LogIndex(), logID(e))
		}
	}
	return nil
}

// pae hashes the DSSE pre-authentication encoding with the algorithm a
// Rekor v2 entry names; nil for an algorithm it does not know.
func pae(alg, payloadType string, payload []byte) []byte {
	h, ok := map[string]crypto.Hash{"SHA2_256": crypto.SHA256, "SHA2_384": crypto.SHA384, "SHA2_512": crypto.SHA512}[alg]
	if !ok {
		return nil
	}
	w := h.New()
	w.Write(dsse.PAE(payloadType, payload))
	return w.Sum(nil)
}

// verifiedEntries lists the entries sigstore-go counted: those in a log of
// the trusted root whose signed entry timestamp, when present, verifies.
// sigstore-go fails the whole bundle on any other bad entry, so after it
// accepted the bundle these are exactly the verified ones.
func verifiedEntries(entries []*tlog.Entry, tm root.TrustedMaterial) []LogEntry {
	var out []LogEntry
	logs := tm.RekorLogs()
	for _, e := range entries {
		if _, ok := logs[logID(e)]; !ok {
			continue
		}
		if e.HasInclusionPromise() && tlog.VerifySET(e, logs) != nil {
			continue
		}
		out = append(out, LogEntry{LogID: logID(e), Index: e.LogIndex()})
	}
	return out
}

// tiledEntries lists what online look-ups need of the entries in logs of
// the trusted root that sigstore-go accepted: tiled (Rekor v2) entries with
// their inclusion proofs and checkpoints, and Rekor v1 entries, with the
// checkpoint of their inclusion proof when the bundle has one.
func tiledEntries(entries []*tlog.Entry, tm root.TrustedMaterial) []tiledEntry {
	var out []tiledEntry
	logs := tm.RekorLogs()
	for _, e := range entries {
		tle := e.TransparencyLogEntry()
		if _, ok := logs[logID(e)]; !ok || tle.GetLogIndex() < 0 || (e.IsRekorV2() && !e.HasInclusionProof()) {
			continue
		}
		if !e.IsRekorV2() && e.HasInclusionPromise() && tlog.VerifySET(e, logs) != nil {
			continue // not counted by sigstore-go (see verifiedEntries)
		}
		out = append(out, tiledEntry{
			LogID:      logID(e),
			Index:      uint64(tle.GetLogIndex()), //nolint:gosec // checked non-negative above
			LeafHash:   rfc6962.DefaultHasher.HashLeaf(tle.GetCanonicalizedBody()),
			Checkpoint: tle.GetInclusionProof().GetCheckpoint().GetEnvelope(),
			RekorV1:    !e.IsRekorV2(),
		})
	}
	return out
}

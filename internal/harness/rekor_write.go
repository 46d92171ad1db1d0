package harness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxEntryResponse bounds the size of a write API response.
const maxEntryResponse = 1 << 20

// addTimeout bounds one write: rekor-tiles answers only once a checkpoint
// that includes the entry is published.
const addTimeout = 30 * time.Second

// HashedRekord is a hashedrekord v0.0.2 request: a signature over an
// artifact digest and the key that verifies it.
type HashedRekord struct {
	// Digest is the artifact's digest, made with the hash KeyDetails names.
	Digest []byte
	// Signature is the signature over Digest (for ECDSA, ASN.1 DER).
	Signature []byte
	// PublicKeyDER is the PKIX DER of the verifying key.
	PublicKeyDER []byte
	// KeyDetails is a sigstore PublicKeyDetails name such as
	// "PKIX_ECDSA_P256_SHA_256". Empty means derive it from an ECDSA key;
	// other key types must set it.
	KeyDetails string
}

// LogEntry is the part of the TransparencyLogEntry the write API returns
// that tests use; Raw holds all of it as returned.
type LogEntry struct {
	Index             uint64
	CanonicalizedBody []byte
	LogID             []byte
	// Checkpoint is the signed checkpoint the inclusion proof is against.
	Checkpoint  []byte
	ProofHashes [][]byte
	Raw         json.RawMessage
}

// DuplicateEntryError is returned when the log already holds an equivalent
// entry (HTTP 409).
type DuplicateEntryError struct {
	Index uint64 // from the x-log-index header
}

func (e *DuplicateEntryError) Error() string {
	return fmt.Sprintf("an equivalent entry already exists at index %d", e.Index)
}

// AddHashedRekord POSTs hr to the log's write API (/api/v2/log/entries)
// and returns the entry the log integrated.
func (r *Rekor) AddHashedRekord(ctx context.Context, hr HashedRekord) (*LogEntry, error) {
	details := hr.KeyDetails
	if details == "" {
		var err error
		if details, err = ecdsaKeyDetails(hr.PublicKeyDER); err != nil {
			return nil, err
		}
	}
	type pubKey struct {
		RawBytes []byte `json:"rawBytes"`
	}
	type verifier struct {
		PublicKey  pubKey `json:"publicKey"`
		KeyDetails string `json:"keyDetails"`
	}
	type signature struct {
		Content  []byte   `json:"content"`
		Verifier verifier `json:"verifier"`
	}
	type request struct {
		Digest    []byte    `json:"digest"`
		Signature signature `json:"signature"`
	}
	body, err := json.Marshal(map[string]request{"hashedRekordRequestV002": {
		Digest: hr.Digest,
		Signature: signature{
			Content:  hr.Signature,
			Verifier: verifier{PublicKey: pubKey{RawBytes: hr.PublicKeyDER}, KeyDetails: details},
		},
	}})
	if err != nil {
		return nil, fmt.Errorf("encoding hashedrekord: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, addTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+"/api/v2/log/entries", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("adding hashedrekord: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEntryResponse))
	if err != nil {
		return nil, fmt.Errorf("reading rekor response: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK:
	case http.StatusConflict:
		idx, _ := strconv.ParseUint(resp.Header.Get("x-log-index"), 10, 64)
		return nil, &DuplicateEntryError{Index: idx}
	default:
		return nil, fmt.Errorf("adding hashedrekord: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	return parseLogEntry(raw)
}

// parseLogEntry decodes the protojson TransparencyLogEntry (int64 fields
// are JSON strings, bytes are base64).
func parseLogEntry(raw []byte) (*LogEntry, error) {
	var tle struct {
		LogIndex int64 `json:"logIndex,string"`
		LogID    struct {
			KeyID []byte `json:"keyId"`
		} `json:"logId"`
		InclusionProof struct {
			Hashes     [][]byte `json:"hashes"`
			Checkpoint struct {
				Envelope string `json:"envelope"`
			} `json:"checkpoint"`
		} `json:"inclusionProof"`
		CanonicalizedBody []byte `json:"canonicalizedBody"`
	}
	if err := json.Unmarshal(raw, &tle); err != nil {
		return nil, fmt.Errorf("decoding transparency log entry: %w", err)
	}
	if tle.LogIndex < 0 || len(tle.CanonicalizedBody) == 0 {
		return nil, fmt.Errorf("decoding transparency log entry: index %d, %d body bytes", tle.LogIndex, len(tle.CanonicalizedBody))
	}
	return &LogEntry{
		Index:             uint64(tle.LogIndex),
		CanonicalizedBody: tle.CanonicalizedBody,
		LogID:             tle.LogID.KeyID,
		Checkpoint:        []byte(tle.InclusionProof.Checkpoint.Envelope),
		ProofHashes:       tle.InclusionProof.Hashes,
		Raw:               raw,
	}, nil
}

// ecdsaKeyDetails names the sigstore key details of an ECDSA PKIX key.
func ecdsaKeyDetails(der []byte) (string, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return "", fmt.Errorf("parsing hashedrekord public key: %w", err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("hashedrekord key is %T: set KeyDetails", pub)
	}
	switch k.Curve {
	case elliptic.P256():
		return "PKIX_ECDSA_P256_SHA_256", nil
	case elliptic.P384():
		return "PKIX_ECDSA_P384_SHA_384", nil
	case elliptic.P521():
		return "PKIX_ECDSA_P521_SHA_512", nil
	}
	return "", fmt.Errorf("unsupported ECDSA curve %s: set KeyDetails", k.Curve.Params().Name)
}

package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	cyclonedx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/syft/syft/format/common/cyclonedxhelpers"
	"github.com/anchore/syft/syft/format/common/spdxhelpers"
	"github.com/google/uuid"
	"github.com/spdx/tools-golang/convert"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// uuidSpace is the name space of the version 5 UUIDs this package mints.
var uuidSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/buildguard/buildguard/sbom"))

// contentUUID is the version 5 UUID of doc's SHA-256.
func contentUUID(doc []byte) uuid.UUID {
	sum := sha256.Sum256(doc)
	return uuid.NewSHA1(uuidSpace, sum[:])
}

// encode writes s as f, dated epoch, with its identifiers derived from its
// content.
func encode(f Format, s *sbomModel, epoch int64) ([]byte, error) {
	created := time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	switch f {
	case SPDXJSON:
		return encodeSPDX(s, created)
	case CycloneDXJSON:
		return encodeCycloneDX(s, created)
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

// encodeSPDX is syft's spdxjson encoder (SPDX 2.3, compact) with the
// creation time and the namespace's UUID replaced.
func encodeSPDX(s *sbomModel, created string) ([]byte, error) {
	doc := spdxhelpers.ToFormatModel(*s)
	if doc == nil || doc.CreationInfo == nil {
		return nil, fmt.Errorf("syft made no SPDX document")
	}
	doc.CreationInfo.Created = created
	// syft ends the namespace with a random UUID (36 characters).
	ns := doc.DocumentNamespace
	if len(ns) < 36 {
		return nil, fmt.Errorf("unexpected SPDX namespace %q", ns)
	}
	if _, err := uuid.Parse(ns[len(ns)-36:]); err != nil {
		return nil, fmt.Errorf("unexpected SPDX namespace %q: %w", ns, err)
	}
	prefix := ns[:len(ns)-36]
	doc.DocumentNamespace = prefix
	draft, err := marshalSPDX(doc)
	if err != nil {
		return nil, err
	}
	doc.DocumentNamespace = prefix + contentUUID(draft).String()
	return marshalSPDX(doc)
}

// marshalSPDX does what syft's spdxjson encoder does with a document.
func marshalSPDX(latest *spdx.Document) ([]byte, error) {
	var doc v2_3.Document
	if err := convert.Document(latest, &doc); err != nil {
		return nil, fmt.Errorf("converting to SPDX 2.3: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeCycloneDX is syft's cyclonedxjson encoder (CycloneDX 1.6, compact)
// with the timestamp and the serial number replaced.
func encodeCycloneDX(s *sbomModel, created string) ([]byte, error) {
	bom := cyclonedxhelpers.ToFormatModel(*s)
	if bom == nil || bom.Metadata == nil {
		return nil, fmt.Errorf("syft made no CycloneDX document")
	}
	bom.Metadata.Timestamp = created
	bom.SerialNumber = ""
	draft, err := marshalCycloneDX(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = contentUUID(draft).URN()
	return marshalCycloneDX(bom)
}

// marshalCycloneDX does what syft's cyclonedxjson encoder does with a BOM.
func marshalCycloneDX(bom *cyclonedx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cyclonedx.NewBOMEncoder(&buf, cyclonedx.BOMFileFormatJSON)
	enc.SetPretty(false)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cyclonedx.SpecVersion1_6); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Package sbom describes what a build produced as a software bill of
// materials: SPDX 2.3 JSON and CycloneDX 1.6 JSON, made by syft, plus the
// plain package list that policy rules read.
//
// It is the only package of buildguard that imports syft (a test enforces
// that fence), so the rest of the module sees plain structs and bytes.
//
// Documents are deterministic: the same tree (or image) and the same
// SourceDateEpoch give byte-identical documents, wherever the tree lives.
// syft's encoders stamp each document with the wall clock and a random UUID,
// and its directory source names the document after the scanned path; this
// package replaces exactly those values:
//
//   - the creation time (SPDX creationInfo.created, CycloneDX
//     metadata.timestamp) is SourceDateEpoch, in UTC;
//   - the SPDX documentNamespace keeps syft's shape
//     (https://anchore.com/syft/dir/NAME-UUID) and the CycloneDX
//     serialNumber is urn:uuid:UUID, where each UUID is a version 5 UUID
//     of the SHA-256 of the document itself encoded with that field empty:
//     it changes exactly when the content does;
//   - the source is described by [Options.Name] (never the directory's
//     path, which for build output is often a temporary directory), and
//     its syft ID is derived from that name.
//
// Everything else is syft's output as its own encoders write it.
package sbom

// Package builder fetches a pinned builder image and unpacks it safely into a
// root filesystem cache keyed by the image's manifest digest.
//
// Fetch accepts only references that carry a digest; a reference to an index
// resolves to the index's linux/GOARCH image. Cache.Unpack applies the
// image's layers in order, with OCI whiteouts, through os.Root so that a
// hostile layer cannot write, link or delete outside the root, and within
// configurable Limits. A root is unpacked into a temporary directory and
// renamed into place; a marker written last says it is complete, and a root
// without a valid marker is never used.
//
// Run runs one build Step in an unpacked root through crun or runc: new
// namespaces with loopback-only networking, a read-only overlay root, the
// source read-only, an empty /out, no capabilities, a clean environment.
// HashTree turns /out into a deterministic Manifest whose Digest identifies
// the output.
package builder

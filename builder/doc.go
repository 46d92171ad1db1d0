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
package builder

// Package reproduce rebuilds and compares: it runs a build several times with
// variations and with independent builders, compares the output trees, and
// explains every difference in terms a release engineer can act on.
//
// This file holds the explainers: given two versions of one file, say how
// they differ. Text gets a unified diff; tar, gzip and zip archives (and
// jars) are opened and their members compared, recursively; ELF binaries
// get the differing sections and, for Go binaries, the differing build
// information (module versions, build settings), which is what usually
// explains a Go mismatch; JSON gets the differing keys. Everything read is
// bounded by Limits, and every list is capped with a note that says so.
package reproduce

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf8"
)

// Limits bound what an explanation reads and how much it says.
type Limits struct {
	// MaxFileBytes is the most read of each side of a file (and of an
	// archive member once decompressed).
	MaxFileBytes int64
	// MaxDiffLines caps a unified diff.
	MaxDiffLines int
	// MaxDepth caps nesting of archives inside archives.
	MaxDepth int
	// MaxMembers caps the members read from one archive.
	MaxMembers int
	// MaxItems caps the lines of a summary and the members explained.
	MaxItems int
}

// DefaultLimits are the limits used where a field is zero.
var DefaultLimits = Limits{MaxFileBytes: 256 << 20, MaxDiffLines: 200, MaxDepth: 4, MaxMembers: 100000, MaxItems: 50}

// limitSettings names, for the Limits fields a user may need to raise, the
// buildguard.yaml field and the flag of `buildguard build` that raise it.
var limitSettings = map[string]string{
	"MaxFileBytes": "limits.diffFileBytes, --max-diff-file-bytes",
	"MaxDiffLines": "limits.diffLines, --max-diff-lines",
	"MaxItems":     "limits.diffFiles, --max-diff-files",
}

// raise says how to raise the limit of a Limits field, for the notes that
// say a limit cut an explanation short.
func raise(field string) string { return "(raise with " + limitSettings[field] + ")" }

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxFileBytes > 0 {
		d.MaxFileBytes = l.MaxFileBytes
	}
	if l.MaxDiffLines > 0 {
		d.MaxDiffLines = l.MaxDiffLines
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxMembers > 0 {
		d.MaxMembers = l.MaxMembers
	}
	if l.MaxItems > 0 {
		d.MaxItems = l.MaxItems
	}
	return d
}

// The kinds of file an explanation knows.
const (
	KindText   = "text"
	KindJSON   = "json"
	KindTar    = "tar"
	KindGzip   = "gzip"
	KindZip    = "zip"
	KindELF    = "elf"
	KindBinary = "binary"
)

// Explanation says how two versions of a file differ.
type Explanation struct {
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	SizeA int64  `json:"sizeA"`
	SizeB int64  `json:"sizeB"`
	// FirstDiff is the offset of the first differing byte, -1 if none.
	FirstDiff int64 `json:"firstDiff"`
	// Summary is what differs, a line each.
	Summary []string `json:"summary,omitempty"`
	// Diff is a unified diff, for text.
	Diff string `json:"diff,omitempty"`
	// Members explains the differing members of an archive.
	Members []*Explanation `json:"members,omitempty"`

	membersCut bool
}

// ExplainFiles explains how the file at pathA differs from the one at
// pathB; name is how the report calls it.
func ExplainFiles(name, pathA, pathB string, lim Limits) (*Explanation, error) {
	lim = lim.withDefaults()
	a, sizeA, err := readBounded(pathA, lim.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	b, sizeB, err := readBounded(pathB, lim.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	e := explain(name, a, b, lim, 0)
	if sizeA > int64(len(a)) || sizeB > int64(len(b)) {
		e.SizeA, e.SizeB = sizeA, sizeB
		e.note(lim, fmt.Sprintf("only the first %d bytes of each side were compared %s", lim.MaxFileBytes, raise("MaxFileBytes")))
	}
	return e, nil
}

// Explain explains how a differs from b.
func Explain(name string, a, b []byte, lim Limits) *Explanation {
	return explain(name, a, b, lim.withDefaults(), 0)
}

func explain(name string, a, b []byte, lim Limits, depth int) *Explanation {
	e := &Explanation{Path: name, SizeA: int64(len(a)), SizeB: int64(len(b)), FirstDiff: firstDiff(a, b)}
	ka, kb := kindOf(a), kindOf(b)
	if ka != kb {
		e.Kind = KindBinary
		e.note(lim, fmt.Sprintf("the file is %s in A and %s in B", ka, kb))
		return e
	}
	e.Kind = ka
	if e.FirstDiff < 0 {
		return e
	}
	if e.SizeA != e.SizeB {
		e.note(lim, fmt.Sprintf("size %d in A, %d in B", e.SizeA, e.SizeB))
	}
	if depth >= lim.MaxDepth && (ka == KindTar || ka == KindGzip || ka == KindZip) {
		e.note(lim, fmt.Sprintf("nested deeper than %d archives: not opened", lim.MaxDepth))
		return e
	}
	switch ka {
	case KindText:
		explainText(e, a, b, lim)
	case KindJSON:
		explainJSON(e, a, b, lim)
	case KindGzip:
		explainGzip(e, a, b, lim, depth)
	case KindTar:
		explainTar(e, a, b, lim, depth)
	case KindZip:
		explainZip(e, a, b, lim, depth)
	case KindELF:
		explainELF(e, a, b, lim)
	default:
		e.note(lim, fmt.Sprintf("first difference at byte %d: % x vs % x", e.FirstDiff, window(a, e.FirstDiff), window(b, e.FirstDiff)))
	}
	return e
}

// note adds a summary line, or one that says the list was cut.
func (e *Explanation) note(lim Limits, line string) {
	switch {
	case len(e.Summary) < lim.MaxItems:
		e.Summary = append(e.Summary, line)
	case len(e.Summary) == lim.MaxItems:
		e.Summary = append(e.Summary, "... more differences not listed "+raise("MaxItems"))
	}
}

// member adds a member's explanation, or says the list was cut.
func (e *Explanation) member(lim Limits, m *Explanation) {
	switch {
	case len(e.Members) < lim.MaxItems:
		e.Members = append(e.Members, m)
	case !e.membersCut:
		e.membersCut = true
		e.note(lim, "... more differing members not explained "+raise("MaxItems"))
	}
}

func kindOf(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return KindGzip
	case bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06")):
		return KindZip
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return KindELF
	case len(b) > 262 && bytes.Equal(b[257:262], []byte("ustar")):
		return KindTar
	case isJSON(b):
		return KindJSON
	case utf8.Valid(b) && bytes.IndexByte(b, 0) < 0:
		return KindText
	}
	return KindBinary
}

func firstDiff(a, b []byte) int64 {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return int64(i)
		}
	}
	if len(a) != len(b) {
		return int64(n)
	}
	return -1
}

// window returns up to 16 bytes from off, for showing where bytes differ.
func window(b []byte, off int64) []byte {
	if off >= int64(len(b)) {
		return nil
	}
	end := min(int64(len(b)), off+16)
	return b[off:end]
}

// readBounded reads up to limit bytes of a file and returns its full size.
func readBounded(path string, limit int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	return data, st.Size(), err
}

// unionKeys returns the keys of a and b, each once, sorted.
func unionKeys[A, B any](a map[string]A, b map[string]B) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

package reproduce

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/buildguard/buildguard/builder"
)

// Difference is how two output trees differ.
type Difference struct {
	// Added are paths only in B, Removed only in A, Changed in both with a
	// different type, mode, content or link target.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// Explanations say how each changed file differs (capped).
	Explanations []*Explanation `json:"explanations,omitempty"`
	// Diffoscope is diffoscope's report, when it was asked for.
	Diffoscope string `json:"diffoscope,omitempty"`
}

// Same reports whether the trees are identical.
func (d *Difference) Same() bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed) == 0
}

// Files lists every differing path: changed, then removed, then added.
func (d *Difference) Files() []string {
	out := append(append(append([]string(nil), d.Changed...), d.Removed...), d.Added...)
	return out
}

// Compare compares two manifests (both sorted by path, as HashTree makes
// them) without reading any file.
func Compare(a, b *builder.Manifest) *Difference {
	d := &Difference{}
	i, j := 0, 0
	for i < len(a.Entries) || j < len(b.Entries) {
		switch {
		case j >= len(b.Entries) || (i < len(a.Entries) && a.Entries[i].Path < b.Entries[j].Path):
			d.Removed = append(d.Removed, a.Entries[i].Path)
			i++
		case i >= len(a.Entries) || b.Entries[j].Path < a.Entries[i].Path:
			d.Added = append(d.Added, b.Entries[j].Path)
			j++
		default:
			if a.Entries[i] != b.Entries[j] {
				d.Changed = append(d.Changed, a.Entries[i].Path)
			}
			i++
			j++
		}
	}
	return d
}

// explain fills in Explanations for changed regular files, at most
// lim.MaxItems of them.
func (d *Difference) explain(ctx context.Context, a, b *builder.Manifest, dirA, dirB string, lim Limits) error {
	lim = lim.withDefaults()
	byPath := func(m *builder.Manifest) map[string]builder.ManifestEntry {
		out := make(map[string]builder.ManifestEntry, len(m.Entries))
		for _, e := range m.Entries {
			out[e.Path] = e
		}
		return out
	}
	ea, eb := byPath(a), byPath(b)
	for _, p := range d.Changed {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(d.Explanations) >= lim.MaxItems {
			break
		}
		x, y := ea[p], eb[p]
		if x.Type != builder.TypeFile || y.Type != builder.TypeFile {
			d.Explanations = append(d.Explanations, metaOnly(p, x, y))
			continue
		}
		if x.SHA256 != "" && x.SHA256 == y.SHA256 {
			d.Explanations = append(d.Explanations, metaOnly(p, x, y))
			continue
		}
		e, err := ExplainFiles(p, filepath.Join(dirA, filepath.FromSlash(p)), filepath.Join(dirB, filepath.FromSlash(p)), lim)
		if err != nil {
			return fmt.Errorf("explaining %s: %w", p, err)
		}
		if x.Mode != y.Mode {
			e.note(lim, fmt.Sprintf("mode %s in A, %s in B", x.Mode, y.Mode))
		}
		d.Explanations = append(d.Explanations, e)
	}
	return nil
}

// metaOnly explains an entry whose content is the same (or is not a file)
// but whose type, mode or link target differs.
func metaOnly(p string, x, y builder.ManifestEntry) *Explanation {
	e := &Explanation{Path: p, Kind: KindBinary, SizeA: x.Size, SizeB: y.Size, FirstDiff: -1}
	lim := DefaultLimits
	if x.Type != y.Type {
		e.note(lim, fmt.Sprintf("a %s in A, a %s in B", x.Type, y.Type))
	}
	if x.Mode != y.Mode {
		e.note(lim, fmt.Sprintf("mode %s in A, %s in B (umask or chmod in the build?)", x.Mode, y.Mode))
	}
	if x.Target != y.Target {
		e.note(lim, fmt.Sprintf("symlink to %q in A, to %q in B", x.Target, y.Target))
	}
	if x.SHA256 != y.SHA256 && x.Type == builder.TypeFile {
		e.note(lim, "content differs")
	}
	return e
}

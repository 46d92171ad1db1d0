package reproduce

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
)

// explainELF names the sections that differ and, for Go binaries, the build
// information that differs: Go version, main module, dependencies and build
// settings (-ldflags, -trimpath, GOFLAGS, VCS stamps ...).
func explainELF(e *Explanation, a, b []byte, lim Limits) {
	fa, errA := elf.NewFile(bytes.NewReader(a))
	fb, errB := elf.NewFile(bytes.NewReader(b))
	if errA != nil || errB != nil {
		e.note(lim, fmt.Sprintf("cannot read the ELF file: A: %v, B: %v", errA, errB))
		return
	}
	defer fa.Close()
	defer fb.Close()
	explainBuildInfo(e, a, b, lim)

	sa, sb := sections(fa, lim), sections(fb, lim)
	sorted := unionKeys(sa, sb)
	for _, n := range sorted {
		x, inA := sa[n]
		y, inB := sb[n]
		switch {
		case !inA:
			e.note(lim, fmt.Sprintf("section %s only in B", n))
		case !inB:
			e.note(lim, fmt.Sprintf("section %s only in A", n))
		case x != y:
			hint := ""
			if n == ".note.go.buildid" {
				hint = " (the Go build ID; build with -ldflags=-buildid= or from identical inputs)"
			}
			e.note(lim, fmt.Sprintf("section %s differs: %d bytes in A, %d in B%s", n, x.size, y.size, hint))
		}
	}
}

type section struct {
	size uint64
	sum  [32]byte
}

// sections hashes each section's contents (bounded).
func sections(f *elf.File, lim Limits) map[string]section {
	out := map[string]section{}
	for i, s := range f.Sections {
		if i >= lim.MaxMembers {
			break
		}
		var sum [32]byte
		if s.Type != elf.SHT_NOBITS {
			h := sha256.New()
			if _, err := io.Copy(h, io.LimitReader(s.Open(), lim.MaxFileBytes)); err == nil {
				copy(sum[:], h.Sum(nil))
			}
		}
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		out[name] = section{size: s.Size, sum: sum}
	}
	return out
}

// explainBuildInfo compares the Go build information of two binaries.
func explainBuildInfo(e *Explanation, a, b []byte, lim Limits) {
	ia, errA := buildinfo.Read(bytes.NewReader(a))
	ib, errB := buildinfo.Read(bytes.NewReader(b))
	if errA != nil || errB != nil {
		return // not Go binaries
	}
	if ia.GoVersion != ib.GoVersion {
		e.note(lim, fmt.Sprintf("Go version: %s in A, %s in B (different toolchains)", ia.GoVersion, ib.GoVersion))
	}
	if ia.Path != ib.Path {
		e.note(lim, fmt.Sprintf("main package: %s in A, %s in B", ia.Path, ib.Path))
	}
	if ia.Main.Version != ib.Main.Version || ia.Main.Sum != ib.Main.Sum {
		e.note(lim, fmt.Sprintf("main module %s: %s %s in A, %s %s in B", ia.Main.Path, ia.Main.Version, ia.Main.Sum, ib.Main.Version, ib.Main.Sum))
	}
	depsA, depsB := map[string]string{}, map[string]string{}
	for _, d := range ia.Deps {
		depsA[d.Path] = d.Version + " " + d.Sum
	}
	for _, d := range ib.Deps {
		depsB[d.Path] = d.Version + " " + d.Sum
	}
	diffMaps(e, lim, "module", depsA, depsB)
	setA, setB := map[string]string{}, map[string]string{}
	for _, s := range ia.Settings {
		setA[s.Key] = s.Value
	}
	for _, s := range ib.Settings {
		setB[s.Key] = s.Value
	}
	diffMaps(e, lim, "build setting", setA, setB)
}

func diffMaps(e *Explanation, lim Limits, what string, a, b map[string]string) {
	sorted := unionKeys(a, b)
	for _, k := range sorted {
		x, inA := a[k]
		y, inB := b[k]
		switch {
		case !inA:
			e.note(lim, fmt.Sprintf("%s %s: only in B (%q)", what, k, y))
		case !inB:
			e.note(lim, fmt.Sprintf("%s %s: only in A (%q)", what, k, x))
		case x != y:
			e.note(lim, fmt.Sprintf("%s %s: %q in A, %q in B", what, k, x, y))
		}
	}
}

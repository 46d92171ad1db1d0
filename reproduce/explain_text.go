package reproduce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// maxTextDiffBytes bounds the text given to the diff algorithm.
const maxTextDiffBytes = 4 << 20

func explainText(e *Explanation, a, b []byte, lim Limits) {
	if len(a) > maxTextDiffBytes || len(b) > maxTextDiffBytes {
		e.note(lim, fmt.Sprintf("text larger than %d MiB: first difference at byte %d", maxTextDiffBytes>>20, e.FirstDiff))
		return
	}
	diff := udiff.Unified("A/"+e.Path, "B/"+e.Path, string(a), string(b))
	lines := strings.SplitAfter(diff, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // after the last newline
	}
	if len(lines) > lim.MaxDiffLines {
		lines = append(lines[:lim.MaxDiffLines], fmt.Sprintf("... diff cut at %d lines %s\n", lim.MaxDiffLines, raise("MaxDiffLines")))
	}
	e.Diff = strings.Join(lines, "")
	line := bytes.Count(a[:min(int64(len(a)), e.FirstDiff)], []byte{'\n'}) + 1
	e.note(lim, fmt.Sprintf("text differs from line %d", line))
}

func isJSON(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t)
}

// explainJSON names each key path whose value differs.
func explainJSON(e *Explanation, a, b []byte, lim Limits) {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		explainText(e, a, b, lim)
		return
	}
	var paths []string
	jsonDiff("", va, vb, &paths, lim.MaxItems+1)
	for _, p := range paths {
		e.note(lim, p)
	}
	if len(paths) == 0 {
		e.note(lim, "the same JSON value, written differently (key order, spacing or number format)")
	}
}

// jsonDiff appends a line per differing path, up to limit lines.
func jsonDiff(path string, a, b any, out *[]string, limit int) {
	if len(*out) >= limit {
		return
	}
	switch ta := a.(type) {
	case map[string]any:
		tb, ok := b.(map[string]any)
		if !ok {
			break
		}
		sorted := unionKeys(ta, tb)
		for _, k := range sorted {
			p := path + "." + k
			va, inA := ta[k]
			vb, inB := tb[k]
			switch {
			case !inA:
				*out = append(*out, fmt.Sprintf("%s: only in B (%s)", p, short(vb)))
			case !inB:
				*out = append(*out, fmt.Sprintf("%s: only in A (%s)", p, short(va)))
			default:
				jsonDiff(p, va, vb, out, limit)
			}
			if len(*out) >= limit {
				return
			}
		}
		return
	case []any:
		tb, ok := b.([]any)
		if !ok {
			break
		}
		for i := 0; i < max(len(ta), len(tb)); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(ta):
				*out = append(*out, fmt.Sprintf("%s: only in B (%s)", p, short(tb[i])))
			case i >= len(tb):
				*out = append(*out, fmt.Sprintf("%s: only in A (%s)", p, short(ta[i])))
			default:
				jsonDiff(p, ta[i], tb[i], out, limit)
			}
			if len(*out) >= limit {
				return
			}
		}
		return
	}
	if fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprintf("%T", a) != fmt.Sprintf("%T", b) {
		if path == "" {
			path = "."
		}
		*out = append(*out, fmt.Sprintf("%s: %s in A, %s in B", path, short(a), short(b)))
	}
}

// short renders a JSON value for a summary line, cut to 80 bytes.
func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

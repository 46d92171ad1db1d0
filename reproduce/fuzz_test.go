package reproduce

import (
	"strings"
	"testing"
	"time"
)

// FuzzExplain feeds arbitrary pairs of files to the explainers: they must
// not panic, must keep within their limits, and must find nothing to say
// about identical inputs.
func FuzzExplain(f *testing.F) {
	t := &testing.T{}
	tarA := tarOf(t, time.Unix(0, 0), "a", "1", "b.json", `{"x":1}`)
	tarB := tarOf(t, time.Unix(5, 0), "a", "2", "b.json", `{"x":2}`)
	f.Add(tarA, tarB)
	f.Add(gz(t, tarA, time.Unix(0, 0)), gz(t, tarB, time.Unix(1, 0)))
	f.Add([]byte(`{"a":[1,2,{"b":3}]}`), []byte(`{"a":[1,2,{"b":4}],"c":null}`))
	f.Add([]byte("one\ntwo\n"), []byte("one\nthree\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01"), []byte("\x7fELF\x02\x01\x01\x00"))
	f.Add([]byte("PK\x03\x04"), []byte("PK\x05\x06"))
	lim := Limits{MaxFileBytes: 1 << 20, MaxDiffLines: 30, MaxDepth: 3, MaxMembers: 1000, MaxItems: 10}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		e := Explain("f", a, b, lim)
		check(t, e, lim, 0)
		if same := Explain("f", a, a, lim); same.FirstDiff != -1 || len(same.Summary) != 0 || len(same.Members) != 0 || same.Diff != "" {
			t.Fatalf("identical inputs explained as different: %+v", same)
		}
	})
}

func check(t *testing.T, e *Explanation, lim Limits, depth int) {
	if depth > lim.MaxDepth {
		t.Fatalf("explained %d archives deep, limit %d", depth, lim.MaxDepth)
	}
	if len(e.Summary) > lim.MaxItems+1 || len(e.Members) > lim.MaxItems+1 {
		t.Fatalf("%d summary lines, %d members: over the limit %d", len(e.Summary), len(e.Members), lim.MaxItems)
	}
	if n := strings.Count(e.Diff, "\n"); n > lim.MaxDiffLines+1 {
		t.Fatalf("diff of %d lines, limit %d", n, lim.MaxDiffLines)
	}
	for _, m := range e.Members {
		check(t, m, lim, depth+1)
	}
}

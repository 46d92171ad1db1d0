package evidence

import (
	"bytes"
	"testing"
)

// FuzzParse: any report Parse accepts marshals to a canonical form that
// parses again to the same bytes.
func FuzzParse(f *testing.F) {
	seed, err := sample(false).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"apiVersion":"buildguard/v1","decision":"pass","violations":[],"images":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		a, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Parse(a)
		if err != nil {
			t.Fatalf("a report we wrote does not parse: %v\n%s", err, a)
		}
		b, err := r2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("not canonical:\n%s\n%s", a, b)
		}
	})
}

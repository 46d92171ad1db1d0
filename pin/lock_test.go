package pin

import "testing"

// TestParseLockRefusesTrailingData: a second closing brace or value after
// the lockfile must not be ignored.
func TestParseLockRefusesTrailingData(t *testing.T) {
	for _, in := range []string{
		`{"apiVersion":"buildguard/v1","images":[]}}`,
		`{"apiVersion":"buildguard/v1","images":[]} {}`,
	} {
		if _, err := ParseLock([]byte(in)); err == nil {
			t.Errorf("ParseLock(%q) succeeded", in)
		}
	}
}

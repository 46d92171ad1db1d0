package trust

import (
	"reflect"
	"strings"
	"testing"
)

// TestEveryLimitSaysHowToRaiseIt: each Limits field has a buildguard.yaml
// field and a flag for the refusals it causes to name.
func TestEveryLimitSaysHowToRaiseIt(t *testing.T) {
	typ := reflect.TypeFor[Limits]()
	for i := range typ.NumField() {
		f := typ.Field(i).Name
		if h := raise(f); !strings.Contains(h, "limits.") || !strings.Contains(h, "--max-") {
			t.Errorf("%s: %q names no field and flag", f, h)
		}
	}
}

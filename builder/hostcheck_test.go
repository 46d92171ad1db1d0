package builder

import (
	"runtime"
	"testing"
)

func TestCgroupModeAndLimitsUsableAreRunsDetection(t *testing.T) {
	m := detectCgroups()
	if got := CgroupMode(); got != m.String() {
		t.Errorf("CgroupMode() = %q, detectCgroups() = %q", got, m)
	}
	ok, why := LimitsUsable()
	wantOK, wantWhy := limitsUsable(m)
	if ok != wantOK || why != wantWhy {
		t.Errorf("LimitsUsable() = %v %q, limitsUsable = %v %q", ok, why, wantOK, wantWhy)
	}
}

func TestSeccompArchesExported(t *testing.T) {
	got, err := SeccompArches()
	want, werr := seccompArches(runtime.GOARCH)
	if (err == nil) != (werr == nil) || len(got) != len(want) {
		t.Fatalf("SeccompArches() = %v %v, seccompArches = %v %v", got, err, want, werr)
	}
	for i := range want {
		if got[i] != string(want[i]) {
			t.Errorf("arch %d: %s, want %s", i, got[i], want[i])
		}
	}
}

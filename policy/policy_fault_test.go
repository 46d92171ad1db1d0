package policy

import (
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
)

// TestKilledAndStoppedRuns proves that a run killed by a signal (status
// 137) and a run stopped before it exited (no status, -1, no builder
// recorded: another run failed first) are both build violations, the
// stopped one said plainly rather than as "exited -1" in an empty builder.
func TestKilledAndStoppedRuns(t *testing.T) {
	r := goodReport()
	r.Runs[0].ExitCode, r.Runs[0].Builder, r.Runs[0].Log = -1, "", "logs/run-1.log"
	r.Runs[1].ExitCode, r.Runs[1].Log = 137, "logs/run-2.log"
	got := decide(t, config.Policy{}, Input{Report: r})
	if got.Decision != evidence.Fail || strings.Join(rules(got), ",") != CheckBuild+","+CheckBuild {
		t.Fatalf("decision %s violations %v", got.Decision, got.Violations)
	}
	msgs := []string{got.Violations[0].Message, got.Violations[1].Message}
	if !strings.Contains(strings.Join(msgs, "\n"), "run 1 did not finish (see logs/run-1.log)") ||
		!strings.Contains(strings.Join(msgs, "\n"), "run 2 in "+builderDigest+" exited 137 (see logs/run-2.log)") {
		t.Errorf("messages %q", msgs)
	}
	for _, m := range msgs {
		if strings.Contains(m, "exited -1") || strings.Contains(m, " in  ") {
			t.Errorf("message %q", m)
		}
	}
}

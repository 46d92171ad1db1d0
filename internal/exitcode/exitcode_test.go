package exitcode

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type usageErr struct{}

func (usageErr) Error() string { return "bad flag" }
func (usageErr) ExitCode() int { return Usage }

func TestOf(t *testing.T) {
	plain := errors.New("connection refused")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil is pass", nil, Pass},
		{"unknown error fails closed", plain, Incomplete},
		{"typed usage error", usageErr{}, Usage},
		{"wrapped usage error", fmt.Errorf("loading config: %w", usageErr{}), Usage},
		{"explicit fail", Failf("2 references are not pinned"), Fail},
		{"explicit code wins over inner", WithCode(Fail, usageErr{}), Fail},
		{"context canceled", fmt.Errorf("resolving: %w", context.Canceled), Incomplete},
		{"deadline", context.DeadlineExceeded, Incomplete},
		{"joined: incomplete wins over fail", errors.Join(Failf("x"), WithCode(Incomplete, plain)), Incomplete},
		{"joined: fail wins over usage", errors.Join(usageErr{}, Failf("x")), Fail},
		{"joined: an uncoded member fails closed", errors.Join(usageErr{}, plain), Incomplete},
		{"joined usage only", errors.Join(usageErr{}, UsageErrorf("y")), Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestWithCodeNil(t *testing.T) {
	if err := WithCode(Fail, nil); err != nil {
		t.Fatalf("WithCode(nil) = %v, want nil", err)
	}
}

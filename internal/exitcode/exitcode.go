// Package exitcode maps errors to the process exit codes every buildguard
// command shares:
//
//	0  pass
//	1  a decision was made and it is fail (policy, verification, unpinned input)
//	2  usage or configuration error: nothing was attempted
//	3  the guard could not complete (registry down, runtime missing, timeout)
//
// Library packages do not import this package. An error says which class it
// belongs to by having a method ExitCode() int somewhere in its chain; an
// error that says nothing is treated as "could not complete" (3), so an
// unexpected failure can never read as a pass or as a plain fail.
package exitcode

import (
	"context"
	"errors"
	"fmt"
)

// The exit codes.
const (
	Pass       = 0
	Fail       = 1
	Usage      = 2
	Incomplete = 3
)

// coder is implemented by errors that know their exit code.
type coder interface {
	ExitCode() int
}

// Of returns the exit code for err: 0 for nil, the code of the first error in
// its chain (or tree, for joined errors) that names one, 3 otherwise. Among
// joined errors, 3 wins over 1 and 1 over 2, because an error that kept the
// guard from checking something must never be reported as less.
func Of(err error) int {
	if err == nil {
		return Pass
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Incomplete
	}
	code, found := walk(err)
	if !found {
		return Incomplete
	}
	return code
}

// walk finds the code of err, descending into wrapped and joined errors.
func walk(err error) (int, bool) {
	if c, ok := err.(coder); ok { //nolint:errorlint // the outermost coder decides for its chain
		return c.ExitCode(), true
	}
	switch u := err.(type) { //nolint:errorlint // walking the tree by hand
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			return walk(inner)
		}
	case interface{ Unwrap() []error }:
		best, found := 0, false
		for _, inner := range u.Unwrap() {
			if c, ok := walk(inner); ok {
				if !found || rank(c) > rank(best) {
					best = c
				}
				found = true
			} else {
				return Incomplete, true
			}
		}
		return best, found
	}
	return 0, false
}

// rank orders codes by severity: could-not-complete, then fail, then usage.
func rank(code int) int {
	switch code {
	case Incomplete:
		return 3
	case Fail:
		return 2
	case Usage:
		return 1
	}
	return 0
}

// Error carries an explicit exit code for an error.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode implements the coder contract.
func (e *Error) ExitCode() int { return e.Code }

// UsageErrorf returns a usage error (exit 2) formatted like fmt.Errorf.
func UsageErrorf(format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...)}
}

// Failf returns a fail decision (exit 1) formatted like fmt.Errorf.
func Failf(format string, args ...any) error {
	return &Error{Code: Fail, Err: fmt.Errorf(format, args...)}
}

// WithCode wraps err so that Of reports code for it. nil stays nil.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

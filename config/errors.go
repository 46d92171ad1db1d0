package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is matched by errors.Is for every error this package returns:
// an unreadable, malformed or invalid configuration.
var ErrInvalid = errors.New("invalid configuration")

// exitUsage is the exit code of a usage or configuration error (DESIGN.md,
// "Exit codes"): nothing was attempted.
const exitUsage = 2

// maxErrors bounds how many problems one Parse reports; the rest are
// summarised in a last error.
const maxErrors = 100

// Error is one problem in a configuration file, located by file, line and
// field path (such as "builder.limits.memory" or "reproduce.diverse[1].image").
// Unknown parts are zero and left out of the message.
type Error struct {
	File  string // the file as named to Load or Parse; empty if unknown
	Line  int    // 1-based line; 0 if unknown
	Field string // the full field path; empty for file-level problems
	Msg   string // what is wrong, lower case, without the location

	err error // an underlying cause (such as an I/O error), if any
}

// Error formats the problem as FILE:LINE: FIELD: MSG, leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid and the underlying cause, if any, so that
// errors.Is(err, ErrInvalid) and errors.Is(err, fs.ErrNotExist) both work.
func (e *Error) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalid, e.err}
	}
	return []error{ErrInvalid}
}

// ExitCode returns 2, the exit code of a configuration error.
func (e *Error) ExitCode() int { return exitUsage }

// Errors is every problem found in one configuration, sorted by line. Load,
// Parse and Validate return a non-empty Errors value or nil.
type Errors []*Error

// Error formats the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ExitCode returns 2, the exit code of a configuration error.
func (es Errors) ExitCode() int { return exitUsage }

// collector gathers problems of one file.
type collector struct {
	file string
	errs Errors
}

func (c *collector) add(line int, field, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// result sorts the problems by line (file-level ones, without a line, first),
// keeping the order of discovery within a line, and caps their number.
func (c *collector) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	es := slices.Clone(c.errs)
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if len(es) > maxErrors {
		more := len(es) - maxErrors
		es = append(es[:maxErrors:maxErrors], &Error{File: c.file, Msg: fmt.Sprintf("too many problems: %d more not shown", more)})
	}
	return es
}

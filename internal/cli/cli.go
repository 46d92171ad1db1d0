// Package cli is buildguard's command line: it parses flags (pflag),
// validates them, calls one library function per command and prints the
// result. It holds no logic a Go program could not get from the libraries.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/internal/exitcode"
)

// IO is where a command reads and writes.
type IO struct {
	Out io.Writer
	Err io.Writer
}

// command is one verb of the CLI.
type command struct {
	name     string
	summary  string
	usage    string // after "buildguard NAME "
	long     string
	examples string
	// flags registers the command's flags and returns the function that
	// runs it with the remaining arguments.
	setup func(fs *pflag.FlagSet) func(ctx context.Context, args []string, io IO) error
}

func commands() []*command {
	return []*command{buildCommand(), pinCommand(), verifyCommand(), diffCommand(), sbomCommand(), compareCommand(), rebuildCommand(), doctorCommand(), cleanCommand(), versionCommand()}
}

const exitCodes = `Exit codes:
  0  pass
  1  a check failed (a decision was made: fail)
  2  usage or configuration error (nothing was attempted)
  3  could not complete (registry down, runtime missing, timeout, ...)
`

// Run runs buildguard with args (without the program name).
func Run(ctx context.Context, args []string, io IO) error {
	if len(args) == 0 {
		rootUsage(io.Err)
		return exitcode.UsageErrorf("no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 {
			return Run(ctx, []string{args[1], "--help"}, io)
		}
		rootUsage(io.Out)
		return nil
	case "--version":
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], io)
		}
	}
	return exitcode.UsageErrorf("unknown command %q (run: buildguard --help)%s", args[0], suggest(args[0]))
}

func (c *command) run(ctx context.Context, args []string, io IO) error {
	fs := pflag.NewFlagSet("buildguard "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Err)
	fs.SortFlags = false
	runFn := c.setup(fs)
	fs.Usage = func() { c.printUsage(io.Out, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return exitcode.UsageErrorf("%v (run: buildguard %s --help)", err, c.name)
	}
	return runFn(ctx, fs.Args(), io)
}

func (c *command) printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: buildguard %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.long))
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	}
	if c.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.examples, "\n"))
	}
	fmt.Fprintf(w, "\n%s", exitCodes)
}

func rootUsage(w io.Writer) {
	fmt.Fprint(w, `buildguard stands between a build and its release: it pins and verifies the
builder images, builds hermetically, rebuilds with an independent builder and
refuses to publish what a compromised builder made.

Usage: buildguard <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'buildguard <command> --help' for a command's flags and examples.\n\n%s", exitCodes)
}

// suggest returns " (did you mean X?)" for a near miss of a command name.
func suggest(name string) string {
	var names []string
	for _, c := range commands() {
		if strings.HasPrefix(c.name, name) || strings.HasPrefix(name, c.name) {
			names = append(names, c.name)
		}
	}
	sort.Strings(names)
	if len(names) == 1 {
		return fmt.Sprintf("; did you mean %q?", names[0])
	}
	return ""
}

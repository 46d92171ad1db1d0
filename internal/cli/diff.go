package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/reproduce"
)

// DiffOptions are the flags of `buildguard diff`.
type DiffOptions struct {
	JSON       bool
	Quiet      bool
	MaxFiles   int
	DiffLines  int
	Diffoscope bool
	Timeout    time.Duration
	A, B       string
}

// Validate checks the arguments before anything is read.
func (o *DiffOptions) Validate() error {
	for _, d := range []string{o.A, o.B} {
		st, err := os.Stat(d)
		if err != nil {
			return exitcode.UsageErrorf("%v", err)
		}
		if !st.IsDir() {
			return exitcode.UsageErrorf("%s is not a directory: diff compares two trees", d)
		}
	}
	if o.MaxFiles < 1 || o.DiffLines < 1 {
		return exitcode.UsageErrorf("--max-files and --diff-lines must be at least 1")
	}
	if o.JSON && o.Quiet {
		return exitcode.UsageErrorf("--json and --quiet contradict each other")
	}
	if o.Timeout <= 0 {
		return exitcode.UsageErrorf("--diffoscope-timeout must be positive")
	}
	return nil
}

func diffCommand() *command {
	return &command{
		name:    "diff",
		summary: "explain how two output trees differ",
		usage:   "[--json] [--max-files N] DIR_A DIR_B",
		long: `Compare two trees (two builds' outputs) and explain every difference.

Both trees are hashed in parallel and their manifests compared (paths,
types, normalised permissions, contents, link targets); only files that
differ are opened. Each changed file is explained: its size and first
differing byte; for text a unified diff; for tar, gzip and zip (jar)
archives the differing members and metadata, recursively; for ELF and Go
binaries the differing sections and Go build information (module versions,
build settings such as -ldflags or -trimpath); for JSON the differing keys.

Exit 0 when the trees are identical, 1 when they differ.`,
		examples: `  buildguard diff .buildguard/run-1/out .buildguard/run-3/out
  buildguard diff --json build-a/ build-b/ > diff.json`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &DiffOptions{}
			fs.BoolVar(&o.JSON, "json", false, "print the difference as JSON")
			fs.BoolVarP(&o.Quiet, "quiet", "q", false, "print only the differing paths")
			fs.IntVar(&o.MaxFiles, "max-files", reproduce.DefaultLimits.MaxItems, "explain at most `N` changed files")
			fs.IntVar(&o.DiffLines, "diff-lines", reproduce.DefaultLimits.MaxDiffLines, "cap each unified diff at `N` lines")
			fs.BoolVar(&o.Diffoscope, "diffoscope", false, "when the trees differ, also run diffoscope (if installed) and attach its report")
			fs.DurationVar(&o.Timeout, "diffoscope-timeout", 5*time.Minute, "stop diffoscope after `D`")
			return func(ctx context.Context, args []string, io IO) error {
				if len(args) != 2 {
					return exitcode.UsageErrorf("diff takes two directories, got %d argument(s) (run: buildguard diff --help)", len(args))
				}
				o.A, o.B = args[0], args[1]
				if err := o.Validate(); err != nil {
					return err
				}
				return runDiff(ctx, o, io)
			}
		},
	}
}

func runDiff(ctx context.Context, o *DiffOptions, io IO) error {
	d, err := reproduce.Diff(ctx, o.A, o.B, reproduce.Limits{MaxItems: o.MaxFiles, MaxDiffLines: o.DiffLines})
	if err != nil {
		return err
	}
	if o.Diffoscope && !d.Same() {
		if d.Diffoscope, err = reproduce.Diffoscope(ctx, o.A, o.B, o.Timeout); err != nil {
			return exitcode.WithCode(exitcode.Incomplete, err)
		}
	}
	switch {
	case o.JSON:
		if err := writeJSON(io.Out, d); err != nil {
			return err
		}
	case o.Quiet:
		for _, p := range d.Files() {
			fmt.Fprintln(io.Out, p)
		}
	default:
		printDifference(io.Out, d)
		if d.Diffoscope != "" {
			fmt.Fprintf(io.Out, "\ndiffoscope:\n%s", d.Diffoscope)
		}
	}
	if d.Same() {
		if !o.JSON && !o.Quiet {
			fmt.Fprintln(io.Err, "the trees are identical")
		}
		return nil
	}
	return exitcode.Failf("the trees differ: %d changed, %d only in %s, %d only in %s", len(d.Changed), len(d.Removed), o.A, len(d.Added), o.B)
}

// printDifference writes a difference for a person.
func printDifference(w io.Writer, d *reproduce.Difference) {
	for _, p := range d.Removed {
		fmt.Fprintf(w, "only in A: %s\n", p)
	}
	for _, p := range d.Added {
		fmt.Fprintf(w, "only in B: %s\n", p)
	}
	explained := map[string]*reproduce.Explanation{}
	for _, e := range d.Explanations {
		explained[e.Path] = e
	}
	for _, p := range d.Changed {
		fmt.Fprintf(w, "changed: %s\n", p)
		if e, ok := explained[p]; ok {
			printExplanation(w, e, "  ")
		}
	}
}

func printExplanation(w io.Writer, e *reproduce.Explanation, indent string) {
	fmt.Fprintf(w, "%s%s, %d bytes in A, %d in B", indent, e.Kind, e.SizeA, e.SizeB)
	if e.FirstDiff >= 0 {
		fmt.Fprintf(w, ", first difference at byte %d", e.FirstDiff)
	}
	fmt.Fprintln(w)
	for _, s := range e.Summary {
		fmt.Fprintf(w, "%s- %s\n", indent, s)
	}
	if e.Diff != "" {
		for _, l := range strings.Split(strings.TrimRight(e.Diff, "\n"), "\n") {
			fmt.Fprintf(w, "%s  %s\n", indent, l)
		}
	}
	for _, m := range e.Members {
		fmt.Fprintf(w, "%smember %s:\n", indent, m.Path)
		printExplanation(w, m, indent+"  ")
	}
}

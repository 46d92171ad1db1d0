package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/compare"
	"github.com/buildguard/buildguard/guard"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
)

// CompareOptions are the flags of `buildguard compare`.
type CompareOptions struct {
	// Keys are PEM public key files, one or more keys each: the trusted
	// runners.
	Keys []string
	// Threshold is how many distinct signers must agree; 0 means all the
	// attestations given.
	Threshold int
	// Expect, when set, is the output digest they must agree on.
	Expect string
	JSON   bool
}

// Validate rejects bad flags before anything is read.
func (o *CompareOptions) Validate(args []string) error {
	if len(args) == 0 {
		return exitcode.UsageErrorf("no attestation given: name each runner's build-result.sigstore.json (run: buildguard compare --help)")
	}
	if len(o.Keys) == 0 {
		return exitcode.UsageErrorf("no --key given: compare trusts only the runners' public keys (--key runner-a.pub --key runner-b.pub ...)")
	}
	if o.Threshold < 0 || o.Threshold > len(args) {
		return exitcode.UsageErrorf("--threshold %d: want 1 to %d, the number of attestations given (default: all of them)", o.Threshold, len(args))
	}
	return nil
}

func compareCommand() *command {
	return &command{
		name:    "compare",
		summary: "k-of-n agreement of signed build results from independent rebuilders",
		usage:   "--key FILE... [--threshold K] [--expect DIGEST] [--json] ATTESTATION...",
		long: `Check that independent rebuilders built the same output.

Each ATTESTATION is one runner's signed build result, the
build-result.sigstore.json that 'buildguard build --attest-only
--signing-key KEY' writes into its evidence directory. Each is verified
(Sigstore bundle, DSSE, with sigstore-go) against the trusted public keys
given with --key, one runner's key each. Key-signed build results carry no
transparency-log entry and none is required: the trust is in the keys.

An attestation does not count, with its own reason, when its signature
does not verify (bad-signature), its key is not trusted (untrusted-key), it
is not a build result (wrong-predicate-type), it is malformed, its runner
built no output or decided fail itself (not-passed), or its signer already
counted (duplicate-signer; one that signed two different outputs counts for
none). Every counted attestation must describe the same recipe (source
digest, builder digest, command, workdir, env, SOURCE_DATE_EPOCH): one that
does not is named, and there is no agreement.

The verdict is agreement when at least --threshold distinct signers
(default: every attestation given, n-of-n) attest one output digest, and
it is the --expect digest when one is given (e.g. the local build's
outputDigest in report.json). The agreed digest goes to standard output,
who agreed and each runner's digest to standard error; --json prints the
result (byte-identical for the same inputs) instead. See
docs/rebuilders.md for what agreement proves and what it does not.`,
		examples: `  # three runners, each with its own key; two must agree
  buildguard compare --threshold 2 --key runner-a.pub --key runner-b.pub --key runner-c.pub \
    a/build-result.sigstore.json b/build-result.sigstore.json c/build-result.sigstore.json

  # every runner must agree, on the digest this job built
  buildguard compare --key runner-a.pub --key runner-b.pub \
    --expect "$(jq -r '.runs[0].outputDigest' .buildguard/report.json)" a.sigstore.json b.sigstore.json

  # for a machine
  buildguard compare --json --key runner-a.pub --key runner-b.pub a.sigstore.json b.sigstore.json`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &CompareOptions{}
			fs.StringArrayVar(&o.Keys, "key", nil, "trust the runner's PEM public key(s) in `FILE` (repeatable)")
			fs.IntVar(&o.Threshold, "threshold", 0, "`K` distinct signers must agree (default: all attestations given)")
			fs.StringVar(&o.Expect, "expect", "", "the agreed output must be `DIGEST` (sha256:<hex>)")
			fs.BoolVar(&o.JSON, "json", false, "print the result as JSON on standard output")
			return func(_ context.Context, args []string, io IO) error {
				if err := o.Validate(args); err != nil {
					return err
				}
				return runCompare(o, args, io)
			}
		},
	}
}

func runCompare(o *CompareOptions, args []string, io IO) error {
	keys, err := loadRebuilderKeys("--key", o.Keys)
	if err != nil {
		return err
	}
	inputs, err := readInputs("attestation", args)
	if err != nil {
		return err
	}
	res, err := compare.Compare(inputs, compare.Options{Keys: keys, Threshold: o.Threshold, Expect: o.Expect})
	if err != nil {
		return err
	}
	if o.JSON {
		data, err := res.Marshal()
		if err != nil {
			return err
		}
		if _, err := io.Out.Write(data); err != nil {
			return err
		}
	} else {
		printCompare(io, res)
	}
	if !res.Agreed {
		return exitcode.Failf("no agreement: at least %d distinct trusted signer(s) must attest one output, of one recipe", res.Threshold)
	}
	return nil
}

// printCompare prints the agreed digest on standard output and the rest on
// standard error.
func printCompare(io IO, res *compare.Result) {
	w := io.Err
	if res.Agreed {
		fmt.Fprintf(w, "AGREED: %d distinct signer(s) attest %s (threshold %d of %d)\n", len(res.AgreedBy), res.OutputDigest, res.Threshold, res.Given)
		for _, s := range res.AgreedBy {
			fmt.Fprintf(w, "  agreed: %s\n", s)
		}
	} else {
		fmt.Fprintf(w, "DISAGREED: no output is attested by %d distinct signer(s) of %d\n", res.Threshold, res.Given)
		for _, p := range res.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	if res.RecipeDigest != "" {
		fmt.Fprintf(w, "recipe: %s\n", res.RecipeDigest)
	}
	fmt.Fprintln(w, "runners:")
	for _, r := range res.Runners {
		switch {
		case r.Counted:
			fmt.Fprintf(w, "  %s: %s, signed by %s\n", r.Name, r.OutputDigest, r.Signer)
		case r.OutputDigest != "":
			fmt.Fprintf(w, "  %s: %s, not counted: %s\n", r.Name, r.OutputDigest, r.Refusal)
		default:
			fmt.Fprintf(w, "  %s: refused: %s\n", r.Name, r.Refusal)
		}
	}
	fmt.Fprintln(w, "note: key-signed build results carry no transparency-log entry; none was required")
	if res.Agreed {
		fmt.Fprintln(io.Out, res.OutputDigest)
	}
}

// RebuildersOptions are the flags of `buildguard build` that gate the
// publish on independent rebuilders.
type RebuildersOptions struct {
	// Files are signed build results, or glob patterns naming them.
	Files []string
	// Threshold is how many distinct rebuilders must agree; 0 means all.
	Threshold int
	// Keys are the rebuilders' PEM public key files.
	Keys []string
}

// AddFlags registers the rebuilders flags.
func (o *RebuildersOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Files, "rebuilders", nil, "publish only if the rebuilders' signed build results in `FILE` (or glob pattern; repeatable) agree with this build's output")
	fs.IntVar(&o.Threshold, "rebuilders-threshold", 0, "`K` distinct rebuilders must agree (default: all given)")
	fs.StringArrayVar(&o.Keys, "rebuilder-key", nil, "trust the rebuilder's PEM public key(s) in `FILE` (repeatable)")
}

// Validate rejects rebuilders flags that cannot apply.
func (o *RebuildersOptions) Validate(attestOnly bool) error {
	if len(o.Files) == 0 {
		if o.Threshold != 0 || len(o.Keys) > 0 {
			return exitcode.UsageErrorf("--rebuilders-threshold and --rebuilder-key need --rebuilders FILE")
		}
		return nil
	}
	if attestOnly {
		return exitcode.UsageErrorf("--rebuilders gates a publish, and --attest-only never publishes: a rebuilder must not depend on the others")
	}
	if len(o.Keys) == 0 {
		return exitcode.UsageErrorf("--rebuilders needs the rebuilders' public keys (--rebuilder-key runner-a.pub --rebuilder-key runner-b.pub ...)")
	}
	if o.Threshold < 0 {
		return exitcode.UsageErrorf("--rebuilders-threshold must be 1 or more (0: all given)")
	}
	return nil
}

// Load reads the rebuilders' keys and signed build results; nil without
// --rebuilders.
func (o *RebuildersOptions) Load() (*guard.Rebuilders, error) {
	if len(o.Files) == 0 {
		return nil, nil
	}
	keys, err := loadRebuilderKeys("--rebuilder-key", o.Keys)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range o.Files {
		m, err := filepath.Glob(f)
		if err != nil {
			return nil, exitcode.UsageErrorf("--rebuilders %q: %v", f, err)
		}
		if len(m) == 0 {
			return nil, exitcode.UsageErrorf("--rebuilders %q: no such file (did every rebuilder upload its build-result.sigstore.json?)", f)
		}
		paths = append(paths, m...)
	}
	inputs, err := readInputs("--rebuilders", paths)
	if err != nil {
		return nil, err
	}
	r := &guard.Rebuilders{Inputs: inputs, Options: compare.Options{Keys: keys, Threshold: o.Threshold}}
	if _, err := r.Options.Validate(len(inputs)); err != nil {
		return nil, exitcode.UsageErrorf("--rebuilders: %v", err)
	}
	return r, nil
}

func loadRebuilderKeys(flag string, files []string) ([]compare.Key, error) {
	var keys []compare.Key
	for _, f := range files {
		ks, err := trust.LoadKeyFile(f)
		if err != nil {
			return nil, exitcode.UsageErrorf("%s %s: %v", flag, f, err)
		}
		for _, k := range ks {
			keys = append(keys, compare.Key{Name: f, Key: k})
		}
	}
	return keys, nil
}

func readInputs(what string, paths []string) ([]compare.Input, error) {
	inputs := make([]compare.Input, 0, len(paths))
	for _, p := range paths {
		in, err := compare.ReadInput(p)
		if err != nil {
			return nil, exitcode.UsageErrorf("%s %s: %v", what, p, err)
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/sbom"
)

// SBOMOptions are the flags of `buildguard sbom`.
type SBOMOptions struct {
	// Target is a directory or IMAGE@DIGEST.
	Target string
	// Format is spdx-json or cyclonedx-json.
	Format string
	// Output is the file to write; empty: standard output.
	Output string
	// SourceDateEpoch is --source-date-epoch as given; empty: EnvEpoch.
	SourceDateEpoch string
	// EnvEpoch is $SOURCE_DATE_EPOCH; empty: 0.
	EnvEpoch string
	// Name is what the document calls the target; empty: the directory's
	// base name, or the image's repository.
	Name string
	// Platform chooses an image from an image index.
	Platform string
	// Quiet leaves out the line saying what -o wrote.
	Quiet bool
	// Limits holds --max-sbom-image-bytes.
	Limits LimitOptions

	target sbom.Target
	format sbom.Format
	epoch  int64
}

// Validate rejects missing or contradictory flags before anything is read.
func (o *SBOMOptions) Validate() error {
	f, err := sbom.ParseFormat(o.Format)
	if err != nil {
		return exitcode.UsageErrorf("--format %q: want spdx-json or cyclonedx-json", o.Format)
	}
	o.format = f
	epoch, origin := o.SourceDateEpoch, "--source-date-epoch"
	if epoch == "" {
		epoch, origin = o.EnvEpoch, "$SOURCE_DATE_EPOCH"
	}
	o.epoch = 0
	if epoch != "" {
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || n < 0 {
			return exitcode.UsageErrorf("%s %q: want whole seconds since 1970-01-01 UTC, not negative", origin, epoch)
		}
		o.epoch = n
	}
	if o.Platform != "" {
		p, err := v1.ParsePlatform(o.Platform)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return exitcode.UsageErrorf("--platform %q: want OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64", o.Platform)
		}
	}
	if o.Output != "" {
		// atomicfile renames over the target: never over a device or a directory
		if st, err := os.Stat(o.Output); err == nil && !st.Mode().IsRegular() {
			return exitcode.UsageErrorf("-o %s: not a regular file (leave -o out to write to standard output)", o.Output)
		}
	}
	t, err := sbom.ParseTarget(o.Target)
	if err != nil {
		return err
	}
	if t.Image == nil && o.Platform != "" {
		return exitcode.UsageErrorf("--platform chooses an image from an index; %s is a directory", o.Target)
	}
	o.target = t
	return nil
}

func sbomCommand() *command {
	return &command{
		name:    "sbom",
		summary: "write a deterministic SBOM (SPDX or CycloneDX) of a directory or an image",
		usage:   "PATH|IMAGE@DIGEST [--format spdx-json|cyclonedx-json] [-o FILE] [--source-date-epoch N]",
		long: `Describe a directory (a build's output) or an image named by digest as a
software bill of materials, made by syft v1.57.1 with the syft CLI's defaults:
every package syft finds (for a Go binary, every module with its version and
a pkg:golang purl) and the files they own with their checksums.

The document is deterministic: the same input and the same source date epoch
give byte-identical output, wherever the directory lives. Its creation time
is the source date epoch (--source-date-epoch, else $SOURCE_DATE_EPOCH, else
0); the SPDX namespace and the CycloneDX serial number are derived from the
document's content; the directory is named by its base name (or --name),
never by its path.

An image must be named by digest (REGISTRY/REPO@sha256:...; buildguard pin
finds it); a reference by tag is refused. Credentials come from the Docker
config and credential helpers. For an image index, --platform chooses the
image unless the index holds only one.

The document goes to standard output, or with -o to FILE, replaced
atomically.`,
		examples: `  # SPDX 2.3 JSON of a build's output, to standard output
  buildguard sbom ./dist

  # CycloneDX 1.6 JSON into a file, dated from the last commit
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) buildguard sbom ./dist --format cyclonedx-json -o sbom.cdx.json

  # an image by digest, one platform of an index
  buildguard sbom registry.example/app@sha256:4f... --platform linux/arm64 -o app.spdx.json`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &SBOMOptions{}
			fs.StringVar(&o.Format, "format", string(sbom.SPDXJSON), "document `FORMAT`: spdx-json (SPDX 2.3) or cyclonedx-json (CycloneDX 1.6)")
			fs.StringVarP(&o.Output, "output", "o", "", "write the document to `FILE` (atomically) instead of standard output")
			fs.StringVar(&o.SourceDateEpoch, "source-date-epoch", "", "creation time, `N` seconds since the epoch (default $SOURCE_DATE_EPOCH, else 0)")
			fs.StringVar(&o.Name, "name", "", "`NAME` the document gives the target (default: the directory's base name, or the image's repository)")
			fs.StringVar(&o.Platform, "platform", "", "the image of an index to describe (`OS/ARCH`[/VARIANT])")
			fs.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing but the document and errors")
			o.Limits.AddFlags(fs, SBOMLimits)
			return func(ctx context.Context, args []string, io IO) error {
				if len(args) != 1 {
					return exitcode.UsageErrorf("name one directory or IMAGE@DIGEST, got %d argument(s) (run: buildguard sbom --help)", len(args))
				}
				o.Target = args[0]
				o.EnvEpoch = os.Getenv("SOURCE_DATE_EPOCH")
				if err := o.Validate(); err != nil {
					return err
				}
				return runSBOM(ctx, o, io)
			}
		},
	}
}

func runSBOM(ctx context.Context, o *SBOMOptions, io IO) error {
	name := o.Name
	if name == "" && o.target.Image == nil {
		abs, err := filepath.Abs(o.target.Dir)
		if err != nil {
			return fmt.Errorf("reading %s: %w", o.target.Dir, err)
		}
		name = filepath.Base(abs)
	}
	res, err := sbom.Generate(ctx, o.Target, sbom.Options{
		SourceDateEpoch: o.epoch,
		Name:            name,
		Formats:         []sbom.Format{o.format},
		Platform:        o.Platform,
		MaxImageBytes:   o.Limits.SBOMImageBytes(),
	})
	if err != nil {
		return err
	}
	doc := res.Documents[o.format]
	if o.Output == "" {
		_, err := io.Out.Write(doc)
		return err
	}
	if err := atomicfile.Write(o.Output, doc, 0o644); err != nil {
		return err
	}
	if !o.Quiet {
		fmt.Fprintf(io.Err, "wrote %s (%s, %d packages)\n", o.Output, o.format, len(res.Packages))
	}
	return nil
}

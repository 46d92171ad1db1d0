package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/internal/rootless"
)

// CleanOptions are the flags of `buildguard clean`.
type CleanOptions struct {
	Cache string
	Args  []string
}

// Validate checks the arguments before anything is removed.
func (o *CleanOptions) Validate() error {
	if len(o.Args) > 0 {
		return usageArgs("clean", o.Args)
	}
	return nil
}

func cleanCommand() *command {
	return &command{
		name:    "clean",
		summary: "remove the rootfs and dependency caches",
		usage:   "[--cache DIR]",
		long: `Remove the caches a guarded build keeps: the unpacked builder images (the
rootfs cache) and the fetched dependencies beside it. The next build
fetches and unpacks again.

An unprivileged user's rootfs cache holds files that belong to its
subordinate ids (each image is unpacked with its owners kept), which the
user cannot remove with rm; buildguard clean removes them from inside the
same user namespace its builds run in. Run it when no build is running.`,
		examples: `  buildguard clean
  buildguard clean --cache /var/cache/buildguard`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &CleanOptions{}
			fs.StringVar(&o.Cache, "cache", "", "rootfs cache `DIR`, as given to build (default $XDG_CACHE_HOME/buildguard/rootfs)")
			return func(ctx context.Context, args []string, io IO) error {
				o.Args = args
				if err := o.Validate(); err != nil {
					return err
				}
				if done, err := rootless.Enter(ctx); done {
					return err
				}
				return runClean(o, io)
			}
		},
	}
}

func runClean(o *CleanOptions, io IO) error {
	dir := o.Cache
	if dir == "" {
		var err error
		if dir, err = builder.DefaultDir(); err != nil {
			return err
		}
	}
	if err := (&builder.Cache{Dir: dir}).Remove(); err != nil {
		return err
	}
	deps := builder.DependencyCacheDir(dir, o.Cache != "")
	if err := os.RemoveAll(deps); err != nil {
		return fmt.Errorf("removing the dependency cache %s: %w", deps, err)
	}
	fmt.Fprintf(io.Out, "removed %s and %s\n", dir, deps)
	return nil
}

package guard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/deps"
	"github.com/buildguard/buildguard/evidence"
)

// StagePrefetch fetches the declared dependencies and checks them against
// the source's lockfiles, before any build.
const StagePrefetch = "prefetch"

// NotBuiltDepsNote is the report's note when a dependency was refused, so
// that no build ran.
const NotBuiltDepsNote = "nothing was built: a dependency is not what its lockfile pins (or has no hash there), and nothing reaches a build unless its hash is pinned"

// prefetch fetches every declared dependency (deps.Prefetch) and records
// each in the report; the build's mounts and environment are kept for
// build. A mismatch is recorded, not returned: the policy decides (an
// unwaivable fail). A registry that fails or a limit passed is returned:
// the guard could not complete.
func (g *run) prefetch(ctx context.Context) error {
	cfg := g.cfg
	if len(cfg.Dependencies) == 0 {
		return nil
	}
	dir, err := g.depsCacheDir()
	if err != nil {
		return err
	}
	specs := make([]deps.Spec, len(cfg.Dependencies))
	for i, d := range cfg.Dependencies {
		specs[i] = deps.Spec{Type: string(d.Type), Dir: d.Path.Resolved, Path: d.Path.Text, URL: d.URL, SHA256: d.SHA256, Dest: d.Dest}
	}
	res, err := deps.Prefetch(ctx, specs, deps.Options{
		CacheDir: dir, Environ: g.opts.Environ, MaxBytes: int64(cfg.Limits.DependencyBytes),
		MaxCount: toInt(cfg.Limits.Dependencies), Concurrency: g.opts.Jobs * 4,
	})
	var mismatches []*deps.MismatchError
	if err != nil {
		mismatches = mismatchesOf(err)
		if len(mismatches) == 0 || res == nil {
			if ns := builder.NoSpace(err, dir, "the dependency cache", "XDG_CACHE_HOME (or pass --cache DIR)"); ns != nil {
				err = ns
			}
			return fmt.Errorf("prefetching the dependencies: %w", err)
		}
	}
	g.deps = res
	g.report.Dependencies = append(g.report.Dependencies, res.Dependencies...)
	for _, m := range mismatches {
		mm := &evidence.DependencyMismatch{What: m.What, Algorithm: m.Algorithm, Want: m.Want, Got: m.Got}
		i := slices.IndexFunc(g.report.Dependencies, func(d evidence.Dependency) bool {
			return d.Type == m.Dep.Type && d.Name == m.Dep.Name && d.Version == m.Dep.Version && d.Mismatch == nil
		})
		if i < 0 {
			g.report.Dependencies = append(g.report.Dependencies, m.Dep)
			i = len(g.report.Dependencies) - 1
		}
		g.report.Dependencies[i].Mismatch = mm
	}
	slices.SortStableFunc(g.report.Dependencies, func(a, b evidence.Dependency) int {
		for _, c := range [][2]string{{a.Type, b.Type}, {a.Name, b.Name}, {a.Version, b.Version}, {a.Source, b.Source}} {
			if c[0] != c[1] {
				if c[0] < c[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	return nil
}

// mismatchesOf returns the *deps.MismatchError of err (one, or joined),
// or nil when err holds anything else too.
func mismatchesOf(err error) []*deps.MismatchError {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // Prefetch joins its mismatches at the top
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*deps.MismatchError
	for _, e := range errs {
		var m *deps.MismatchError
		if !errors.As(e, &m) {
			return nil
		}
		out = append(out, m)
	}
	return out
}

// depsCacheDir is where fetched dependencies are kept: beside the rootfs
// cache (builder.DependencyCacheDir).
func (g *run) depsCacheDir() (string, error) {
	if g.opts.CacheDir != "" {
		return builder.DependencyCacheDir(g.opts.CacheDir, true), nil
	}
	d, err := builder.DefaultDir()
	if err != nil {
		return "", fmt.Errorf("the dependency cache: %w", err)
	}
	return builder.DependencyCacheDir(d, false), nil
}

// withDependencies gives the build step the prepared dependencies: their
// mounts and the environment that makes the ordinary command work offline.
func (g *run) withDependencies(s builder.Step) builder.Step {
	if g.deps == nil {
		return s
	}
	env := maps.Clone(s.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, g.deps.Env)
	s.Env = env
	for _, m := range g.deps.Mounts {
		s.Inputs = append(s.Inputs, builder.Input{Source: m.Source, Destination: m.Destination, Writable: m.CopyOnWrite})
	}
	return s
}

// dependencyDescriptors are the report's dependencies as the provenance's
// resolvedDependencies.
func dependencyDescriptors(ds []evidence.Dependency) []attest.ResourceDescriptor {
	out := make([]attest.ResourceDescriptor, 0, len(ds))
	for _, d := range ds {
		rd := attest.ResourceDescriptor{Name: d.Name, URI: d.PURL, Digest: maps.Clone(d.Digest)}
		ann := map[string]any{"buildguard.dependencyType": d.Type, "buildguard.lockfile": d.Source}
		if !d.Pinned {
			ann["buildguard.pinned"] = false
		}
		if d.Weak {
			ann["buildguard.weak"] = true
		}
		rd.Annotations = ann
		out = append(out, rd)
	}
	return out
}

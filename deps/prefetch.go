package deps

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"golang.org/x/sync/errgroup"
)

// Prefetch reads every spec's lockfile, refuses more than o.MaxCount
// dependencies, fetches what the cache lacks (o.Concurrency at a time),
// verifies every byte against its lockfile hash before it is cached or
// laid out, and returns the views to mount and the environment that make
// the build's own command work offline.
//
// Every mismatch is collected: the error is then errors.Join of each
// *MismatchError, and the Result still names every dependency (with the
// digests of the bytes fetched) but holds no Mounts and no Env, since
// nothing may be built from them. A *FetchError, *LimitError or an
// ErrConfig error stops it with a nil Result.
//
// For Go, one Dependency is returned per module version go.sum names; one
// pinned only by its go.mod line has Digest {"sha256" (of the go.mod),
// "goModDirHash"} and no "dirHash", since no code of it is built. For npm,
// see planNPM; for a file, planFile.
func Prefetch(ctx context.Context, specs []Spec, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &plan{}
	if err := p.read(specs, parseEnviron(o.Environ)); err != nil {
		return nil, err
	}
	if n := len(p.mods) + len(p.npm) + len(p.files); n > o.MaxCount {
		return nil, &LimitError{Limit: "dependencies", Flag: "--max-dependencies", Max: int64(o.MaxCount), What: fmt.Sprintf("%d dependencies", n)}
	}
	c, err := openCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	f := newFetcher(o)
	arts := p.artifacts()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, a := range arts {
		g.Go(func() error { return a.ensure(gctx, c, f) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	res := &Result{Fetched: int(f.requests.Load())}
	var mismatches []error
	for _, a := range arts {
		if a.mismatch != nil {
			mismatches = append(mismatches, a.mismatch)
		}
	}
	res.Dependencies, res.Cached = p.dependencies()
	if len(mismatches) > 0 {
		return res, errors.Join(mismatches...)
	}
	if err := p.layout(c, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxBytes < 0 || o.MaxCount < 0 || o.Concurrency < 0 || o.Timeout < 0 {
		return o, fmt.Errorf("options: %w: negative bound", ErrConfig)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxCount == 0 {
		o.MaxCount = DefaultMaxCount
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o, nil
}

// plan is every dependency the specs name, before anything is fetched.
type plan struct {
	mods     []*goModule
	npm      []*npmPackage
	files    []*fileDep
	registry string // the npm registry, when there are npm specs
	// goSpecs, npmSpecs: a spec of the type was given, so its view and
	// environment are laid out even when its lockfile pins nothing (the
	// build must not reach for the network either way).
	goSpecs, npmSpecs bool
}

func (p *plan) read(specs []Spec, env environ) error {
	var proxies []proxy
	dests := map[string]bool{}
	for _, s := range specs {
		if s.Type == TypeGoMod || s.Type == TypeNPM {
			if !filepath.IsAbs(s.Dir) {
				return fmt.Errorf("%s %s: dir %q: %w: not an absolute path", s.Type, s.Path, s.Dir, ErrConfig)
			}
		}
		switch s.Type {
		case TypeGoMod:
			if proxies == nil {
				var err error
				if proxies, err = goProxies(env); err != nil {
					return err
				}
			}
			mods, err := planGoMod(s, proxies)
			if err != nil {
				return err
			}
			p.mods = append(p.mods, mods...)
			p.goSpecs = true
		case TypeNPM:
			if p.registry == "" {
				var err error
				if p.registry, err = npmRegistry(env); err != nil {
					return err
				}
			}
			pkgs, err := planNPM(s, p.registry)
			if err != nil {
				return err
			}
			p.npm = append(p.npm, pkgs...)
			p.npmSpecs = true
		case TypeFile:
			fd, err := planFile(s)
			if err != nil {
				return err
			}
			if dests[fd.dest] {
				return fmt.Errorf("file dest %q: %w: named twice", fd.dest, ErrConfig)
			}
			dests[fd.dest] = true
			p.files = append(p.files, fd)
		default:
			return fmt.Errorf("dependency type %q: %w: want %s, %s or %s", s.Type, ErrConfig, TypeGoMod, TypeNPM, TypeFile)
		}
	}
	return nil
}

// artifacts returns each distinct artifact once, in plan order, and makes
// every dependency that names the same bytes share it.
func (p *plan) artifacts() []*artifact {
	seen := map[string]*artifact{}
	var out []*artifact
	one := func(a **artifact) {
		if *a == nil {
			return
		}
		k := (*a).what + "\x00" + (*a).urls[0].url + "\x00" + (*a).pin.text
		if s, ok := seen[k]; ok {
			*a = s
			return
		}
		seen[k] = *a
		out = append(out, *a)
	}
	for _, m := range p.mods {
		one(&m.zip)
		one(&m.mod)
	}
	for _, n := range p.npm {
		one(&n.a)
	}
	for _, f := range p.files {
		one(&f.a)
	}
	return out
}

// dependencies returns every dependency with its digests, sorted, and how
// many were served entirely from the cache.
func (p *plan) dependencies() ([]Dependency, int) {
	var deps []Dependency
	cached := 0
	for _, m := range p.mods {
		m.digest()
		deps = append(deps, m.dep)
		if (m.zip == nil || m.zip.cached) && (m.mod == nil || m.mod.cached) {
			cached++
		}
	}
	for _, n := range p.npm {
		n.digest()
		deps = append(deps, n.dep)
		if n.a.cached {
			cached++
		}
	}
	for _, f := range p.files {
		f.dep.Digest = map[string]string{"sha256": hex.EncodeToString(f.a.sums["sha256"])}
		deps = append(deps, f.dep)
		if f.a.cached {
			cached++
		}
	}
	sort.SliceStable(deps, func(i, j int) bool {
		a, b := deps[i], deps[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Source < b.Source
	})
	return deps, cached
}

// layout makes the views and sets res.Mounts and res.Env.
func (p *plan) layout(c *cache, res *Result) error {
	res.Env = map[string]string{}
	if p.goSpecs {
		files, err := goProxyView(p.mods)
		if err != nil {
			return fmt.Errorf("module proxy view: %w", err)
		}
		dir, err := c.view(TypeGoMod, files)
		if err != nil {
			return err
		}
		res.Mounts = append(res.Mounts, Mount{Source: dir, Destination: GoProxyDir})
		for k, v := range goEnv() {
			res.Env[k] = v
		}
	}
	if p.npmSpecs {
		files, err := npmCacheView(p.npm, p.registry)
		if err != nil {
			return fmt.Errorf("npm cache view: %w", err)
		}
		dir, err := c.view(TypeNPM, files)
		if err != nil {
			return err
		}
		res.Mounts = append(res.Mounts, Mount{Source: dir, Destination: NPMCacheDir, CopyOnWrite: true})
		for k, v := range npmEnv(p.registry) {
			res.Env[k] = v
		}
	}
	for _, f := range p.files {
		res.Mounts = append(res.Mounts, Mount{Source: f.a.blob, Destination: f.dest})
	}
	return nil
}

// goEnv is what the go command in the build needs: the proxy directory as
// its only proxy. Nothing else changes: GOSUMDB stays as it is, so that go
// still checks every module against go.sum, and a module go.sum lacks
// fails as "missing go.sum entry" (the checksum database is not reachable
// offline) rather than being accepted; GOFLAGS stays unset, so that a
// vendor directory or the user's -mod choice keeps its meaning.
func goEnv() map[string]string {
	return map[string]string{"GOPROXY": "file://" + GoProxyDir}
}

// Package deps is the prefetch stage: it fetches the dependencies a
// source's own lockfiles name (Go modules pinned by go.sum, npm packages
// pinned by package-lock.json, single files pinned by a sha256 in
// buildguard.yaml), checks each against the lockfile's hash before anything
// else sees it, keeps it in a content-addressed cache, and lays out what
// the offline build needs: a Go module proxy directory, an npm cache, files
// at their destination, and the environment that makes the user's ordinary
// command (`go build`, `npm ci`) work without a network.
//
// No package manager and no dependency code runs on the host: buildguard
// speaks the module proxy protocol and the npm registry protocol itself.
//
// The verdicts are data: a hash mismatch is a *MismatchError (a fail that
// cannot be waived), a registry that is down or refuses is a *FetchError
// (the guard could not complete), a bound exceeded is a *LimitError; a
// dependency the lockfile names without a hash is returned with Pinned
// false, and policy decides what that means.
package deps

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/buildguard/buildguard/evidence"
)

// Types of dependency entries (buildguard.yaml's dependencies[].type).
const (
	TypeGoMod = "gomod"
	TypeNPM   = "npm"
	TypeFile  = "file"
)

// Where the sandbox sees the prepared dependencies. They are absolute paths
// in the build's root, outside every directory the sandbox mounts itself.
const (
	// SandboxRoot holds every prepared dependency view.
	SandboxRoot = "/buildguard/deps"
	// GoProxyDir is the module proxy directory (GOPROXY=file://GoProxyDir).
	GoProxyDir = SandboxRoot + "/goproxy"
	// NPMCacheDir is npm's cache (npm_config_cache); npm writes into its
	// cache, so the build sees a copy-on-write view of it.
	NPMCacheDir = SandboxRoot + "/npm-cache"
)

// Spec is one entry of buildguard.yaml's dependencies section, with its
// paths made absolute by the caller.
type Spec struct {
	// Type is TypeGoMod, TypeNPM or TypeFile.
	Type string
	// Dir is, for gomod and npm, the absolute host directory that holds
	// go.mod and go.sum, or package.json and package-lock.json.
	Dir string
	// Path is Dir as the user wrote it (relative to the source), for
	// messages and the report.
	Path string
	// URL, SHA256 and Dest describe a file: where to fetch it, its
	// lowercase hex sha256, and where the build sees it (relative to the
	// workdir).
	URL, SHA256, Dest string
}

// Options say where to fetch from, where to cache, and the bounds.
type Options struct {
	// CacheDir is the root of the content-addressed cache (created when
	// missing). What it holds was verified when it was written, and is
	// verified again when a view is made of it.
	CacheDir string
	// Environ is the environment the ecosystems' configuration is read
	// from as their own tools would read it (GOPROXY, GOENV, HOME,
	// NPM_CONFIG_REGISTRY, npm_config_registry, NPM_CONFIG_USERCONFIG...).
	// Nil means none: the built-in defaults (proxy.golang.org,
	// registry.npmjs.org).
	Environ []string
	// MaxBytes bounds one download (0: DefaultMaxBytes).
	MaxBytes int64
	// MaxCount bounds the number of dependencies over all specs (0:
	// DefaultMaxCount).
	MaxCount int
	// Concurrency bounds the downloads in flight (0: DefaultConcurrency).
	Concurrency int
	// Timeout bounds each request, headers and body (0: DefaultTimeout).
	Timeout time.Duration
	// Client makes the requests; nil means a client over
	// http.DefaultTransport. MaxBytes and Timeout apply either way.
	Client *http.Client
}

// Defaults of Options.
const (
	DefaultMaxBytes    = 1 << 30
	DefaultMaxCount    = 10000
	DefaultConcurrency = 8
	DefaultTimeout     = 5 * time.Minute
)

// Dependency is one fetched dependency, as report.json, the provenance and
// CEL see it (evidence.Dependency, whose fields say what each holds; the
// prefetch stage never sets Mismatch: see MismatchError).
type Dependency = evidence.Dependency

// Mount is a prepared view the sandbox must show the build.
type Mount struct {
	// Source is the absolute host path (a directory or a file).
	Source string
	// Destination is an absolute sandbox path, or a path relative to the
	// workdir (a file's dest).
	Destination string
	// CopyOnWrite: the build may write there (npm's cache); what it writes
	// is discarded and Source never changes. Otherwise read-only.
	CopyOnWrite bool
}

// Result is what Prefetch prepared.
type Result struct {
	// Dependencies are sorted by Type, Name, Version, Source.
	Dependencies []Dependency
	// Mounts are what the build must see, in mount order.
	Mounts []Mount
	// Env holds the variables buildguard sets for the build (GOPROXY,
	// GOSUMDB, GOFLAGS, npm_config_cache, npm_config_offline, ...);
	// OwnedEnv lists every name it may set, so that builder.env cannot set
	// one.
	Env map[string]string
	// Fetched counts the requests made; Cached counts the dependencies
	// found in the cache.
	Fetched, Cached int
}

// OwnedEnv lists the variables the prefetch stage sets for each type, so
// that a builder.env that sets one is a configuration error.
var OwnedEnv = map[string][]string{
	TypeGoMod: {"GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOINSECURE", "GOVCS"},
	TypeNPM:   {"npm_config_cache", "npm_config_offline", "npm_config_registry", "npm_config_audit", "npm_config_fund", "npm_config_update_notifier", "NPM_CONFIG_CACHE", "NPM_CONFIG_OFFLINE", "NPM_CONFIG_REGISTRY"},
}

// ErrMismatch is a dependency whose bytes are not what its lockfile pins.
var ErrMismatch = errors.New("dependency hash mismatch")

// MismatchError names the dependency and both hashes.
type MismatchError struct {
	Dep Dependency
	// Algorithm is the hash compared ("h1", "sha512", "sha1", "sha256");
	// Want is the lockfile's, Got is the fetched bytes'.
	Algorithm, Want, Got string
	// What is the part that differed (e.g. "module zip", "go.mod", "tarball").
	What string
}

func (e *MismatchError) Error() string {
	v := e.Dep.Name
	if e.Dep.Version != "" {
		v += "@" + e.Dep.Version
	}
	return fmt.Sprintf("%s %s (%s): %s: the lockfile pins %s, the fetched bytes are %s", e.Dep.Type, v, e.What, ErrMismatch, e.Want, e.Got)
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// ErrFetch is a registry or server that is down, refused, or answered
// something other than the dependency.
var ErrFetch = errors.New("fetching a dependency failed")

// FetchError names the URL and the registry it belongs to.
type FetchError struct {
	URL string
	Err error
}

func (e *FetchError) Error() string { return fmt.Sprintf("fetching %s: %v", e.URL, e.Err) }

func (e *FetchError) Unwrap() []error { return []error{ErrFetch, e.Err} }

// ErrLimit is a bound of Options exceeded.
var ErrLimit = errors.New("dependency limit exceeded")

// LimitError names the limit and how to raise it.
type LimitError struct {
	// Limit is "dependencyBytes" or "dependencies" (buildguard.yaml's
	// limits names); Flag is the command-line flag.
	Limit, Flag string
	Max         int64
	What        string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s of %d (raise with limits.%s or %s)", e.What, ErrLimit, e.Max, e.Limit, e.Flag)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

// ErrConfig is a dependencies entry or lockfile that cannot be used as
// written (a missing lockfile, a GOPROXY of "direct" only, a malformed
// go.sum): a usage error, nothing was fetched.
var ErrConfig = errors.New("dependency configuration")

// Prefetch (prefetch.go) has this contract:
//
//	func Prefetch(ctx context.Context, specs []Spec, o Options) (*Result, error)
//
// It reads every lockfile, refuses more than MaxCount dependencies, fetches
// what the cache lacks (at most Concurrency at a time), verifies every byte
// against its lockfile hash before it is cached or laid out, and builds the
// views (Mounts) and Env. Every mismatch is collected: the error is then
// errors.Join of each *MismatchError, and Result is still returned with the
// dependencies found (so that each can be named in the report). A
// *FetchError, *LimitError or an ErrConfig error stops it with a nil Result.

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// APIVersion is the only configuration version this buildguard reads.
const APIVersion = "buildguard/v1"

// MaxSize is the largest configuration file Load and Parse accept, in bytes.
const MaxSize = 1 << 20

// Defaults filled in by Parse (and SetDefaults) for fields left out.
const (
	DefaultSource  = "."
	DefaultWorkdir = "/src"
	DefaultTimeout = Duration(30 * time.Minute)
	DefaultRuntime = RuntimeAuto
	DefaultRuns    = 2
)

// Config is a parsed and validated buildguard.yaml. The yaml and json field
// names are the public interface described in DESIGN.md.
type Config struct {
	APIVersion      string       `yaml:"apiVersion" json:"apiVersion"`
	Source          Path         `yaml:"source" json:"source"`                   // the source tree; each run sees a private writable copy at builder.workdir
	Builder         Builder      `yaml:"builder" json:"builder"`                 // the main builder
	SourceDateEpoch string       `yaml:"sourceDateEpoch" json:"sourceDateEpoch"` // empty, or seconds since the epoch
	Dependencies    []Dependency `yaml:"dependencies" json:"dependencies"`       // fetched and verified before the builds
	Reproduce       Reproduce    `yaml:"reproduce" json:"reproduce"`
	Base            string       `yaml:"base" json:"base"` // optional image the output is packaged onto
	Publish         Publish      `yaml:"publish" json:"publish"`
	Trust           Trust        `yaml:"trust" json:"trust"`
	Signing         Signing      `yaml:"signing" json:"signing"` // how buildguard signs what it writes
	Policy          Policy       `yaml:"policy" json:"policy"`
	Limits          InputLimits  `yaml:"limits" json:"limits"` // bounds on untrusted input (see InputLimits)

	file  string         // the file name as given
	lines map[string]int // field path -> line of its key or list element
}

// Builder is the builder image and how the build step runs in it.
type Builder struct {
	Image   string            `yaml:"image" json:"image"`     // required; pinned by digest before anything runs
	Command []string          `yaml:"command" json:"command"` // argv, not a shell line; required
	Workdir string            `yaml:"workdir" json:"workdir"` // absolute path in the container; default /src
	Env     map[string]string `yaml:"env" json:"env"`         // extra environment
	Timeout Duration          `yaml:"timeout" json:"timeout"` // per build; default 30m
	Runtime Runtime           `yaml:"runtime" json:"runtime"` // default auto
	Limits  Limits            `yaml:"limits" json:"limits"`
}

// Limits bounds the resources of one build. Zero means no limit set by
// buildguard, except for Scratch, whose zero is the built-in default.
type Limits struct {
	Memory Quantity `yaml:"memory" json:"memory"` // bytes
	Pids   int64    `yaml:"pids" json:"pids"`
	// Scratch bounds the disk space a run's writable copy of its source
	// (and of npm's cache) may take (default 16Gi).
	Scratch Quantity `yaml:"scratch" json:"scratch"`
	// Required makes memory and pids limits that the sandbox cannot
	// enforce through cgroups (a rootless build never can) an error
	// (exit 3), rather than enforced as far as rlimits reach.
	Required bool `yaml:"required,omitempty" json:"required,omitempty"`
}

// Dependency is one entry of the dependencies section: a lockfile whose
// every entry is fetched and checked against its hash before the builds
// (gomod, npm), or one file pinned by its sha256.
type Dependency struct {
	Type   DependencyType `yaml:"type" json:"type"`
	Path   Path           `yaml:"path" json:"path"`     // gomod, npm: the directory of the lockfile, relative to source
	URL    string         `yaml:"url" json:"url"`       // file: where to fetch it
	SHA256 string         `yaml:"sha256" json:"sha256"` // file: its digest, 64 hex digits
	Dest   string         `yaml:"dest" json:"dest"`     // file: where the build sees it, relative to builder.workdir
}

// DependencyType is the kind of a dependencies entry.
type DependencyType string

// The dependency types.
const (
	DependencyGoMod DependencyType = "gomod"
	DependencyNPM   DependencyType = "npm"
	DependencyFile  DependencyType = "file"
)

// DependencyTypes lists the dependency types in the order documented.
func DependencyTypes() []DependencyType {
	return []DependencyType{DependencyGoMod, DependencyNPM, DependencyFile}
}

// Reproduce says how the build is repeated and compared.
type Reproduce struct {
	Runs       int              `yaml:"runs" json:"runs"`             // builds with the main builder, run 1 the control; default 2
	Variations []Variation      `yaml:"variations" json:"variations"` // default: all; an empty list: none
	Diverse    []DiverseBuilder `yaml:"diverse" json:"diverse"`       // independent builders expected to give the same bits
}

// DiverseBuilder is an independent builder image for diverse double-compiling.
type DiverseBuilder struct {
	Image string `yaml:"image" json:"image"`
}

// Publish says where the output goes on a pass and, when it goes onto a
// base, the image config it runs with. An unset field keeps the base's.
type Publish struct {
	Image string `yaml:"image" json:"image"` // a destination: a tag, never a digest
	// Entrypoint and Cmd are the command the image runs (as a Dockerfile's
	// ENTRYPOINT and CMD, exec form). Setting Entrypoint alone clears the
	// base's Cmd, as Docker does, so that the base's arguments are not
	// passed to the program.
	Entrypoint []string `yaml:"entrypoint" json:"entrypoint,omitempty"`
	Cmd        []string `yaml:"cmd" json:"cmd,omitempty"`
	// Env is added to the base's environment (a name the base sets is
	// replaced in place).
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// Workdir is the working directory, absolute.
	Workdir string `yaml:"workdir" json:"workdir,omitempty"`
	// User is the user the image runs as: name or uid, optionally
	// ":group" or ":gid".
	User string `yaml:"user" json:"user,omitempty"`
	// Labels are added to the base's labels.
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// SetsImageConfig reports whether any image config field is set.
func (p *Publish) SetsImageConfig() bool {
	return len(p.Entrypoint)+len(p.Cmd)+len(p.Env)+len(p.Labels) > 0 || p.Workdir != "" || p.User != ""
}

// Trust says what makes an image trusted.
type Trust struct {
	TrustedRoot        Path       `yaml:"trustedRoot" json:"trustedRoot"` // Sigstore trusted root JSON
	Keys               []Path     `yaml:"keys" json:"keys"`               // public keys
	Identities         []Identity `yaml:"identities" json:"identities"`   // keyless signer identities
	InsecureIgnoreTlog bool       `yaml:"insecureIgnoreTlog" json:"insecureIgnoreTlog"`
	Rekor              Rekor      `yaml:"rekor" json:"rekor"`
	Checkpoints        Path       `yaml:"checkpoints" json:"checkpoints"` // empty: the cache directory
}

// Signing says how buildguard signs what it writes (its statements, build
// results and the signature of a published image). It is not part of
// Trust, which says what buildguard accepts. The flags --signing-key and
// --signing-config replace the fields.
type Signing struct {
	// Key is a cosign private key file (password in $COSIGN_PASSWORD) or
	// an unencrypted PKCS#8 PEM; empty: nothing is signed.
	Key Path `yaml:"key" json:"key"`
	// Config is a Sigstore signing config (cosign's format, media type
	// application/vnd.dev.sigstore.signingconfig.v0.2+json): every
	// signature is logged in the Rekor it names. Empty: signatures carry
	// no transparency-log entry.
	Config Path `yaml:"config" json:"config"`
}

// Identity is a keyless signer identity: a certificate issuer and subject,
// each given exactly or as a Go regular expression (both must match when
// both are given).
type Identity struct {
	Issuer        string `yaml:"issuer" json:"issuer"`
	IssuerRegExp  string `yaml:"issuerRegExp" json:"issuerRegExp"`
	Subject       string `yaml:"subject" json:"subject"`
	SubjectRegExp string `yaml:"subjectRegExp" json:"subjectRegExp"`
}

// Rekor is the transparency log used for online look-ups.
type Rekor struct {
	URL string `yaml:"url" json:"url"` // empty: offline
}

// Policy is what the decision requires beyond the built-in checks.
type Policy struct {
	BuilderIDs     []string `yaml:"builderIDs" json:"builderIDs"`           // provenance required when set
	SourceURIs     []string `yaml:"sourceURIs" json:"sourceURIs"`           // allowed provenance source URIs
	RequireVSA     bool     `yaml:"requireVSA" json:"requireVSA,omitempty"` // builder images need a verified PASSED VSA (omitted when false: the policy digest of older files is unchanged)
	RequireDiverse bool     `yaml:"requireDiverse" json:"requireDiverse"`   // no diverse builder is a violation
	Waive          []string `yaml:"waive" json:"waive"`                     // built-in checks switched off
	Rules          []Rule   `yaml:"rules" json:"rules"`                     // CEL rules
}

// Rule is a named CEL expression that must hold for the decision to pass.
type Rule struct {
	Name string `yaml:"name" json:"name"`
	Expr string `yaml:"expr" json:"expr"`
}

// Load reads, parses and validates the configuration file at path (see
// Parse). A file larger than MaxSize is refused without reading it all.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("reading configuration: %v", unwrapPath(err)), err: err}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("reading configuration: %v", unwrapPath(err)), err: err}}
	}
	return Parse(data, path)
}

// unwrapPath drops the path from an *os.PathError, which the message already
// names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses and validates a configuration. path names the file in
// messages, and relative paths in it are resolved against its directory (the
// working directory when path is empty). It returns every problem found, as
// Errors sorted by line.
func Parse(data []byte, path string) (*Config, error) {
	col := &collector{file: path}
	if len(data) > MaxSize {
		col.add(0, "", "file is larger than the %d MiB limit", MaxSize>>20)
		return nil, col.result()
	}
	root := readDocument(data, col)
	if root == nil {
		return nil, col.result()
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		col.add(0, "", "empty document: want a configuration starting with \"apiVersion: %s\"", APIVersion)
		return nil, col.result()
	}
	if root.Kind != yaml.MappingNode {
		col.add(root.Line, "", "want a mapping starting with \"apiVersion: %s\", got %s", APIVersion, describeNode(root))
		return nil, col.result()
	}
	if !checkVersion(root, col) {
		return nil, col.result()
	}
	c := &Config{file: path, lines: map[string]int{}}
	w := &walker{col: col, lines: c.lines, bad: map[string]bool{}}
	w.value(root, reflectValue(c), "", 0)
	c.SetDefaults()
	c.resolve(filepath.Dir(path))
	c.validate(col, w.bad)
	if err := col.result(); err != nil {
		return nil, err
	}
	return c, nil
}

// readDocument returns the root node of the only document in data.
func readDocument(data []byte, col *collector) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			col.add(0, "", "empty file: want a configuration starting with \"apiVersion: %s\"", APIVersion)
		} else {
			addSyntaxError(col, err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		col.add(next.Line, "", "a second YAML document: a configuration file holds exactly one")
		return nil
	case !errors.Is(err, io.EOF):
		addSyntaxError(col, err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		col.add(0, "", "empty document: want a configuration starting with \"apiVersion: %s\"", APIVersion)
		return nil
	}
	return doc.Content[0]
}

var syntaxLineRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// parserProblems are the problems of yaml.v3's parser (as opposed to its
// scanner). For these, yaml.v3 v3.0.6 gives the 0-based line where the
// enclosing block starts (decode.go, (*parser).fail), one less than the line
// a person counts, and not the line of the problem itself.
var parserProblems = map[string]bool{
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// addSyntaxError reports a YAML syntax error. yaml.v3 gives these only as
// text, "yaml: line N: MSG"; the line is taken from it when present.
func addSyntaxError(col *collector, err error) {
	msg := err.Error()
	if m := syntaxLineRE.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			if parserProblems[m[2]] {
				col.add(line+1, "", "invalid YAML: %s (in the block starting on this line)", m[2])
				return
			}
			col.add(line, "", "invalid YAML: %s", m[2])
			return
		}
	}
	col.add(0, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// checkVersion reports a missing or unsupported apiVersion. A file of another
// version is not checked further (its fields are not ours to judge), so it
// returns false then.
func checkVersion(root *yaml.Node, col *collector) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "apiVersion" {
			continue
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value != "" && v.Value != APIVersion {
			col.add(k.Line, "apiVersion", "unsupported version %q: this buildguard reads %s", v.Value, APIVersion)
			return false
		}
		return true
	}
	return true
}

// File returns the file name the configuration was parsed from, as given to
// Load or Parse.
func (c *Config) File() string { return c.file }

// Line returns the line of the field at fieldPath, such as "builder.image",
// "builder.env.CGO_ENABLED", "trust.keys[0]" or "reproduce.diverse[1].image":
// the line of its key, or of the list element. It returns 0 for a field the
// file does not set.
func (c *Config) Line(fieldPath string) int { return c.lines[fieldPath] }

// nearestLine is the line of fieldPath or, when the file does not set it, of
// its nearest enclosing field, so that "required" problems point somewhere
// useful.
func (c *Config) nearestLine(fieldPath string) int {
	for p := fieldPath; p != ""; p = parentPath(p) {
		if l := c.lines[p]; l > 0 {
			return l
		}
	}
	return 0
}

// Images returns every image the build consumes, in the order builder,
// diverse builders, base; images left empty are skipped. publish.image is not
// among them: it is a destination, never pinned or checked.
func (c *Config) Images() []ImageRef {
	var out []ImageRef
	add := func(role Role, ref, field string) {
		if ref != "" {
			out = append(out, ImageRef{Role: role, Ref: ref, Field: field, Line: c.Line(field)})
		}
	}
	add(RoleBuilder, c.Builder.Image, "builder.image")
	for i, d := range c.Reproduce.Diverse {
		add(RoleDiverse, d.Image, fmt.Sprintf("reproduce.diverse[%d].image", i))
	}
	add(RoleBase, c.Base, "base")
	return out
}

// SetDefaults fills in the defaults of fields left out or empty: source ".",
// builder workdir /src, timeout 30m, runtime auto, reproduce.runs 2 and every
// variation (a nil list; an empty list means no variation). A number the file
// sets explicitly (such as "runs: 0") is left for Validate to judge. Lists and maps left out become empty, so that JSON
// shows [] and {} rather than null.
func (c *Config) SetDefaults() {
	if c.Source.Text == "" {
		c.Source = Path{Text: DefaultSource}
	}
	b := &c.Builder
	if b.Workdir == "" {
		b.Workdir = DefaultWorkdir
	}
	if b.Timeout == 0 && c.Line("builder.timeout") == 0 {
		b.Timeout = DefaultTimeout
	}
	if b.Runtime == "" {
		b.Runtime = DefaultRuntime
	}
	r := &c.Reproduce
	if r.Runs == 0 && c.Line("reproduce.runs") == 0 {
		r.Runs = DefaultRuns
	}
	if r.Variations == nil {
		r.Variations = Variations()
	}
	emptyIfNil(&b.Command)
	if b.Env == nil {
		b.Env = map[string]string{}
	}
	emptyIfNil(&c.Dependencies)
	emptyIfNil(&r.Diverse)
	emptyIfNil(&c.Trust.Keys)
	emptyIfNil(&c.Trust.Identities)
	p := &c.Policy
	emptyIfNil(&p.BuilderIDs)
	emptyIfNil(&p.SourceURIs)
	emptyIfNil(&p.Waive)
	emptyIfNil(&p.Rules)
}

func emptyIfNil[T any](s *[]T) {
	if *s == nil {
		*s = []T{}
	}
}

// resolve makes the relative paths absolute against dir, the directory of
// the file.
func (c *Config) resolve(dir string) {
	c.Source = ResolvePath(c.Source.Text, dir)
	for i, d := range c.Dependencies {
		if d.Path.Text != "" {
			c.Dependencies[i].Path = ResolvePath(d.Path.Text, c.Source.Resolved)
		}
	}
	c.Trust.TrustedRoot = ResolvePath(c.Trust.TrustedRoot.Text, dir)
	for i, k := range c.Trust.Keys {
		c.Trust.Keys[i] = ResolvePath(k.Text, dir)
	}
	c.Trust.Checkpoints = ResolvePath(c.Trust.Checkpoints.Text, dir)
	c.Signing.Key = ResolvePath(c.Signing.Key.Text, dir)
	c.Signing.Config = ResolvePath(c.Signing.Config.Text, dir)
}
